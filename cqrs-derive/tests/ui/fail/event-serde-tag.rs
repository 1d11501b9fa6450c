// The stored payload is the variant's body: an internally tagged enum cannot be an event.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[serde(tag = "type")]
enum CounterEvent {
    Incremented { by: u32 },
}

fn main() {}
