// `#[aggregate_impl]` goes on the inherent `impl Counter { .. }` block, not a trait impl.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum CounterCommand {
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

trait Reset {
    fn clear(&self) -> CounterEvent;
}

#[aggregate_impl]
impl Reset for Counter {
    #[handle]
    fn clear(&self) -> CounterEvent {
        CounterEvent::Cleared
    }
}

fn main() {}
