//! `#[projection]`: a typed view over two event enums, run through `ViewProjection` on
//! recorded events, as the stores run it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cqrs_core::prelude::*;
use cqrs_core::projection::{
    ApplyFailure, DocChange, Projection, ProjectionError, View, ViewProjection, apply_events,
};
use cqrs_core::store::recorded_from_new;
use cqrs_core::upcast::{StoredValue, Upcast, Value};

/// Version 1 of `Deposited` knew only the amount.
#[derive(Debug, Deserialize)]
struct DepositedV1 {
    value: u64,
}

impl From<DepositedV1> for BankEvent {
    fn from(v1: DepositedV1) -> Self {
        BankEvent::Deposited {
            amount: v1.value,
            balance: v1.value,
        }
    }
}

/// A transfer used to be one event; today it is a withdrawal, a lock (stored under its old
/// name) and a deposit.
fn legacy_transfer(v: Value) -> Upcast {
    let amount = v["amount"].as_u64().unwrap_or_default();
    Upcast::Split(vec![
        StoredValue::new(
            "Withdrew",
            1,
            serde_json::json!({ "amount": amount, "balance": 0 }),
        ),
        StoredValue::new("Frozen", 1, Value::Null),
        StoredValue::new("Deposited", 1, serde_json::json!({ "value": amount })),
    ])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "LegacyTransfer", upcast = legacy_transfer)]
