// An upcast step belongs to the variant it lifts, not to one of its fields.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    Opened {
        #[upcast(1 -> 2, json = up)]
        owner: String,
    },
}

fn main() {}
