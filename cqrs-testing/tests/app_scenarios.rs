//! Application-level scenarios: commands through the runtime, its middleware, retries and
//! store.

mod common;
mod flight;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Bank, BankAccount, BankCommand, BankError, BankEvent, opened, panic_message};
use cqrs_core::prelude::*;
use cqrs_core::runtime::{CommandRequest, Middleware, Next};
use cqrs_core::upcast::StoredValue;
use cqrs_testing::prelude::*;
use flight::{Flight, FlightCommand, FlightEvent};
use serde_json::json;

fn deposited(amount: u64, balance: u64) -> BankEvent {
    BankEvent::Deposited { amount, balance }
}

fn withdrawn(amount: u64, balance: u64) -> BankEvent {
    BankEvent::Withdrawn {
        amount,
        fee: 0,
        balance,
    }
}

/// Adds an actor and a custom entry to every command's metadata.
struct Stamp;

#[cqrs_core::async_trait]
impl Middleware<BankAccount> for Stamp {
    async fn call(
        &self,
        mut request: CommandRequest<BankAccount>,
        next: Next<'_, BankAccount>,
    ) -> CommandResult<BankAccount> {
        request.metadata = request.metadata.with_actor("teller-7").with("via", "stamp");
        next.run(request).await
    }
}

/// Refuses withdrawals from `frozen`.
struct Freeze;

#[cqrs_core::async_trait]
impl Middleware<BankAccount> for Freeze {
    async fn call(
        &self,
        request: CommandRequest<BankAccount>,
        next: Next<'_, BankAccount>,
    ) -> CommandResult<BankAccount> {
        if request.aggregate_id == "frozen" {
            return Err(CommandError::Refused("the account is frozen".into()));
        }
        next.run(request).await
    }
}

/// Another writer: before the second command it sees, deposits 100 into that command's
/// account behind the runtime's back, so that the runtime's cached state is stale.
struct Interloper {
    store: InMemoryEventStore,
    calls: Arc<AtomicUsize>,
}

#[cqrs_core::async_trait]
impl Middleware<BankAccount> for Interloper {
    async fn call(
        &self,
        request: CommandRequest<BankAccount>,
        next: Next<'_, BankAccount>,
    ) -> CommandResult<BankAccount> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            let stream_id = BankAccount::stream_id(&request.aggregate_id);
            let held = self.store.read_stream(&stream_id, 1).await.unwrap();
            let balance = match held
                .last()
                .unwrap()
                .decode::<BankEvent, _>(&JsonCodec)
                .unwrap()[..]
            {
                [BankEvent::Deposited { balance, .. }] => balance,
                _ => 0,
            };
            let event = NewEvent::encode(
                &deposited(100, balance + 100),
                &JsonCodec,
                Metadata::default().with_actor("interloper"),
            )
            .unwrap();
            self.store
                .append(&stream_id, ExpectedVersion::Any, vec![event])
                .await
                .unwrap();
        }
        next.run(request).await
    }
}

fn bank(store: InMemoryEventStore) -> Cqrs<BankAccount> {
    Cqrs::<BankAccount>::builder(store).build()
}

// ---- commands through the runtime --------------------------------------------------

#[test]
fn a_command_commits_against_the_given_stream() {
    AppScenario::new(bank)
        .given("a", [opened(), deposited(5, 5)])
        .when("a", BankCommand::Withdraw { amount: 2 })
        .then_committed([withdrawn(2, 3)])
        .then_committed_with(|c| {
            assert_eq!(&*c.stream_id, "BankAccount-a");
            assert_eq!(c.stream_version, 3);
            assert_eq!(c.events[0].version, 3);
            assert_eq!(c.events[0].position, 3);
        })
        .then_stream("a", [opened(), deposited(5, 5), withdrawn(2, 3)])
        .then_state("a", |account| assert_eq!(account.balance, 3));
}

#[test]
fn several_streams_are_given_and_commands_run_in_sequence() {
    let scenario = AppScenario::new(bank)
        .given("a", [opened()])
        .given("b", [opened(), deposited(7, 7)])
        .given("a", [deposited(1, 1)])
        .when("a", BankCommand::Deposit { amount: 2 })
        .then_committed([deposited(2, 3)])
        .when("b", BankCommand::Close)
        .then_committed([withdrawn(7, 0), BankEvent::Closed])
        .when("c", BankCommand::Open { owner: "cy".into() })
        .then_committed([BankEvent::AccountOpened { owner: "cy".into() }])
        .then_stream("a", [opened(), deposited(1, 1), deposited(2, 3)])
        .then_stream(
            "b",
            [
                opened(),
                deposited(7, 7),
                withdrawn(7, 0),
                BankEvent::Closed,
            ],
        )
        .then_state("b", |account| assert!(account.closed));
    // The global log holds every event in commit order.
    let head = scenario.block_on(scenario.store().head_position()).unwrap();
    assert_eq!(head, 8);
    let page = scenario.block_on(scenario.cqrs().read_log(1, 100)).unwrap();
    assert_eq!(page.events.len(), 8);
    assert_eq!(
        scenario.stream("c"),
        [BankEvent::AccountOpened { owner: "cy".into() }]
    );
    assert!(scenario.result().unwrap().is_ok());
}

