// Schema versions start at 1.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    #[event(version = 0)]
    Incremented { by: u32 },
}

fn main() {}
