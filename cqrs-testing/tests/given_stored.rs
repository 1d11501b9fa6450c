//! Scenarios that start from events as they are stored: old schema versions, renamed and
//! removed types, splits and drops, and the message of a fixture that does not decode.

mod common;
mod versioned;

use common::panic_message;
use cqrs_core::prelude::*;
use cqrs_core::upcast::StoredValue;
use cqrs_testing::prelude::*;
use serde_json::json;
use versioned::{Account, AccountCommand, AccountError, AccountEvent, opened};

// ---- stored events become the history ----------------------------------------------

#[test]
fn old_versions_are_upcast_into_the_history() {
    Account::given_stored("Opened", 1, json!({"name": "ann"}))
        .and_stored("Deposited", 1, json!({"cents": "250"}))
        .when(AccountCommand::Withdraw { amount: 50 })
        .then_events([AccountEvent::Withdrew { amount: 50 }])
        .then_state(|account| {
            assert_eq!(account.owner.as_deref(), Some("ann"));
            assert_eq!(account.currency, "EUR");
            assert_eq!(account.balance, 200);
        });
}

#[test]
fn every_version_takes_the_rest_of_its_chain() {
    Account::given_stored("Opened", 1, json!({"name": "ann"}))
        .and_stored("Opened", 2, json!({"owner": "bo", "currency": "NOK"}))
        .and_stored("Opened", 2, json!({"owner": "cy", "currency": null}))
        .and_stored("Opened", 3, json!({"owner": "di", "currency": "SEK"}))
        .then_given_events([
            opened("ann", "EUR"),
            opened("bo", "NOK"),
            opened("cy", "EUR"),
            opened("di", "SEK"),
        ]);
}

#[test]
fn aliases_read_renamed_types() {
    Account::given_stored("AccountCreated", 1, json!({"name": "ann"}))
        .and_stored("Deposited", 2, json!({"amount": 9}))
        .and_stored("Withdrawn", 1, json!({"amount": 4}))
        .then_given_events([
            opened("ann", "EUR"),
            AccountEvent::Deposited { amount: 9 },
            AccountEvent::Withdrew { amount: 4 },
        ])
        .then_state(|account| assert_eq!(account.balance, 5));
}

#[test]
fn a_split_gives_several_events() {
    let given = Account::given([opened("ann", "EUR"), AccountEvent::Deposited { amount: 10 }])
        .and_stored("Transferred", 1, json!({"amount": 7}));
    assert_eq!(
        given.events()[2..],
        [
            AccountEvent::Withdrew { amount: 7 },
            AccountEvent::Deposited { amount: 7 },
        ]
    );
    given
        .when(AccountCommand::Withdraw { amount: 10 })
        .then_events([AccountEvent::Withdrew { amount: 10 }])
        .then_state(|account| assert_eq!(account.balance, 0));
}

#[test]
fn a_drop_gives_no_event() {
    let given = Account::given_stored("Opened", 1, json!({"name": "ann"}))
        .and_stored("Audited", 7, json!({"by": "eve"}))
        .and_stored("Noted", 1, json!({"note": ""}))
        .and_stored("Noted", 1, json!({"note": "vip"}));
    assert_eq!(
        given.events(),
        [
            opened("ann", "EUR"),
            AccountEvent::Noted { text: "vip".into() }
        ]
    );
    given
        .when(AccountCommand::Close)
        .then_events([AccountEvent::Closed])
        .then_state(|account| assert_eq!(account.notes, ["vip"]));
}

#[test]
fn a_history_of_dropped_events_only_is_empty() {
    Account::given_stored("Audited", 1, json!(null))
        .then_given_events([])
        .when(AccountCommand::Deposit { amount: 1 })
        .then_error(AccountError::NotOpen);
}

#[test]
fn stored_and_typed_events_keep_the_order_they_are_given_in() {
    Account::given([opened("ann", "EUR")])
        .and_stored("Deposited", 1, json!({"cents": "5"}))
        .and([AccountEvent::Withdrew { amount: 2 }])
        .and_stored("Withdrawn", 1, json!({"amount": 3}))
        .and([])
        .then_given_events([
            opened("ann", "EUR"),
            AccountEvent::Deposited { amount: 5 },
            AccountEvent::Withdrew { amount: 2 },
            AccountEvent::Withdrew { amount: 3 },
        ])
        .when(AccountCommand::Withdraw { amount: 1 })
        .then_error(AccountError::InsufficientFunds {
            balance: 0,
            requested: 1,
        });
}

