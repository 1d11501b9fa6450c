// A JSON step returns the next payload (`Value`, `Option<Value>`, `Upcast` or a `Result` of
// those), not a `String`.
use cqrs_core::prelude::*;
use serde_json::Value;

fn rename(v: Value) -> String {
    v.to_string()
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = rename)]
    Opened { owner: String },
}

fn main() {}
