// `form` is a typo of `from`.
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
    #[upcast(1 -> 2, form = OpenedV1)]
    Opened { owner: String },
}

fn main() {}