#[test]
fn and_stored_values_takes_stored_values() {
    let stored = vec![
        StoredValue::new("Opened", 1, json!({"name": "ann"})),
        StoredValue::new("Transferred", 1, json!({"amount": 0})),
    ];
    Account::given_no_events()
        .and_stored_values(stored)
        .then_given_events([
            opened("ann", "EUR"),
            AccountEvent::Withdrew { amount: 0 },
            AccountEvent::Deposited { amount: 0 },
        ]);
}

#[test]
fn with_services_and_when_with_keep_the_stored_history() {
    let then = Account::given_stored("Opened", 1, json!({"name": "ann"}))
        .and_stored("Deposited", 1, json!({"cents": "3"}))
        .with_services(())
        .when_with(
            AccountCommand::Withdraw { amount: 3 },
            Metadata::default().with_actor("ann"),
        )
        .then_events([AccountEvent::Withdrew { amount: 3 }]);
    assert_eq!(
        then.encoded_events()[0].metadata.actor.as_deref(),
        Some("ann")
    );
}

#[test]
fn the_given_events_are_encoded_at_their_current_version() {
    // `when` round-trips every given event; an upcast event is re-encoded as it is
    // today (Opened v3), so the round trip passes although the stored event was v1.
    let then = Account::given_stored("Opened", 1, json!({"name": "ann"}))
        .when(AccountCommand::Deposit { amount: 1 });
    let event = opened("ann", "EUR");
    assert_eq!(event.schema_version(), 3);
    let new = NewEvent::encode(&event, &JsonCodec, Metadata::default()).unwrap();
    assert_eq!(&new.payload[..], br#"{"owner":"ann","currency":"EUR"}"#);
    let _ = then.then_events([AccountEvent::Deposited { amount: 1 }]);
}

// ---- failures --------------------------------------------------------------------

#[test]
fn a_fixture_that_does_not_decode_names_its_index_type_version_payload_and_reason() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Opened", 1, json!({"name": "ann"}))
            .and([AccountEvent::Deposited { amount: 1 }])
            .and_stored("Deposited", 1, json!({"cents": "lots"}));
    });
    assert!(
        message.starts_with(
            "given_stored: the stored event given at index 2 (`Deposited`, schema v1) does \
             not decode into `given_stored::versioned::AccountEvent`\n\n\
             event type:     Deposited\n\
             schema version: 1\n\
             payload:\n{\n  \"cents\": \"lots\"\n}\n\n\
             reason: Upcast {\n"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "(displays as: upcast step v1 -> v2 (json `deposited_v1`) failed: `cents` is not \
             a number: invalid digit found in string)"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "scenario: Account given 2 events (1 of them decoded from 1 stored event), no command"
        ),
        "{message}"
    );
}

#[test]
fn an_unknown_type_is_reported_with_the_known_ones() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Renamed", 1, json!({}));
    });
    assert!(
        message
            .starts_with("given_stored: the stored event given at index 0 (`Renamed`, schema v1)"),
        "{message}"
    );
    assert!(message.contains("UnknownEventType"), "{message}");
    assert!(message.contains("known: "), "{message}");
    assert!(
        message.ends_with("scenario: Account given 0 events, no command"),
        "{message}"
    );
}

#[test]
fn a_version_newer_than_the_build_is_reported() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Opened", 4, json!({"owner": "ann"}));
    });
    assert!(
        message.contains("schema version 4 cannot be read: this build reads versions 1 to 3"),
        "{message}"
    );
}

#[test]
fn a_split_event_that_does_not_decode_is_reported_with_the_split() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Transferred", 1, json!({"amount": "x"}));
    });
    assert!(
        message.contains("index 0 (`Transferred`, schema v1)"),
        "{message}"
    );
    assert!(message.contains("produced by a split"), "{message}");
}

#[test]
fn and_stored_values_reports_the_first_bad_value() {
    let message = panic_message(|| {
        let _ = Account::given_no_events().and_stored_values([
            StoredValue::new("Opened", 1, json!({"name": "ann"})),
            StoredValue::new("Opened", 1, json!({"nom": "bo"})),
        ]);
    });
    assert!(
        message.contains("index 1 (`Opened`, schema v1)"),
        "{message}"
    );
    assert!(message.contains("typed `OpenedV1`"), "{message}");
}

