// `into` on the step to the current version: that step produces the event itself.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

#[derive(Serialize)]
struct OpenedV2 {
    owner: String,
}

impl From<OpenedV1> for AccountEvent {
    fn from(v1: OpenedV1) -> Self {
        AccountEvent::Opened { owner: v1.name }
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2)]
    #[upcast(1 -> 2, from = OpenedV1, into = OpenedV2)]
    Opened { owner: String },
}

fn main() {}
