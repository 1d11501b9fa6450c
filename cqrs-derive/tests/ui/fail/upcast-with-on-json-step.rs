// `with` converts a typed step's old shape; a JSON step's function is `json = ..` itself.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = up, with = up)]
    Opened { owner: String },
}

fn main() {}
