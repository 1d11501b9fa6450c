// `2 -> 1` lifts a payload to an older version: steps only go up.
use cqrs_core::prelude::*;
use serde_json::Value;

fn downgrade(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(2 -> 1, json = downgrade)]
    Opened { owner: String },
}

fn main() {}
