// A typed step reads the old payload as its `from` shape, which must derive `Deserialize`.
use cqrs_core::prelude::*;

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
    #[upcast(1 -> 2, from = OpenedV1)]
    Opened { owner: String },
}

fn main() {}
