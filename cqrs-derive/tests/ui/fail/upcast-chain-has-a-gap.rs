// Nothing lifts version 2 to 3: the chain `1 -> 2`, `3 -> 4` has a gap.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 4)]
    #[upcast(1 -> 2, json = up)]
    #[upcast(3 -> 4, json = up)]
    Opened { owner: String },
}

fn main() {}
