// Mistakes only the type checker sees, each in its own method: all are reported, each once.
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

#[aggregate_impl]
impl Counter {
    #[handle]
    fn increment(&self) -> CounterEvent {
        CounterEvent::Incremented { by: 1 }
    }

    #[handle]
    fn clear(&self) -> u32 {
        0
    }

    #[apply]
    fn incremented(&mut self, by: &String) {
        self.value += by.len() as u32;
    }

    #[apply]
    fn reset(&mut self) {
        self.value = 0;
    }
}

fn main() {}
