// Two invariants are named after the same method: failures could not tell them apart.
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
#[invariant(never_negative, "a tank never holds less than nothing")]
#[invariant(when = Drained, shall = never_negative, "a drained tank is not overdrawn")]
struct Tank {
    litres: i64,
}

impl Tank {
    fn never_negative(&self) -> bool {
        self.litres >= 0
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
