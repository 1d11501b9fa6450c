// `#[derive(Aggregate)]` but no `#[aggregate_impl]` block.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Incremented { by: u32 },
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum CounterCommand {
    Increment { by: u32 },
    Clear,
}

#[derive(Debug, thiserror::Error)]
#[error("the counter would overflow")]
struct Overflow;

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = CounterCommand, event = CounterEvent, error = Overflow)]
struct Counter {
    value: u32,
}

impl Counter {
    fn value(&self) -> u32 {
        self.value
    }
}

fn main() {}
