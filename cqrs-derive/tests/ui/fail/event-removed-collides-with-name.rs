// "Closed" is declared removed, yet the `Closed` variant is still stored under it.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(removed = "Closed")]
enum AccountEvent {
    Opened { owner: String },
    Closed,
}

fn main() {}
