// The `with` function of the last step must return the event enum, not a `String`.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

fn open_v1(v1: OpenedV1) -> String {
    v1.name
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, from = OpenedV1, with = open_v1)]
    Opened { owner: String },
}

fn main() {}
