// A step is typed (`from`) or JSON (`json`), not both.
use cqrs_core::prelude::*;
use serde_json::Value;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, from = OpenedV1, json = up)]
    Opened { owner: String },
}

fn main() {}
