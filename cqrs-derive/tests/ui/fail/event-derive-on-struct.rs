// `#[derive(Event)]` applies to an enum, one variant per event.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
struct Incremented {
    by: u32,
}

fn main() {}
