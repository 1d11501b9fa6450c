// The stored type name of an event cannot be empty.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    #[event(name = "")]
    Incremented { by: u32 },
}

fn main() {}
