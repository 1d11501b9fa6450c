// The function mapping a removed type reads its payload as a `serde_json::Value`.
use cqrs_core::prelude::*;
use cqrs_core::upcast::Upcast;

fn legacy(_: String) -> Upcast {
    Upcast::Drop
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(removed = "Audited", upcast = legacy)]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
