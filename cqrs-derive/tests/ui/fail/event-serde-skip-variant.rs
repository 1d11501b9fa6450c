// Every variant of an event enum is stored and read back: none can be skipped.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    Incremented {
        by: u32,
    },
    #[serde(skip)]
    Cleared,
}

fn main() {}
