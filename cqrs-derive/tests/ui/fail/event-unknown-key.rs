// `rename` is not a key of `#[event(..)]`: the stored type name is `name`.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum CounterEvent {
    #[event(rename = "incremented")]
    Incremented { by: u32 },
}

fn main() {}
