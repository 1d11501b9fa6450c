// A tank with invariants that cqrs-testing's doc examples include with
// `# include!("doctest_tank.rs");` (followed by an explicit `fn main`). It is not a module
// of the crate: only the doctests compile it.

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
    /// Fills the tank up to `to` litres, if it holds less.
    TopUp { to: i64 },
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum TankError {
    #[error("a tank is filled with something, not nothing")]
    NothingToFill,
}

#[derive(Debug, Default, PartialEq, Aggregate)]
#[aggregate(command = TankCommand, event = TankEvent, error = TankError)]
#[invariant(never_negative, "a tank never holds less than nothing")]
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
    fn fill(&self, litres: i64) -> Result<TankEvent, TankError> {
        if litres <= 0 {
            return Err(TankError::NothingToFill);
        }
        Ok(TankEvent::Filled { litres })
    }

    #[handle]
    fn top_up(&self, to: i64) -> Option<TankEvent> {
        (self.litres < to).then(|| TankEvent::Filled { litres: to - self.litres })
    }

    // A bug: nothing stops draining more than the tank holds.
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
