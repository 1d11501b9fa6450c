// One `#[event(removed = ..)]` names one removed type; a second needs its own attribute.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(removed = "Audited", removed = "Archived")]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
