// A JSON step takes the old payload as a `serde_json::Value`, not as a `&str`.
use cqrs_core::prelude::*;
use serde_json::Value;

fn rename(v: &str) -> Value {
    Value::String(v.to_owned())
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = rename)]
    Opened { owner: String },
}

fn main() {}
