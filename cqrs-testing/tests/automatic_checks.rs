//! The checks every scenario makes without being asked: a pure `apply`, a `handle` that
//! leaves the state alone, and events that survive a codec round trip.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{StampCommand, StampEvent, Stamped, decode_by_name, panic_message};
use cqrs_core::{Aggregate, Codec, Command, DecodeReason, DomainEvent};
use cqrs_testing::prelude::*;
use serde::{Deserialize, Serialize};

// ---- refold: apply must be a pure function of its events ---------------------------

#[test]
#[should_panic(
    expected = "refold check: apply is not a pure function of its events: \
                           the state the handler path produced differs from the state \
                           refolded from the given and new events"
)]
fn an_impure_apply_is_caught_when_the_command_is_accepted() {
    let _ = Stamped::given_no_events().when(StampCommand::Tick);
}

#[test]
#[should_panic(
    expected = "refold check: apply is not a pure function of its events: \
                           folding the given events twice from A::default() gave \
                           different states"
)]
fn an_impure_apply_is_caught_even_when_the_command_is_rejected() {
    let _ = Stamped::given([StampEvent::Ticked]).when(StampCommand::Refuse);
}

#[test]
fn the_refold_failure_shows_both_states_as_a_diff() {
    let message = panic_message(|| {
        let _ = Stamped::given_no_events().when(StampCommand::Tick);
    });
    assert!(message.contains("(- live: given state + new events, + refolded from A::default())"));
    assert!(
        message.contains("      ticks: 1,\n-     stamp: "),
        "{message}"
    );
    assert!(message.contains("\n+     stamp: "), "{message}");
    assert!(
        message.ends_with("scenario: Stamped given 0 events, when `Tick`"),
        "{message}"
    );
}

// ---- handle must not change the state ----------------------------------------------

/// An aggregate whose handler changes the state through interior mutability.
#[derive(Debug, Default)]
struct Nosy {
    handled: AtomicU64,
}

impl PartialEq for Nosy {
    fn eq(&self, other: &Self) -> bool {
        self.handled.load(Ordering::Relaxed) == other.handled.load(Ordering::Relaxed)
    }
}

impl Aggregate for Nosy {
    const TYPE_NAME: &'static str = "Nosy";
    type Command = StampCommand;
    type Event = StampEvent;
    type Error = common::Refused;
    type Services = ();

    async fn handle<'a>(
        &'a self,
        command: StampCommand,
        _: &'a (),
    ) -> Result<Vec<StampEvent>, common::Refused> {
        self.handled.fetch_add(1, Ordering::Relaxed);
        match command {
            StampCommand::Refuse => Err(common::Refused),
            _ => Ok(vec![]),
        }
    }

    fn apply(&mut self, _: &StampEvent) {}
}

#[test]
#[should_panic(expected = "state check: handle changed the state while accepting the command")]
fn a_handler_that_changes_the_state_is_caught() {
    let _ = Nosy::given_no_events().when(StampCommand::Tick);
}

#[test]
#[should_panic(
    expected = "state check: handle changed the state while rejecting the command; a \
                           handler must only decide, changing the state is apply's job \
                           (- before handle, + after handle)\n  Nosy {\n-     handled: 0,\n\
                           +     handled: 1,\n  }\n\nscenario: Nosy given 0 events, when `Refuse`"
)]
fn a_rejecting_handler_that_changes_the_state_is_caught() {
    let _ = Nosy::given_no_events().when(StampCommand::Refuse);
}

// ---- codec: every event must survive a round trip ----------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LedgerEvent {
    Noted {
        amount: u64,
        #[serde(skip)]
        note: String,
    },
    /// Stored under a name `decode` does not know.
    Renamed,
    /// JSON cannot encode a map whose keys are not strings.
    Tabled(BTreeMap<Vec<u8>, u8>),
    Fine(u8, String),
}

