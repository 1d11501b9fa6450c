// Schema versions start at 1: there is no version 0 to lift from.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV0 {
    name: String,
}

impl From<OpenedV0> for AccountEvent {
    fn from(v0: OpenedV0) -> Self {
        AccountEvent::Opened { owner: v0.name }
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[upcast(0 -> 1, from = OpenedV0)]
    Opened { owner: String },
}

fn main() {}
