// `version` is given twice in `#[event(..)]`.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    #[event(version = 2, version = 3)]
    Incremented { by: u32 },
}

fn main() {}
