// `Opened` is at version 1 (no `#[event(version = ..)]`), so there is no version 2 to lift to.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[upcast(1 -> 2, json = up)]
    Opened { owner: String },
}

fn main() {}
