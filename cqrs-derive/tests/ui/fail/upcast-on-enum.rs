// An upcast step belongs to the variant it lifts, not to the enum.
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[upcast(1 -> 2, json = up)]
enum AccountEvent {
    #[event(version = 2)]
    Opened { owner: String },
}

fn main() {}
