// A step leads from one version to the next: `1 -> 3` skips version 2.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

impl From<OpenedV1> for AccountEvent {
    fn from(v1: OpenedV1) -> Self {
        AccountEvent::Opened { owner: v1.name }
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 3)]
    #[upcast(1 -> 3, from = OpenedV1)]
    Opened { owner: String },
}

fn main() {}
