// Every versioning form `#[derive(Event)]` and `#[derive(Aggregate)]` accept: `version`,
// repeated `alias`, typed steps through `From` and through `with`, a typed step handing
// over `into` a JSON step, JSON steps returning `Value`, `Option<Value>`, `Upcast` and a
// `Result` of those, a JSON step followed by a typed step, a path to a function in another
// module, removed types dropped or mapped, and `snapshot_version`.
use cqrs_core::prelude::*;
use cqrs_core::upcast::{StoredValue, Upcast};
use serde_json::{Value, json};

mod old {
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize)]
    pub struct OpenedV1 {
        pub name: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct OpenedV2 {
        pub owner: String,
    }

    pub mod steps {
        use serde_json::Value;

        pub fn rename(v: Value) -> Value {
            v
        }
    }
}

impl From<old::OpenedV1> for old::OpenedV2 {
    fn from(v1: old::OpenedV1) -> Self {
        Self { owner: v1.name }
    }
}

impl From<old::OpenedV2> for OrderEvent {
    fn from(v2: old::OpenedV2) -> Self {
        OrderEvent::Opened {
            owner: v2.owner,
            currency: "EUR".into(),
        }
    }
}

#[derive(Deserialize)]
struct PaidV1(u64);

#[derive(Serialize)]
struct PaidV2 {
    cents: u64,
}

fn paid_v1(v1: PaidV1) -> PaidV2 {
    PaidV2 { cents: v1.0 }
}

fn paid_v2(v: Value) -> Result<Value, String> {
    Ok(json!({ "cents": v["cents"], "memo": "" }))
}

fn paid_v3(v: Value) -> Option<Value> {
    Some(v)
}

fn paid_v4(v: Value) -> Result<Upcast, std::num::ParseIntError> {
    Ok(Upcast::Next(v))
}

#[derive(Deserialize)]
struct NotedV2 {
    text: String,
}

fn noted_v1(v: Value) -> Upcast {
    Upcast::Next(json!({ "text": v }))
}

fn noted_v2(v2: NotedV2) -> OrderEvent {
    OrderEvent::Noted(v2.text)
}

fn legacy_refund(v: Value) -> Result<Upcast, String> {
    Ok(Upcast::Split(vec![StoredValue::new(
        "Paid",
        5,
        json!({ "cents": v["cents"], "memo": "refund" }),
    )]))
}

fn legacy_audit(_: Value) -> Upcast {
    Upcast::Drop
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "Archived")]
#[event(removed = "Refunded", upcast = legacy_refund)]
#[event(upcast = legacy_audit, removed = "Audited")]
enum OrderEvent {
    // Two typed steps, through `From`, with shapes from another module.
    #[event(version = 3, alias = "AccountOpened", alias = "Created")]
    #[upcast(1 -> 2, from = old::OpenedV1)]
    #[upcast(2 -> 3, from = old::OpenedV2)]
    Opened { owner: String, currency: String },
    // Typed with a function, handing `into` a JSON step, then more JSON steps; the steps
    // may be written in any order, and a trailing comma is fine.
    #[upcast(4 -> 5, json = paid_v4,)]
    #[upcast(2 -> 3, json = paid_v2)]
    #[upcast(1 -> 2, from = PaidV1, with = paid_v1, into = PaidV2)]
    #[upcast(3 -> 4, json = paid_v3)]
    #[event(version = 5)]
    Paid { cents: u64, memo: String },
    // A JSON step followed by a typed step with a function; a JSON step from a module path.
    #[event(name = "note-added", version = 3)]
    #[upcast(1 -> 2, json = noted_v1)]
    #[upcast(2 -> 3, from = NotedV2, with = noted_v2)]
    Noted(String),
    #[event(version = 2)]
    #[upcast(1 -> 2, json = old::steps::rename)]
    Renamed { owner: String },
    #[event(alias = "Shut")]
    Closed,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum OrderCommand {
    Close,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(command = OrderCommand, event = OrderEvent, error = Never, snapshot_version = 2)]
struct Order {
    closed: bool,
}

#[aggregate_impl]
impl Order {
    #[handle]
    fn close(&self) -> OrderEvent {
        OrderEvent::Closed
    }

    #[apply]
    fn opened(&mut self, owner: &String, currency: &String) {
        let _ = (owner, currency);
    }

    #[apply]
    fn paid(&mut self, cents: &u64, memo: &String) {
        let _ = (cents, memo);
    }

    #[apply]
    fn noted(&mut self, _0: &String) {}

    #[apply]
    fn renamed(&mut self, owner: &String) {
        let _ = owner;
    }

    #[apply]
    fn closed(&mut self) {
        self.closed = true;
    }
}

fn main() {
    assert_eq!(<Order as Aggregate>::SNAPSHOT_VERSION, 2);
    let paid = OrderEvent::decode_all(&JsonCodec, "Refunded", 1, br#"{"cents":3}"#).unwrap();
    assert_eq!(
        paid,
        [OrderEvent::Paid {
            cents: 3,
            memo: "refund".into()
        }]
    );
    let paid = OrderEvent::decode_all(&JsonCodec, "Paid", 1, b"7").unwrap();
    assert_eq!(
        paid,
        [OrderEvent::Paid {
            cents: 7,
            memo: String::new()
        }]
    );
    let noted = OrderEvent::decode_all(&JsonCodec, "note-added", 1, br#""hi""#).unwrap();
    assert_eq!(noted, [OrderEvent::Noted("hi".into())]);
    let opened = OrderEvent::decode_all(&JsonCodec, "Created", 1, br#"{"name":"ann"}"#).unwrap();
    assert_eq!(
        opened,
        [OrderEvent::Opened {
            owner: "ann".into(),
            currency: "EUR".into()
        }]
    );
    assert!(
        OrderEvent::decode_all(&JsonCodec, "Audited", 9, b"{}")
            .unwrap()
            .is_empty()
    );
    assert!(
        OrderEvent::decode_all(&JsonCodec, "Archived", 1, b"{}")
            .unwrap()
            .is_empty()
    );
    assert_eq!(OrderEvent::aliases_of("Closed"), ["Shut"]);
}
