// `2 -> 2` lifts a payload to the version it already has.
use cqrs_core::prelude::*;
use serde_json::Value;

fn same(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(2 -> 2, json = same)]
    Opened { owner: String },
}

fn main() {}
