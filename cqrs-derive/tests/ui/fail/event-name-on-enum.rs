// `name` is the stored type name of one variant: it goes on that variant, not on the enum.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(name = "AccountOpened")]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
