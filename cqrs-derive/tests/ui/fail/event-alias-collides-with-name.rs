// `Opened` claims the stored name "Closed", which `Closed` reads under its own name.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(alias = "Closed")]
    Opened {
        owner: String,
    },
    Closed,
}

fn main() {}