enum BankEvent {
    AccountOpened {
        owner: String,
    },
    #[event(version = 2)]
    #[upcast(1 -> 2, from = DepositedV1)]
    Deposited {
        amount: u64,
        balance: u64,
    },
    #[event(alias = "Debited")]
    Withdrew {
        amount: u64,
        balance: u64,
    },
    Noted(String, u32),
    /// Not handled by the view.
    #[event(alias = "Frozen")]
    Locked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum OrderEvent {
    Placed {
        total: u64,
    },
    Closed,
    /// Not handled by the view.
    Rejected {
        reason: String,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct AccountSummary {
    owner: String,
    balance: u64,
    tx_count: u64,
    notes: Vec<String>,
    orders: u64,
}

#[projection(name = "account_summary")]
impl AccountSummary {
    #[on(BankEvent::AccountOpened)]
    fn opened(&mut self, owner: &str) {
        self.owner = owner.to_owned();
        self.balance = 0;
    }

    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, balance: &u64) {
        self.balance = *balance;
        self.tx_count += 1;
    }

    #[on(BankEvent::Withdrew)]
    fn withdrew(&mut self, amount: &u64, balance: &u64) -> Result<(), String> {
        if *amount > self.balance {
            return Err(format!("overdraft: {amount} > {}", self.balance));
        }
        self.balance = *balance;
        self.tx_count += 1;
        Ok(())
    }

    #[on(BankEvent::Noted)]
    fn noted(&mut self, _0: &str, _1: &u32) {
        self.notes.push(format!("{_0} x{_1}"));
    }

    #[on(OrderEvent::Placed)]
    fn placed(&mut self) {
        self.orders += 1;
    }

    #[on(OrderEvent::Closed, delete)]
    fn closed(&mut self) {}

    /// Not a handler: left alone.
    fn doubled(&self) -> u64 {
        self.balance * 2
    }
}

fn recorded<E: DomainEvent>(stream: &str, event: &E) -> RecordedEvent {
    let new = NewEvent::encode(event, &JsonCodec, Metadata::default()).unwrap();
    recorded_from_new(&Arc::from(stream), &new, 1, 1, SystemTime::now())
}

fn raw(stream: &str, event_type: &'static str, version: u32, payload: &[u8]) -> RecordedEvent {
    let new = NewEvent::new(event_type, version, payload.to_vec(), Metadata::default());
    recorded_from_new(&Arc::from(stream), &new, 1, 1, SystemTime::now())
}

/// Applies `events` in order to the document `doc`, as a store would; returns the document
/// after them (`None`: absent or deleted).
fn run<V: View>(doc: Option<V>, events: &[RecordedEvent]) -> Result<Option<V>, ProjectionError> {
    let projection = ViewProjection::<V>::new();
    let mut bytes = doc.map(|d| Bytes::from(serde_json::to_vec(&d).unwrap()));
    for event in events {
        assert!(
            projection.handles(event),
            "{} not handled",
            event.event_type
        );
        match projection.apply(bytes.as_deref(), event)? {
            DocChange::Unchanged => {}
            DocChange::Put(doc) => bytes = Some(doc),
            DocChange::Delete => bytes = None,
        }
    }
    Ok(bytes.map(|b| serde_json::from_slice(&b).unwrap()))
}

fn opened(stream: &str) -> RecordedEvent {
    recorded(
        stream,
        &BankEvent::AccountOpened {
            owner: "ann".into(),
        },
    )
}

#[test]
fn the_view_is_named_and_handles_the_stored_names_of_its_variants() {
    assert_eq!(AccountSummary::NAME, "account_summary");
    assert_eq!(
        ViewProjection::<AccountSummary>::new().name(),
        "account_summary"
    );
    for handled in [
        "AccountOpened",
        "Deposited",
        "Withdrew",
        // an alias of a handled variant
        "Debited",
        "Noted",
        // a removed type: its upcast may produce handled variants
        "LegacyTransfer",
        "Placed",
        "Closed",
    ] {
        assert!(AccountSummary::handles_type(handled), "{handled}");
    }
    for skipped in ["Locked", "Frozen", "Rejected", "Unknown", ""] {
        assert!(!AccountSummary::handles_type(skipped), "{skipped}");
    }
    // Methods without `#[on]` are left as they were.
    let summary = AccountSummary {
        balance: 4,
        ..Default::default()
    };
    assert_eq!(summary.doubled(), 8);
}

#[test]
fn handlers_bind_the_fields_they_name() {
    let s = "account-a1";
    let doc = run::<AccountSummary>(
        None,
        &[
            opened(s),
            recorded(
                s,
                &BankEvent::Deposited {
                    amount: 10,
                    balance: 10,
                },
            ),
            recorded(
                s,
                &BankEvent::Withdrew {
                    amount: 3,
                    balance: 7,
                },
            ),
            recorded(s, &BankEvent::Noted("gift".into(), 2)),
            recorded(s, &OrderEvent::Placed { total: 99 }),
        ],
    )
    .unwrap();
    assert_eq!(
        doc,
        Some(AccountSummary {
            owner: "ann".into(),
            balance: 7,
            tx_count: 2,
            notes: vec!["gift x2".into()],
            orders: 1,
        })
    );
}

#[test]
fn a_first_event_creates_the_document_from_default() {
    let projection = ViewProjection::<AccountSummary>::new();
    let change = projection
        .apply(
            None,
            &recorded("order-o1", &OrderEvent::Placed { total: 1 }),
        )
        .unwrap();
    let DocChange::Put(doc) = change else {
        panic!("expected a new document, got {change:?}");
    };
    let doc: AccountSummary = serde_json::from_slice(&doc).unwrap();
    assert_eq!(
        doc,
        AccountSummary {
            orders: 1,
            ..Default::default()
        }
    );
}

#[test]
fn unhandled_types_are_skipped_without_being_decoded() {
    // Corrupt payloads: decoding either one would fail.
    let locked = raw("account-a1", "Locked", 1, b"\xff not json");
    let rejected = raw("order-o1", "Rejected", 1, b"{");
    let projection = ViewProjection::<AccountSummary>::new();
    for event in [&locked, &rejected] {
        assert!(!projection.handles(event));
        // Even asked directly, the view does not decode a type it does not handle.
        let mut view = Some(AccountSummary::default());
        AccountSummary::apply_event(&mut view, event, &JsonCodec).unwrap();
        assert_eq!(view, Some(AccountSummary::default()));
        let mut none: Option<AccountSummary> = None;
        AccountSummary::apply_event(&mut none, event, &JsonCodec).unwrap();
        assert_eq!(none, None);
    }

    // The stores' loop never calls `apply` (nor loads a document) for them.
    let mut docs = HashMap::new();
    let mut loads = 0;
    let changed = apply_events(&projection, &[locked, rejected], &mut docs, |_| {
        loads += 1;
        Ok::<_, ()>(None)
    })
    .unwrap();
    assert!(changed.is_empty());
    assert!(docs.is_empty());
    assert_eq!(loads, 0);
}

#[test]
fn a_delete_handler_removes_the_document() {
    let existing = AccountSummary {
        orders: 2,
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&existing).unwrap();
    let projection = ViewProjection::<AccountSummary>::new();
    let closed = recorded("order-o1", &OrderEvent::Closed);
    assert_eq!(
        projection.apply(Some(&bytes), &closed).unwrap(),
        DocChange::Delete
    );
    // No document: nothing to delete.
    assert_eq!(
        projection.apply(None, &closed).unwrap(),
        DocChange::Unchanged
    );
    // A later event starts a new document.
    let doc = run(
        Some(existing),
        &[
            closed,
            recorded("order-o1", &OrderEvent::Placed { total: 5 }),
        ],
    )
    .unwrap();
    assert_eq!(doc.unwrap().orders, 1);
}

#[test]
fn a_handler_error_fails_the_projection() {
    let s = "account-a1";
    let err = run::<AccountSummary>(
        None,
        &[
            opened(s),
            recorded(
                s,
                &BankEvent::Withdrew {
                    amount: 5,
                    balance: 0,
                },
            ),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProjectionError::Handler(m) if m == "overdraft: 5 > 0"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "handler failed: overdraft: 5 > 0");

    // Through the stores' loop: the failure names the event.
    let mut docs = HashMap::new();
    let events = [
        opened(s),
        recorded(
            s,
            &BankEvent::Withdrew {
                amount: 5,
                balance: 0,
            },
        ),
    ];
    let failure = apply_events(
        &ViewProjection::<AccountSummary>::new(),
        &events,
        &mut docs,
        |_| Ok::<_, ()>(None),
    )
    .unwrap_err();
    assert!(matches!(
        failure,
        ApplyFailure::Projection { index: 1, ref error }
            if matches!(**error, ProjectionError::Handler(_))
    ));
}

#[test]
fn a_handled_type_that_does_not_decode_is_a_decode_error() {
    let bad = raw("account-a1", "Deposited", 2, b"{\"amount\":");
    let err = ViewProjection::<AccountSummary>::new()
        .apply(None, &bad)
        .unwrap_err();
    let ProjectionError::Decode(e) = &err else {
        panic!("expected a decode error, got {err:?}");
    };
    assert_eq!(e.event_type, "Deposited");
    assert_eq!(e.stream_id, "account-a1");
}

#[test]
fn an_old_version_is_lifted_before_it_reaches_the_handler() {
    let v1 = raw("account-a1", "Deposited", 1, br#"{"value":42}"#);
    let doc = run::<AccountSummary>(None, &[v1]).unwrap().unwrap();
    assert_eq!(doc.balance, 42);
    assert_eq!(doc.tx_count, 1);

    // An alias of a handled variant reads as that variant.
    let debited = raw("account-a1", "Debited", 1, br#"{"amount":2,"balance":40}"#);
    let doc = run(Some(doc), &[debited]).unwrap().unwrap();
    assert_eq!(doc.balance, 40);
}

#[test]
fn every_event_of_a_split_reaches_its_handler_in_order() {
    // A removed type, split into a withdrawal (balance 0), a lock (a variant the view does
    // not handle: ignored) and a v1 deposit (balance 7).
    let legacy = raw("account-a1", "LegacyTransfer", 1, br#"{"amount":7}"#);
    let doc = run::<AccountSummary>(
        Some(AccountSummary {
            balance: 7,
            ..Default::default()
        }),
        &[legacy],
    )
    .unwrap()
    .unwrap();
    assert_eq!(doc.tx_count, 2);
    assert_eq!(doc.balance, 7);
}

#[test]
fn a_failing_event_of_a_split_stops_the_rest() {
    // The withdrawal of 7 from an empty account fails; the deposit after it is not applied.
    let legacy = raw("account-a1", "LegacyTransfer", 1, br#"{"amount":7}"#);
    let mut view = Some(AccountSummary::default());
    let err = AccountSummary::apply_event(&mut view, &legacy, &JsonCodec).unwrap_err();
    assert!(matches!(err, ProjectionError::Handler(_)));
    assert_eq!(view.unwrap().tx_count, 0);
}

#[test]
fn the_default_key_is_the_aggregate_id() {
    let event = opened("account-a1");
    assert_eq!(AccountSummary::key(&event).unwrap(), "a1");
    assert_eq!(
        ViewProjection::<AccountSummary>::new().key(&event).unwrap(),
        "a1"
    );
}

/// Events per actor, over both enums: one method handles several variants.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct ActorActivity {
    events: u64,
    deposited: u64,
}

fn by_actor(event: &RecordedEvent) -> Result<String, ProjectionError> {
    event
        .metadata
        .actor
        .clone()
        .ok_or_else(|| ProjectionError::Handler("an event without an actor".into()))
}

#[projection(name = "actor_activity", key = by_actor)]
impl ActorActivity {
    #[on(BankEvent::AccountOpened)]
    #[on(BankEvent::Withdrew)]
    #[on(OrderEvent::Placed)]
    fn touched(&mut self) {
        self.events += 1;
    }

    #[on(BankEvent::Deposited)]
    fn deposited(&mut self, amount: &u64) {
        self.events += 1;
        self.deposited += amount;
    }
}

/// The whole stream as the key, from a function returning a plain `String`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct StreamLength {
    events: u64,
}

fn whole_stream(event: &RecordedEvent) -> String {
    event.stream_id.to_string()
}

#[projection(name = "stream_length", key = whole_stream)]
impl StreamLength {
    #[on(OrderEvent::Placed)]
    fn placed(&mut self) {
        self.events += 1;
    }
}

fn with_actor<E: DomainEvent>(stream: &str, event: &E, actor: &str) -> RecordedEvent {
    let new = NewEvent::encode(event, &JsonCodec, Metadata::default().with_actor(actor)).unwrap();
    recorded_from_new(&Arc::from(stream), &new, 1, 1, SystemTime::now())
}

#[test]
fn a_key_function_chooses_the_document() {
    let events = [
        with_actor(
            "account-a1",
            &BankEvent::AccountOpened {
                owner: "ann".into(),
            },
            "ann",
        ),
        with_actor(
            "account-a2",
            &BankEvent::Deposited {
                amount: 4,
                balance: 4,
            },
            "ann",
        ),
        with_actor("order-o1", &OrderEvent::Placed { total: 1 }, "bob"),
        // Not handled: no key is asked for it.
        with_actor("order-o1", &OrderEvent::Closed, "carl"),
    ];
    let projection = ViewProjection::<ActorActivity>::new();
    assert_eq!(projection.key(&events[0]).unwrap(), "ann");
    let mut docs = HashMap::new();
    let changed = apply_events(&projection, &events, &mut docs, |_| Ok::<_, ()>(None)).unwrap();
    assert_eq!(changed, ["ann", "bob"]);
    let ann: ActorActivity = serde_json::from_slice(docs["ann"].as_ref().unwrap()).unwrap();
    assert_eq!(
        ann,
        ActorActivity {
            events: 2,
            deposited: 4
        }
    );

    // A key function's error fails the event.
    let anonymous = opened("account-a3");
    assert!(matches!(
        ActorActivity::key(&anonymous),
        Err(ProjectionError::Handler(_))
    ));

    // `-> String` works too.
    assert_eq!(
        StreamLength::key(&recorded("order-o9", &OrderEvent::Placed { total: 1 })).unwrap(),
        "order-o9"
    );
    assert!(StreamLength::handles_type("Placed"));
    assert!(!StreamLength::handles_type("Closed"));
    assert!(!StreamLength::handles_type("Deposited"));
}
