// Several versioning mistakes in one enum, each in its own place, all reported at once:
// a removed name still in use, an empty alias, a step skipping a version, a typed step
// before a JSON step without `into`, and a misspelt key.
use cqrs_core::prelude::*;
use serde_json::Value;

#[derive(Deserialize)]
struct OpenedV1 {
    name: String,
}

#[derive(Serialize)]
struct OpenedV2 {
    owner: String,
}

impl From<OpenedV1> for OpenedV2 {
    fn from(v1: OpenedV1) -> Self {
        Self { owner: v1.name }
    }
}

fn up(v: Value) -> Value {
    v
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(removed = "Closed")]
enum AccountEvent {
    #[event(version = 3, alias = "")]
    #[upcast(1 -> 2, from = OpenedV1)]
    #[upcast(2 -> 3, json = up)]
    Opened {
        owner: String,
    },
    #[event(version = 3)]
    #[upcast(1 -> 3, json = up)]
    Moved {
        city: String,
    },
    #[event(version = 2)]
    #[upcast(1 -> 2, jsn = up)]
    Renamed {
        owner: String,
    },
    Closed,
}

fn main() {}