#[test]
fn middleware_sees_the_command_and_its_metadata_reaches_the_store() {
    AppScenario::new(|store| {
        Cqrs::<BankAccount>::builder(store)
            .middleware(Stamp)
            .build()
    })
    .given("a", [opened()])
    .when_with(
        "a",
        BankCommand::Deposit { amount: 4 },
        Metadata::default().with("request", "r-1"),
    )
    .then_committed([deposited(4, 4)])
    .then_committed_with(|c| {
        let meta = &c.events[0].metadata;
        assert_eq!(meta.actor.as_deref(), Some("teller-7"));
        assert_eq!(meta.custom["via"], "stamp");
        assert_eq!(meta.custom["request"], "r-1");
    })
    .then_stream_raw("BankAccount-a", |events| {
        // The given event carries no metadata; the committed one the middleware's.
        assert!(events[0].metadata.is_empty());
        assert_eq!(events[1].metadata.actor.as_deref(), Some("teller-7"));
    });
}

#[test]
fn a_middleware_refusal_is_an_error_and_writes_nothing() {
    AppScenario::new(|store| {
        Cqrs::<BankAccount>::builder(store)
            .middleware(Freeze)
            .build()
    })
    .given("frozen", [opened(), deposited(5, 5)])
    .when("frozen", BankCommand::Withdraw { amount: 1 })
    .then_error_matches(
        |e| matches!(e, CommandError::Refused(why) if why.to_string() == "the account is frozen"),
    )
    .then_stream("frozen", [opened(), deposited(5, 5)]);
}

#[test]
fn a_rejection_leaves_every_stream_unchanged() {
    let scenario = AppScenario::new(bank)
        .given("a", [opened(), deposited(5, 5)])
        .given("b", [opened()])
        .when("a", BankCommand::Withdraw { amount: 9 })
        .then_rejected(BankError::InsufficientFunds {
            balance: 5,
            requested: 9,
        })
        .then_stream("a", [opened(), deposited(5, 5)])
        .then_stream("b", [opened()]);
    assert_eq!(
        scenario.block_on(scenario.store().head_position()).unwrap(),
        3
    );
}

#[test]
fn an_accepted_command_without_events_commits_nothing() {
    AppScenario::new(bank)
        .given("a", [opened()])
        .when("a", BankCommand::Deposit { amount: 0 })
        .then_no_events()
        .then_committed([])
        .then_stream("a", [opened()]);
}

#[test]
fn services_built_into_the_runtime_reach_the_handler() {
    AppScenario::new(|store| {
        Cqrs::<BankAccount>::builder_with_services(
            store,
            Bank {
                withdrawal_fee: 1,
                blocked: vec!["eve".into()],
            },
        )
        .build()
    })
    .given("a", [opened(), deposited(5, 5)])
    .when("a", BankCommand::Withdraw { amount: 2 })
    .then_committed([BankEvent::Withdrawn {
        amount: 2,
        fee: 1,
        balance: 2,
    }])
    .when(
        "e",
        BankCommand::Open {
            owner: "eve".into(),
        },
    )
    .then_rejected(BankError::Blocked("eve".into()));
}

// ---- concurrency: another writer between load and append ---------------------------

#[test]
fn a_writer_between_two_commands_makes_the_runtime_retry_against_the_new_state() {
    AppScenario::new(bank)
        .given("a", [opened()])
        .when("a", BankCommand::Deposit { amount: 5 }) // the runtime caches version 2
        .given("a", [deposited(100, 105)]) // another writer: version 3
        // Decided on the cached state (balance 5), the append conflicts; the runtime
        // reloads and decides again on balance 105.
        .when("a", BankCommand::Deposit { amount: 2 })
        .then_committed([deposited(2, 107)])
        .then_committed_with(|c| assert_eq!(c.stream_version, 4))
        .then_stream(
            "a",
            [
                opened(),
                deposited(5, 5),
                deposited(100, 105),
                deposited(2, 107),
            ],
        );
}

