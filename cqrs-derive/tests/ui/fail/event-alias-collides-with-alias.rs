// Two variants both read the old type name "Changed".
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(alias = "Changed")]
    Renamed { owner: String },
    #[event(alias = "Updated", alias = "Changed")]
    Moved { city: String },
}

fn main() {}
