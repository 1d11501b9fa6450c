// Snapshot versions start at 1, like event schema versions.
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
#[aggregate(command = CounterCommand, event = CounterEvent, error = Overflow, snapshot_version = 0)]
struct Counter {
    value: u32,
}

#[aggregate_impl]
impl Counter {
    #[handle]
    fn increment(&self, by: u32) -> CounterEvent {
        CounterEvent::Incremented { by }
    }

    #[handle]
    fn clear(&self) -> CounterEvent {
        CounterEvent::Cleared
    }

    #[apply]
    fn incremented(&mut self, by: &u32) {
        self.value += by;
    }

    #[apply]
    fn cleared(&mut self) {
        self.value = 0;
    }
}

fn main() {}
