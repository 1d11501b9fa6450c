// `#[invariant]` on the event enum: invariants belong on the aggregate struct, whose
// `#[derive(Aggregate)]` reads them.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[invariant(never_negative, "a tank never holds less than nothing")]
enum TankEvent {
    Filled { litres: i64 },
}

fn main() {}
