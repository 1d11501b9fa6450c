// `into` names what a typed step hands to a JSON step; a JSON step hands over JSON.
use cqrs_core::prelude::*;
use serde_json::Value;

#[derive(Serialize)]
struct OpenedV2 {
    owner: String,
}

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, json = up, into = OpenedV2)]
    Opened { owner: String },
}

fn main() {}
