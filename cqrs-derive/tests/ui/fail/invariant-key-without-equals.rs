// `when(..)` is written like a call: keys take their value after `=`.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum TankEvent {
    Filled { litres: i64 },
    Drained { litres: i64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum TankCommand {
    Fill { litres: i64 },
    Drain { litres: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct TankError;

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = TankCommand, event = TankEvent, error = TankError)]
#[invariant(given = is_empty, when(Filled, Drained), shall = still_empty, "an empty tank stays empty")]
struct Tank {
    litres: i64,
}

impl Tank {
    fn is_empty(&self) -> bool {
        self.litres == 0
    }
    fn still_empty(&self) -> bool {
        self.litres == 0
    }
}

#[aggregate_impl]
impl Tank {
    #[handle]
    fn fill(&self, litres: i64) -> TankEvent {
        TankEvent::Filled { litres }
    }
    #[handle]
    fn drain(&self, litres: i64) -> TankEvent {
        TankEvent::Drained { litres }
    }
    #[apply]
    fn filled(&mut self, litres: &i64) {
        self.litres += litres;
    }
    #[apply]
    fn drained(&mut self, litres: &i64) {
        self.litres -= litres;
    }
}

fn main() {}
