// A step must say how the old payload is read: `from = OldShape` or `json = function`.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2)]
    Opened { owner: String },
}

fn main() {}
