//! The Given/When/Then API: passing scenarios for every assertion, and the message each
//! failed assertion panics with.

mod common;

use common::{Bank, BankAccount, BankCommand, BankError, BankEvent, opened, panic_message};
use cqrs_core::Metadata;
use cqrs_testing::prelude::*;

// ---- passing scenarios -------------------------------------------------------------

#[test]
fn then_events_accepts_the_exact_events() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 10 })
        .then_events([BankEvent::Deposited {
            amount: 10,
            balance: 10,
        }]);
}

#[test]
fn then_events_accepts_several_events_in_order() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 7,
            balance: 7,
        },
    ])
    .when(BankCommand::Close)
    .then_events([
        BankEvent::Withdrawn {
            amount: 7,
            fee: 0,
            balance: 0,
        },
        BankEvent::Closed,
    ]);
}

#[test]
fn then_events_takes_a_vec_too() {
    let expected = vec![BankEvent::Deposited {
        amount: 3,
        balance: 8,
    }];
    BankAccount::given(vec![
        opened(),
        BankEvent::Deposited {
            amount: 5,
            balance: 5,
        },
    ])
    .when(BankCommand::Deposit { amount: 3 })
    .then_events(expected);
}

#[test]
fn given_no_events_starts_from_the_default_state() {
    BankAccount::given_no_events()
        .when(BankCommand::Open {
            owner: "ann".into(),
        })
        .then_events([opened()])
        .then_state(|s| assert_eq!(s.owner.as_deref(), Some("ann")));
}

#[test]
fn then_no_events_accepts_an_accepted_command_without_events() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 0 })
        .then_no_events();
}

#[test]
fn then_error_accepts_the_equal_error() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 1 })
        .then_error(BankError::NotOpen);
}

#[test]
fn then_error_matches_accepts_a_matching_error() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 5,
            balance: 5,
        },
    ])
    .when(BankCommand::Withdraw { amount: 6 })
    .then_error_matches(|e| matches!(e, BankError::InsufficientFunds { balance: 5, .. }));
}

#[test]
fn then_state_sees_the_state_after_the_new_events() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 5,
            balance: 5,
        },
    ])
    .when(BankCommand::Deposit { amount: 10 })
    .then_state(|s: &BankAccount| assert_eq!(s.balance, 15));
}

#[test]
fn then_state_after_a_rejection_is_the_given_state() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 5,
            balance: 5,
        },
    ])
    .when(BankCommand::Withdraw { amount: 50 })
    .then_error_matches(|e| matches!(e, BankError::InsufficientFunds { .. }))
    .then_state(|s| {
        assert_eq!(
            *s,
            BankAccount {
                owner: Some("ann".into()),
                balance: 5,
                closed: false
            }
        )
    });
}

#[test]
fn then_events_match_accepts_a_true_predicate() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 9,
            balance: 9,
        },
    ])
    .when(BankCommand::Close)
    .then_events_match(|evs: &[BankEvent]| evs.len() == 2 && evs[1] == BankEvent::Closed);
}

#[test]
fn assertions_chain() {
    let outcome = BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 4 })
        .then_events([BankEvent::Deposited {
            amount: 4,
            balance: 4,
        }])
        .then_events_match(|evs| evs.len() == 1)
        .then_state(|s| assert_eq!(s.balance, 4));
    assert_eq!(outcome.state().balance, 4);
    assert_eq!(
        outcome.result().unwrap(),
        [BankEvent::Deposited {
            amount: 4,
            balance: 4
        }]
        .as_slice()
    );
    assert_eq!(outcome.into_result().unwrap().len(), 1);
}

#[test]
fn with_services_hands_them_to_the_handler() {
    let bank = Bank {
        withdrawal_fee: 2,
        ..Bank::default()
    };
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 10,
            balance: 10,
        },
    ])
    .with_services(bank)
    .when(BankCommand::Withdraw { amount: 5 })
    .then_events([BankEvent::Withdrawn {
        amount: 5,
        fee: 2,
        balance: 3,
    }])
    .then_state(|s| assert_eq!(s.balance, 3));
}

#[test]
fn an_async_handler_awaiting_its_services_runs_to_completion() {
    // `Open` awaits a (sleeping) screening of the owner: it needs a runtime with timers.
    let bank = Bank {
        blocked: vec!["mallory".into()],
        ..Bank::default()
    };
    BankAccount::given_no_events()
        .with_services(bank)
        .when(BankCommand::Open {
            owner: "mallory".into(),
        })
        .then_error(BankError::Blocked("mallory".into()));
}

