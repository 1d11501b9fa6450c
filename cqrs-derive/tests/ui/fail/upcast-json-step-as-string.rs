// Unlike serde's `with = "module"`, a step names its function as a Rust path, not a string.
use cqrs_core::prelude::*;
use serde_json::Value;

fn rename(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = "rename")]
    Opened { owner: String },
}

fn main() {}
