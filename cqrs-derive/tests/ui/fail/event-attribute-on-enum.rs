// `version` belongs to one event: `#[event(version = ..)]` goes on a variant, not on the enum.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(version = 2)]
enum CounterEvent {
    Incremented { by: u32 },
}

fn main() {}