#[test]
fn a_middleware_that_writes_first_provokes_a_conflict_the_retry_resolves() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    AppScenario::new(move |store| {
        Cqrs::<BankAccount>::builder(store.clone())
            .middleware(Interloper { store, calls: seen })
            .build()
    })
    .given("a", [opened()])
    .when("a", BankCommand::Deposit { amount: 5 })
    .when("a", BankCommand::Deposit { amount: 2 })
    // Decided again after the conflict, on the interloper's balance.
    .then_committed([deposited(2, 107)])
    .then_stream_raw("BankAccount-a", |events| {
        assert_eq!(events.len(), 4);
        assert_eq!(events[2].metadata.actor.as_deref(), Some("interloper"));
    });
    // The middleware ran once per command: the retry happens inside it.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn without_retries_the_conflict_is_the_outcome() {
    AppScenario::new(|store| {
        Cqrs::<BankAccount>::builder(store)
            .retry(RetryPolicy::never())
            .build()
    })
    .given("a", [opened(), deposited(5, 5)])
    .when("a", BankCommand::Deposit { amount: 1 })
    .given("a", [deposited(100, 106)])
    .when("a", BankCommand::Withdraw { amount: 1 })
    .then_error_matches(|e| {
        matches!(e, CommandError::Concurrency { attempts: 1, stream_id, .. } if stream_id == "BankAccount-a")
    })
    .then_stream("a", [opened(), deposited(5, 5), deposited(1, 6), deposited(100, 106)])
    // The runtime reloads, so the next command goes through.
    .when("a", BankCommand::Withdraw { amount: 1 })
    .then_committed([withdrawn(1, 105)]);
}

// ---- stored and raw events -----------------------------------------------------------

#[test]
fn stored_events_and_other_streams_can_be_given_raw() {
    let other = NewEvent::encode(&FlightEvent::TookOff, &JsonCodec, Metadata::default()).unwrap();
    AppScenario::new(bank)
        .given_stored(
            "BankAccount-a",
            [
                StoredValue::new("AccountOpened", 1, json!({"owner": "bo"})),
                StoredValue::new("Deposited", 1, json!({"amount": 3, "balance": 3})),
            ],
        )
        .given_raw("Flight-9", [other])
        .when("a", BankCommand::Withdraw { amount: 3 })
        .then_committed([withdrawn(3, 0)])
        .then_committed_with(|c| assert_eq!(c.events[0].position, 4))
        .then_stream_raw("Flight-9", |events| {
            assert_eq!(events.len(), 1);
            assert_eq!(&*events[0].event_type, "TookOff");
        })
        .then_stream_raw("BankAccount-a", |events| {
            assert_eq!(events[0].schema_version, 1);
            assert_eq!(&*events[0].payload, br#"{"owner":"bo"}"#);
        });
}

// ---- invariants ------------------------------------------------------------------------

fn flights(store: InMemoryEventStore) -> Cqrs<Flight> {
    Cqrs::<Flight>::builder(store).build()
}

#[test]
fn a_given_stream_breaking_a_rule_fails_at_given() {
    let message = panic_message(|| {
        let _ = AppScenario::new(flights)
            .given("f", [FlightEvent::TookOff])
            .given("f", [FlightEvent::Landed, FlightEvent::Landed]);
    });
    assert!(
        message.starts_with(
            "invariant check: the event at index 1 given for stream `Flight-f` (which held \
             1 event before) (`Landed`) breaks invariant `landings_follow_take_offs`: a \
             flight never lands more often than it took off"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("app scenario (Flight):\n  given 1 event in stream `Flight-f`"),
        "{message}"
    );
}

#[test]
fn a_committed_event_breaking_a_rule_fails_at_when() {
    let message = panic_message(|| {
        let _ = AppScenario::new(flights)
            .given("f", [FlightEvent::TookOff])
            .when("f", FlightCommand::Bounce);
    });
    assert!(
        message.starts_with(
            "invariant check: the committed event at stream version 3 of `Flight-f` \
             (`Landed`) breaks invariant `landings_follow_take_offs`"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(
            "app scenario (Flight):\n  given 1 event in stream `Flight-f`\n  when `Bounce` on \
             `f`: committed 3 events (stream version 4)"
        ),
        "{message}"
    );
}

#[test]
fn an_enforcing_runtime_refuses_the_command_instead() {
    AppScenario::new(|store| Cqrs::<Flight>::builder(store).enforce_invariants(true).build())
        .given("f", [FlightEvent::TookOff])
        .when("f", FlightCommand::Bounce)
        .then_error_matches(|e| {
            matches!(e, CommandError::Invariant { violation } if violation.name == "landings_follow_take_offs")
        })
        .then_stream("f", [FlightEvent::TookOff]);
}

#[test]
fn a_raw_legacy_stream_is_not_checked() {
    let landed = NewEvent::encode(&FlightEvent::Landed, &JsonCodec, Metadata::default()).unwrap();
    AppScenario::new(flights)
        .given_raw("Flight-old", [landed])
        .when("old", FlightCommand::TakeOff)
        .then_committed([FlightEvent::TookOff]);
}

// ---- failure messages ------------------------------------------------------------------

#[test]
fn then_committed_shows_a_diff_and_the_steps() {
    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .given("a", [opened()])
            .when("a", BankCommand::Deposit { amount: 5 })
            .then_committed([deposited(5, 6)]);
    });
    assert_eq!(
        message,
        "then_committed: the committed events differ (- expected, + actual)\n  \
         [\n      Deposited {\n          amount: 5,\n-         balance: 6,\n+         \
         balance: 5,\n      },\n  ]\n\n\
         app scenario (BankAccount):\n  given 1 event in stream `BankAccount-a`\n  \
         when `Deposit` on `a`: committed 1 event (stream version 2)\n\
         (the `then_*` steps look at the last command: `Deposit` on `a`)"
    );
}

#[test]
fn then_committed_after_a_failure_shows_the_error() {
    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .when("a", BankCommand::Deposit { amount: 5 })
            .then_committed([deposited(5, 5)]);
    });
    assert!(
        message.starts_with(
            "then_committed: expected 1 event, but the command failed\n\nerror:\nRejected(\n    \
             NotOpen,\n)\n(displays as: command rejected: the account is not open)"
        ),
        "{message}"
    );
    assert!(
        message.contains("when `Deposit` on `a`: rejected"),
        "{message}"
    );
}

