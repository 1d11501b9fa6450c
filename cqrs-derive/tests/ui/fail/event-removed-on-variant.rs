// `removed` names a type no variant reads any more: it goes on the enum, not on a variant.
use cqrs_core::prelude::*;

#[derive(Debug, Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(removed = "Audited")]
    Opened { owner: String },
}

fn main() {}