impl DomainEvent for LedgerEvent {
    const EVENT_TYPES: &'static [&'static str] = &["Noted", "OldName", "Tabled", "Fine"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::Noted { .. } => "Noted",
            Self::Renamed => "NewName",
            Self::Tabled(_) => "Tabled",
            Self::Fine(..) => "Fine",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn decode_payload<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        _schema_version: u32,
        payload: cqrs_core::upcast::Payload<'_>,
        sink: &mut F,
    ) -> Result<(), DecodeReason> {
        sink(decode_by_name("LedgerEvent", codec, event_type, payload)?);
        Ok(())
    }
}

/// Records whatever event its command carries.
#[derive(Debug, Clone)]
struct Record(LedgerEvent);

impl Command for Record {
    fn command_name(&self) -> &'static str {
        "Record"
    }
}

#[derive(Debug, Default, PartialEq)]
struct Ledger {
    entries: usize,
}

impl Aggregate for Ledger {
    const TYPE_NAME: &'static str = "Ledger";
    type Command = Record;
    type Event = LedgerEvent;
    type Error = common::Refused;
    type Services = ();

    async fn handle<'a>(
        &'a self,
        Record(event): Record,
        _: &'a (),
    ) -> Result<Vec<LedgerEvent>, common::Refused> {
        Ok(vec![event])
    }

    fn apply(&mut self, _: &LedgerEvent) {
        self.entries += 1;
    }
}

fn noted() -> LedgerEvent {
    LedgerEvent::Noted {
        amount: 1,
        note: "hello".into(),
    }
}

#[test]
fn events_that_round_trip_pass() {
    Ledger::given([LedgerEvent::Fine(1, "a".into())])
        .when(Record(LedgerEvent::Fine(2, "b".into())))
        .then_events([LedgerEvent::Fine(2, "b".into())])
        .then_state(|s| assert_eq!(s.entries, 2));
}

#[test]
#[should_panic(
    expected = "codec check: event `Noted` does not survive a json round trip: \
                           it decodes to a different value (- original, + decoded)"
)]
fn a_new_event_losing_a_field_is_caught() {
    let _ = Ledger::given_no_events().when(Record(noted()));
}

#[test]
fn the_codec_failure_shows_the_diff_the_payload_and_which_event() {
    let message = panic_message(|| {
        let _ = Ledger::given_no_events().when(Record(noted()));
    });
    assert!(
        message.contains("-     note: \"hello\",\n+     note: \"\",\n"),
        "{message}"
    );
    assert!(message.contains("payload: {\"amount\":1}"), "{message}");
    assert!(message.contains("the event is a new event"), "{message}");
}

#[test]
#[should_panic(expected = "the event is a given event")]
fn a_given_event_losing_a_field_is_caught() {
    let _ = Ledger::given([noted()]).when(Record(LedgerEvent::Fine(0, String::new())));
}

#[test]
fn an_event_decode_does_not_know_is_caught_with_the_codec_error() {
    let message = panic_message(|| {
        let _ = Ledger::given_no_events().when(Record(LedgerEvent::Renamed));
    });
    assert!(
        message.starts_with(
            "codec check: event `NewName` does not survive a json round trip: it does not decode"
        ),
        "{message}"
    );
    assert!(
        message.contains("error: no variant of `LedgerEvent` is stored under this type name"),
        "{message}"
    );
    assert!(message.contains("payload: null"), "{message}");
}

#[test]
#[should_panic(
    expected = "codec check: event `Tabled` cannot be encoded with the json codec\n\n\
                           error: json codec: key must be a string"
)]
fn an_event_that_does_not_encode_is_caught() {
    let table = BTreeMap::from([(vec![1u8], 2u8)]);
    let _ = Ledger::given_no_events().when(Record(LedgerEvent::Tabled(table)));
}

// ---- the handler runs to completion, its panics surface -----------------------------

#[tokio::test]
#[should_panic(expected = "boom: the handler panicked")]
async fn a_handler_panic_inside_a_tokio_test_surfaces() {
    let _ = Stamped::given_no_events().when(StampCommand::Explode);
}

#[test]
#[should_panic(expected = "boom: the handler panicked")]
fn a_handler_panic_surfaces() {
    let _ = Stamped::given_no_events().when(StampCommand::Explode);
}
