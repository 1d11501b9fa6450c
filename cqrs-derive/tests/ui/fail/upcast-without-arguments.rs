// `#[upcast]` alone says nothing: a step names its versions and how it lifts.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast]
    Opened { owner: String },
}

fn main() {}