#[test]
fn then_given_events_shows_a_diff() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Opened", 1, json!({"name": "ann"}))
            .then_given_events([opened("ann", "USD")]);
    });
    assert!(
        message.starts_with("then_given_events: the given events differ (- expected, + actual)\n"),
        "{message}"
    );
    assert!(
        message.contains("-         currency: \"USD\",\n+         currency: \"EUR\","),
        "{message}"
    );
    assert!(
        message.ends_with(
            "scenario: Account given 1 event (1 of them decoded from 1 stored event), no command"
        ),
        "{message}"
    );
}

#[test]
fn then_state_on_the_given_history_propagates_the_assertion() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Deposited", 1, json!({"cents": "2"}))
            .then_state(|account| assert_eq!(account.balance, 3, "the balance"));
    });
    assert!(message.contains("the balance"), "{message}");
}

#[test]
fn a_failed_assertion_counts_the_stored_events_in_the_scenario() {
    let message = panic_message(|| {
        let _ = Account::given_stored("Opened", 1, json!({"name": "ann"}))
            .and_stored("Transferred", 1, json!({"amount": 0}))
            .and_stored("Audited", 1, json!({}))
            .when(AccountCommand::Close)
            .then_no_events();
    });
    assert!(
        message.ends_with(
            "scenario: Account given 3 events (3 of them decoded from 3 stored events), \
             when `Close`"
        ),
        "{message}"
    );
}

// ---- the automatic checks see the upcast events -------------------------------------

mod lossy {
    //! An event whose upcast sets a field the current encoding skips: the event a stored
    //! fixture decodes into does not survive the codec round trip.

    use cqrs_core::prelude::*;

    #[derive(Debug, Deserialize)]
    pub(crate) struct TaggedV1 {
        name: String,
    }

    impl From<TaggedV1> for LossyEvent {
        fn from(v1: TaggedV1) -> Self {
            LossyEvent::Tagged {
                name: v1.name,
                legacy: true,
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    pub(crate) enum LossyEvent {
        #[event(version = 2)]
        #[upcast(1 -> 2, from = TaggedV1)]
        Tagged {
            name: String,
            #[serde(skip)]
            legacy: bool,
        },
    }

    #[derive(Debug, Clone, PartialEq, Command)]
    pub(crate) enum LossyCommand {
        Tag { name: String },
    }

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("never")]
    pub(crate) struct Never;

    #[derive(Debug, Default, PartialEq, Aggregate)]
    #[aggregate(command = LossyCommand, event = LossyEvent, error = Never)]
    pub(crate) struct Lossy {
        pub(crate) names: Vec<String>,
    }

    #[aggregate_impl]
    impl Lossy {
        #[handle]
        fn tag(&self, name: String) -> LossyEvent {
            LossyEvent::Tagged {
                name,
                legacy: false,
            }
        }

        #[apply]
        fn tagged(&mut self, name: &str) {
            self.names.push(name.to_owned());
        }
    }
}

#[test]
fn an_upcast_event_that_does_not_round_trip_fails_the_codec_check() {
    use lossy::{Lossy, LossyCommand};

    // Current-version fixtures round-trip fine.
    Lossy::given_stored("Tagged", 2, json!({"name": "a"}))
        .when(LossyCommand::Tag { name: "b".into() })
        .then_state(|s| assert_eq!(s.names, ["a", "b"]));

    let message = panic_message(|| {
        let _ = Lossy::given_stored("Tagged", 1, json!({"name": "a"}))
            .when(LossyCommand::Tag { name: "b".into() });
    });
    assert!(
        message.starts_with(
            "codec check: event `Tagged` does not survive a json round trip: it decodes to a \
             different value"
        ),
        "{message}"
    );
    assert!(
        message.contains("-     legacy: true,\n+     legacy: false,"),
        "{message}"
    );
    assert!(message.contains("the event is a given event"), "{message}");

    // Checking the given history alone runs the same check.
    let message = panic_message(|| {
        let _ = Lossy::given_stored("Tagged", 1, json!({"name": "a"})).then_state(|_| {});
    });
    assert!(
        message.starts_with("codec check: event `Tagged`"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "scenario: Lossy given 1 event (1 of them decoded from 1 stored event), no command"
        ),
        "{message}"
    );
}
