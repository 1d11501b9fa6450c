// The versions of a step are written `1 -> 2`, not in words.
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
    #[event(version = 2)]
    #[upcast(from 1 to 2, from = OpenedV1)]
    Opened { owner: String },
}

fn main() {}