#[test]
fn when_with_carries_the_metadata_into_the_encoded_events() {
    let meta = Metadata::default()
        .with_actor("alice")
        .with("tenant", "acme");
    let outcome = BankAccount::given([opened()])
        .when_with(BankCommand::Deposit { amount: 10 }, meta.clone())
        .then_events([BankEvent::Deposited {
            amount: 10,
            balance: 10,
        }]);
    assert_eq!(outcome.metadata(), &meta);
    let [encoded] = outcome.encoded_events() else {
        panic!("one encoded event expected")
    };
    assert_eq!(encoded.metadata, meta);
    assert_eq!(encoded.event_type, "Deposited");
    assert_eq!(encoded.schema_version, 1);
    assert_eq!(&encoded.payload[..], br#"{"amount":10,"balance":10}"#);
}

#[test]
fn with_services_and_when_with_combine() {
    let meta = Metadata::default().with_actor("teller");
    let outcome = BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 10,
            balance: 10,
        },
    ])
    .with_services(Bank {
        withdrawal_fee: 1,
        ..Bank::default()
    })
    .when_with(BankCommand::Withdraw { amount: 4 }, meta.clone())
    .then_events([BankEvent::Withdrawn {
        amount: 4,
        fee: 1,
        balance: 5,
    }]);
    assert_eq!(outcome.encoded_events()[0].metadata, meta);
}

#[test]
fn when_alone_sends_empty_metadata_and_a_rejection_encodes_nothing() {
    let accepted = BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 1 })
        .then_events_match(|evs| evs.len() == 1);
    assert!(accepted.metadata().is_empty());
    assert!(accepted.encoded_events()[0].metadata.is_empty());

    let rejected = BankAccount::given_no_events()
        .when_with(BankCommand::Close, Metadata::default().with_actor("bob"))
        .then_error(BankError::NotOpen);
    assert_eq!(rejected.metadata().actor.as_deref(), Some("bob"));
    assert!(rejected.encoded_events().is_empty());
}

#[tokio::test]
async fn a_scenario_runs_inside_a_current_thread_tokio_test() {
    tokio::task::yield_now().await;
    BankAccount::given_no_events()
        .when(BankCommand::Open {
            owner: "ann".into(),
        })
        .then_events([opened()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_runs_inside_a_multi_thread_tokio_test() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 2 })
        .then_events([BankEvent::Deposited {
            amount: 2,
            balance: 2,
        }]);
}

#[tokio::test]
#[should_panic(expected = "then_error: expected the command to be rejected with NotOpen")]
async fn a_failure_inside_a_tokio_test_still_panics_with_its_message() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 2 })
        .then_error(BankError::NotOpen);
}

// ---- failed assertions ---------------------------------------------------------------

#[test]
#[should_panic(expected = "then_events: the events differ (- expected, + actual)")]
fn then_events_with_different_events_panics_with_a_diff() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 10 })
        .then_events([BankEvent::Deposited {
            amount: 10,
            balance: 11,
        }]);
}

#[test]
fn the_events_diff_marks_expected_and_actual_lines_and_names_the_scenario() {
    let message = panic_message(|| {
        let _ = BankAccount::given([opened()])
            .when(BankCommand::Deposit { amount: 10 })
            .then_events([BankEvent::Deposited {
                amount: 10,
                balance: 11,
            }]);
    });
    let expected_diff = "\
  [
      Deposited {
          amount: 10,
-         balance: 11,
+         balance: 10,
      },
  ]
";
    assert!(message.contains(expected_diff), "{message}");
    assert!(
        message.ends_with("scenario: BankAccount given 1 event, when `Deposit`"),
        "{message}"
    );
}

#[test]
fn a_missing_event_shows_as_a_removed_line() {
    let message = panic_message(|| {
        let _ = BankAccount::given([
            opened(),
            BankEvent::Deposited {
                amount: 1,
                balance: 1,
            },
        ])
        .when(BankCommand::Close)
        .then_events([BankEvent::Closed]);
    });
    assert!(message.contains("+     Withdrawn {\n"), "{message}");
    assert!(message.contains("      Closed,\n"), "{message}");
}

#[test]
#[should_panic(
    expected = "then_events: expected 1 event, but the command was rejected\n\n\
                error:\nNotOpen\n(displays as: the account is not open)\n\n\
                expected events:\n[\n    Deposited {"
)]
fn then_events_on_a_rejected_command_shows_the_error() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 10 })
        .then_events([BankEvent::Deposited {
            amount: 10,
            balance: 10,
        }]);
}

