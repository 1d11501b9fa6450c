// What a typed step hands to a JSON step is serialised to JSON, so `into` must be `Serialize`.
use cqrs_core::prelude::*;
use serde_json::Value;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

struct OpenedV2 {
    owner: String,
}

impl From<OpenedV1> for OpenedV2 {
    fn from(v1: OpenedV1) -> Self {
        Self { owner: v1.name }
    }
}

fn add_currency(mut v: Value) -> Value {
    v["currency"] = "EUR".into();
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 3)]
    #[upcast(1 -> 2, from = OpenedV1, into = OpenedV2)]
    #[upcast(2 -> 3, json = add_currency)]
    Opened { owner: String, currency: String },
}

fn main() {}
