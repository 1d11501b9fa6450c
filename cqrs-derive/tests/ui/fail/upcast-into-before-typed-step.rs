// `into` is only for a typed step followed by a JSON step; here the next step is typed,
// so this step produces the next step's `from` type.
use cqrs_core::prelude::*;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct OpenedV2 {
    owner: String,
}

impl From<OpenedV1> for OpenedV2 {
    fn from(v1: OpenedV1) -> Self {
        Self { owner: v1.name }
    }
}

impl From<OpenedV2> for AccountEvent {
    fn from(v2: OpenedV2) -> Self {
        AccountEvent::Opened {
            owner: v2.owner,
            currency: "EUR".into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 3)]
    #[upcast(1 -> 2, from = OpenedV1, into = OpenedV2)]
    #[upcast(2 -> 3, from = OpenedV2)]
    Opened { owner: String, currency: String },
}

fn main() {}
