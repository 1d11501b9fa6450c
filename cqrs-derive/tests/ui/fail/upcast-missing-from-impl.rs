// A typed step without `with` becomes the next version through `From`, which is missing.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, from = OpenedV1)]
    Opened { owner: String },
}

fn main() {}
