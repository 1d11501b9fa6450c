// `remove` is a typo of `removed` in the enum's `#[event(..)]`.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(remove = "Audited")]
enum AccountEvent {
    Opened { owner: String },
}

fn main() {}
