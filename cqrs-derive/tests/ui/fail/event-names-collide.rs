// `Added` is stored under the type name "Incremented", which `Incremented` already uses.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    Incremented {
        by: u32,
    },
    #[event(name = "Incremented")]
    Added {
        by: u32,
    },
}

fn main() {}
