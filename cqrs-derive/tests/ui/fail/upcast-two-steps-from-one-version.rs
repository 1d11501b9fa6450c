// Two steps start from version 1: which one lifts a version-1 payload?
use cqrs_core::prelude::*;
use serde_json::Value;

fn up(v: Value) -> Value {
    v
}

fn also_up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = up)]
    #[upcast(1 -> 2, json = also_up)]
    Opened { owner: String },
}

fn main() {}
