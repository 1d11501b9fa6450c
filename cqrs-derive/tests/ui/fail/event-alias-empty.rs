// An alias is a type name events were stored under; it cannot be empty.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(alias = "")]
    Opened { owner: String },
}

fn main() {}
