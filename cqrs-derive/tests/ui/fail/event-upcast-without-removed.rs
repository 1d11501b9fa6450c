// `upcast = ..` on the enum maps a removed type, but no `removed = ".."` names it.
use cqrs_core::prelude::*;
use cqrs_core::upcast::Upcast;
use serde_json::Value;

fn legacy(_: Value) -> Upcast {
    Upcast::Drop
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(upcast = legacy)]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
