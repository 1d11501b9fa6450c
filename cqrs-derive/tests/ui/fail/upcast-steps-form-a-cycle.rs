// `1 -> 2` and `2 -> 1` would lift a payload round in a circle.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

fn down(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = up)]
    #[upcast(2 -> 1, json = down)]
    Opened { owner: String },
}

fn main() {}
