// Several mistakes in each macro input: all are reported at once, each at its own token,
// and nothing else (no follow-on errors from the generated code).
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    #[event(version = 0)]
    Incremented { by: u32 },
    #[event(label = "cleared")]
    Cleared,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum CounterCommand {
    Increment {
        #[command(id)]
        id: String,
        #[command(id)]
        other: String,
        by: u32,
    },
    Clear,
}

#[derive(Debug, thiserror::Error)]
#[error("the counter would overflow")]
struct Overflow;

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = CounterCommand, event = CounterEvent, error = Overflow, errors = Overflow)]
struct Counter {
    value: u32,
}

#[aggregate_impl]
impl Counter {
    #[handle]
    fn increment(&mut self, id: String, other: String, by: u32) -> CounterEvent {
        let _ = (id, other);
        CounterEvent::Incremented { by }
    }

    #[handle]
    fn clear(&self, #[services] a: &(), #[services] b: &()) -> CounterEvent {
        let _ = (a, b);
        CounterEvent::Cleared
    }

    #[apply]
    fn incremented(&mut self, by: u32) {
        self.value += by;
    }

    #[apply]
    async fn cleared(&mut self) {
        self.value = 0;
    }
}

fn main() {}