#[test]
fn then_rejected_tells_a_rejection_from_another_failure() {
    let message = panic_message(|| {
        let _ = AppScenario::new(|store| {
            Cqrs::<BankAccount>::builder(store)
                .middleware(Freeze)
                .build()
        })
        .when("frozen", BankCommand::Deposit { amount: 5 })
        .then_rejected(BankError::NotOpen);
    });
    assert!(
        message.starts_with(
            "then_rejected: expected the aggregate to reject the command with NotOpen, but the \
             command failed otherwise"
        ),
        "{message}"
    );
    assert!(
        message
            .contains("when `Deposit` on `frozen`: failed: command refused: the account is frozen"),
        "{message}"
    );

    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .when("a", BankCommand::Withdraw { amount: 5 })
            .then_rejected(BankError::InsufficientFunds {
                balance: 0,
                requested: 5,
            });
    });
    assert!(
        message.starts_with("then_rejected: the rejections differ (- expected, + actual)\n"),
        "{message}"
    );
}

#[test]
fn then_stream_shows_a_diff_of_the_stream() {
    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .given("a", [opened()])
            .then_stream("a", [opened(), deposited(1, 1)]);
    });
    assert!(
        message.starts_with(
            "then_stream: stream `BankAccount-a` holds other events (- expected, + stored)\n"
        ),
        "{message}"
    );
    assert!(message.contains("-     Deposited {"), "{message}");
}

#[test]
fn a_then_before_any_command_says_so() {
    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .given("a", [opened()])
            .then_no_events();
    });
    assert_eq!(
        message,
        "then_no_events: no command has been sent yet; send one with `when`\n\n\
         app scenario (BankAccount):\n  given 1 event in stream `BankAccount-a`"
    );
}

#[test]
fn an_undecodable_stored_event_fails_the_read_that_meets_it() {
    let message = panic_message(|| {
        let _ = AppScenario::new(bank)
            .given_stored("BankAccount-a", [StoredValue::new("Nope", 1, json!({}))])
            .then_stream("a", []);
    });
    assert!(
        message.starts_with(
            "then_stream: the event at version 1 of stream `BankAccount-a` does not decode"
        ),
        "{message}"
    );
    assert!(
        message.contains("given_stored: 1 stored event in stream `BankAccount-a`"),
        "{message}"
    );
}

// ---- inside a tokio runtime --------------------------------------------------------------

#[tokio::test]
async fn it_runs_inside_a_tokio_test_and_drops_cleanly() {
    let scenario = AppScenario::new(bank)
        .given("a", [opened()])
        .when("a", BankCommand::Deposit { amount: 5 })
        .then_committed([deposited(5, 5)]);
    let loaded = scenario.block_on(scenario.cqrs().load("a")).unwrap();
    assert_eq!(loaded.version, 2);
    drop(scenario);
}