#[test]
#[should_panic(
    expected = "then_error: expected the command to be rejected with NotOpen, \
                           but it was accepted and produced 1 event:\n[\n    Deposited {"
)]
fn then_error_on_an_accepted_command_shows_the_events() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 10 })
        .then_error(BankError::NotOpen);
}

#[test]
fn then_error_with_another_error_panics_with_a_diff() {
    let message = panic_message(|| {
        let _ = BankAccount::given([opened()])
            .when(BankCommand::Open {
                owner: "bob".into(),
            })
            .then_error(BankError::NotOpen);
    });
    assert!(message.starts_with("then_error: the errors differ (- expected, + actual)"));
    assert!(message.contains("- NotOpen\n+ AlreadyOpen\n"), "{message}");
    assert!(
        message.contains("\n\nthe actual error displays as: the account is already open\n\n"),
        "{message}"
    );
}

#[test]
#[should_panic(expected = "then_no_events: expected no events, but the command produced 1 event:")]
fn then_no_events_with_events_panics() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 10 })
        .then_no_events();
}

#[test]
#[should_panic(
    expected = "then_no_events: expected the command to be accepted with no events, \
                           but it was rejected"
)]
fn then_no_events_on_a_rejected_command_panics() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 0 })
        .then_no_events();
}

#[test]
#[should_panic(
    expected = "then_error_matches: the error does not match the predicate\n\n\
                error:\nNotOpen\n(displays as: the account is not open)"
)]
fn then_error_matches_with_a_false_predicate_panics() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 1 })
        .then_error_matches(|e| matches!(e, BankError::AlreadyOpen));
}

#[test]
#[should_panic(expected = "then_error_matches: expected the command to be rejected, \
                           but it was accepted and produced 2 events:")]
fn then_error_matches_on_an_accepted_command_panics() {
    BankAccount::given([
        opened(),
        BankEvent::Deposited {
            amount: 1,
            balance: 1,
        },
    ])
    .when(BankCommand::Close)
    .then_error_matches(|_| true);
}

#[test]
#[should_panic(
    expected = "then_events_match: the events do not match the predicate; \
                           the command produced 1 event:\n[\n    Deposited {"
)]
fn then_events_match_with_a_false_predicate_lists_the_events() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 1 })
        .then_events_match(|evs| evs.is_empty());
}

#[test]
#[should_panic(expected = "then_events_match: expected events, but the command was rejected")]
fn then_events_match_on_a_rejected_command_panics() {
    BankAccount::given_no_events()
        .when(BankCommand::Deposit { amount: 1 })
        .then_events_match(|_| true);
}

#[test]
#[should_panic(expected = "the balance after the deposit")]
fn then_state_propagates_the_closures_assertion() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 1 })
        .then_state(|s| assert_eq!(s.balance, 2, "the balance after the deposit"));
}

#[test]
#[should_panic(expected = "then_events: the events differ")]
fn a_failure_later_in_a_chain_is_reported() {
    BankAccount::given([opened()])
        .when(BankCommand::Deposit { amount: 1 })
        .then_state(|s| assert_eq!(s.balance, 1))
        .then_events([]);
}

// ---- services without Default ----------------------------------------------------------

/// Services that cannot be defaulted: only `with_services` can hand them over, and that
/// must not require `Default`.
struct Greeting(String);

#[derive(Debug, Default, PartialEq)]
struct Greeter {
    greeted: u32,
}

impl cqrs_core::Aggregate for Greeter {
    const TYPE_NAME: &'static str = "Greeter";
    type Command = common::StampCommand;
    type Event = common::StampEvent;
    type Error = common::Refused;
    type Services = Greeting;

    async fn handle<'a>(
        &'a self,
        _: common::StampCommand,
        greeting: &'a Greeting,
    ) -> Result<Vec<common::StampEvent>, common::Refused> {
        if greeting.0 == "hello" {
            Ok(vec![common::StampEvent::Ticked])
        } else {
            Err(common::Refused)
        }
    }

    fn apply(&mut self, _: &common::StampEvent) {
        self.greeted += 1;
    }
}

#[test]
fn with_services_does_not_need_default_services() {
    Greeter::given([common::StampEvent::Ticked])
        .with_services(Greeting("hello".into()))
        .when(common::StampCommand::Tick)
        .then_events([common::StampEvent::Ticked])
        .then_state(|s| assert_eq!(s.greeted, 2));
    Greeter::given_no_events()
        .with_services(Greeting("bye".into()))
        .when_with(common::StampCommand::Tick, cqrs_core::Metadata::default())
        .then_error(common::Refused);
}
