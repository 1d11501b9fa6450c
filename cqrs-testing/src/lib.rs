//! # cqrs-testing
//!
//! Test fixtures for cqrs aggregates and their events:
//!
//! * **Given/When/Then scenarios** for one [`Aggregate`] ([`AggregateScenario`]): start
//!   from the events it has already recorded, send it a command, and assert what it
//!   decided; a few checks of `apply`, `handle` and the codec come
//!   [without being asked](#what-every-scenario-checks-without-being-asked).
//! * **Invariants** in every scenario: the aggregate's `#[invariant(..)]` rules are
//!   checked after each given and each new event, and a broken one fails the test; see
//!   [below](#invariants).
//! * **Scenario tables** ([`scenarios!`]): many Given/When/Then cases of one aggregate in
//!   one table, each its own named `#[test]`.
//! * **Application scenarios** ([`app::AppScenario`]): events given in several streams
//!   of a store, commands sent through the [`Cqrs`](cqrs_core::Cqrs) runtime with its
//!   middleware, retries and codec, and assertions on what it committed and what the
//!   streams hold.
//! * **Histories of stored events**, old schema versions included
//!   ([`given_stored`](AggregateScenario::given_stored)): a scenario starts from events as
//!   a store holds them, lifted through the upcast chains; see
//!   [below](#starting-from-stored-events).
//! * **Golden files** ([`golden`]): a directory of stored events and what each must become
//!   today, checked in one test, with a bless mode (`CQRS_GOLDEN=bless`) that writes the
//!   expectations.
//!
//! ```
//! use cqrs_testing::prelude::*;
//! # use cqrs_core::{Aggregate, Codec, Command, DecodeReason, DomainEvent};
//! # use serde::{Deserialize, Serialize};
//! #
//! # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! # enum CounterEvent { Incremented { by: u32 } }
//! # impl DomainEvent for CounterEvent {
//! #     const EVENT_TYPES: &'static [&'static str] = &["Incremented"];
//! #     fn event_type(&self) -> &'static str { "Incremented" }
//! #     fn schema_version(&self) -> u32 { 1 }
//! #     fn decode_payload<C: Codec, F: FnMut(Self)>(codec: &C, ty: &str, _: u32,
//! #         payload: cqrs_core::upcast::Payload<'_>, sink: &mut F) -> Result<(), DecodeReason> {
//! #         match ty {
//! #             "Incremented" => Ok(sink(payload.read_variant(codec, 0)?)),
//! #             _ => Err(DecodeReason::UnknownEventType { enum_name: "CounterEvent", known: "Incremented".into() }),
//! #         }
//! #     }
//! # }
//! # #[derive(Debug, Clone)]
//! # enum CounterCommand { Increment { by: u32 } }
//! # impl Command for CounterCommand {
//! #     fn command_name(&self) -> &'static str { "Increment" }
//! # }
//! # #[derive(Debug, PartialEq, thiserror::Error)]
//! # enum CounterError { #[error("the counter would overflow")] Overflow }
//! #
//! #[derive(Debug, Default, PartialEq)]
//! struct Counter { value: u32 }
//!
//! impl Aggregate for Counter {
//!     // TYPE_NAME, Command, Event, Error, and Services = ()
//! #   const TYPE_NAME: &'static str = "Counter";
//! #   type Command = CounterCommand;
//! #   type Event = CounterEvent;
//! #   type Error = CounterError;
//! #   type Services = ();
//!     async fn handle<'a>(&'a self, command: CounterCommand, _: &'a ())
//!         -> Result<Vec<CounterEvent>, CounterError> {
//!         let CounterCommand::Increment { by } = command;
//!         self.value.checked_add(by).ok_or(CounterError::Overflow)?;
//!         Ok(vec![CounterEvent::Incremented { by }])
//!     }
//!
//!     fn apply(&mut self, event: &CounterEvent) {
//!         let CounterEvent::Incremented { by } = event;
//!         self.value += by;
//!     }
//! }
//!
//! Counter::given([CounterEvent::Incremented { by: 1 }])
//!     .when(CounterCommand::Increment { by: 2 })
//!     .then_events([CounterEvent::Incremented { by: 2 }])
//!     .then_state(|counter| assert_eq!(counter.value, 3));
//!
//! Counter::given([CounterEvent::Incremented { by: u32::MAX }])
//!     .when(CounterCommand::Increment { by: 1 })
//!     .then_error(CounterError::Overflow);
//! ```
//!
//! ## Starting from stored events
//!
//! Events are stored forever, in the shape they had when recorded. A scenario can start
//! from them as they are stored: [`given_stored`](AggregateScenario::given_stored) and
//! [`and_stored`](Given::and_stored) take a stored type name (a current name, an alias
//! or a removed type's name), the schema version the event was written with, and its
//! payload as JSON. Each goes through the event type's upcast chain
//! ([`DomainEvent::decode_json`]), and the events it means today join the history: one
//! for most events, several for a split, none for a drop. [`and`](Given::and) adds
//! current events in between.
//!
//! ```
//! # include!("doctest_account.rs");
//! # fn main() {
//! use cqrs_testing::prelude::*;
//! use serde_json::json;
//!
//! // `Opened` v1 stored a `name`; today's v2 has an owner and a currency.
//! Account::given_stored("Opened", 1, json!({"name": "ann"}))
//!     // v1 stored cents as a string.
//!     .and_stored("Deposited", 1, json!({"cents": "250"}))
//!     // A removed type that is now a deposit and a withdrawal.
//!     .and_stored("Transferred", 1, json!({"amount": 40}))
//!     // Dropped: it means nothing today.
//!     .and_stored("Audited", 1, json!({"by": "eve"}))
//!     .and([AccountEvent::Withdrew { amount: 50 }])
//!     .when(AccountCommand::Withdraw { amount: 300 })
//!     .then_error(AccountError::InsufficientFunds);
//!
//! // What the stored events became, without a command.
//! Account::given_stored("AccountCreated", 1, json!({"name": "bo"})) // an alias
//!     .then_given_events([AccountEvent::Opened { owner: "bo".into(), currency: "EUR".into() }])
//!     .then_state(|account| assert_eq!(account.owner.as_deref(), Some("bo")));
//! # }
//! ```
//!
//! A stored event that does not decode fails the test at its line, with its index among
//! the given events, its type, version and payload, and the
//! [`DecodeReason`](cqrs_core::DecodeReason). The automatic codec check below applies to
//! the events the stored ones became: they are encoded as they would be written today
//! (at their current schema version), not as they were stored.
//!
//! ## What every scenario checks without being asked
//!
//! [`when`](Given::when) runs the command and, before returning, checks that
//!
//! * **`apply` is a pure function of its events**: the given events folded twice from
//!   `A::default()` give equal states, and the state the handler path produced (the given
//!   state with the new events applied) equals the state refolded from scratch from the
//!   given and the new events. An `apply` that reads a clock, a counter or anything else but
//!   its event fails here.
//! * **`handle` does not change the state**: the state after `handle` (accepted or
//!   rejected) equals the state before it.
//! * **every event survives a codec round trip**: each given and each new event is encoded
//!   with [`JsonCodec`] into a [`NewEvent`] and decoded back with
//!   [`DomainEvent::decode_all`]; the result must equal the original and have the same
//!   [`event_type`](DomainEvent::event_type). A field lost to `#[serde(skip)]` or a
//!   `decode` that does not know a type name fails here.
//!
//! * **every event keeps the aggregate's invariants**: see [below](#invariants).
//!
//! [`Given::then_state`] makes the checks of the given events (round trip, folding twice)
//! too, without a command.
//!
//! Every fold (the live one and the refolds) goes through
//! [`apply_checked`](Aggregate::apply_checked), as the runtime's enforcing path does, so
//! the invariants' predicates run in the refolds too.
//!
//! ## Invariants
//!
//! The rules an aggregate declares with `#[invariant(..)]` (see
//! [`cqrs_core::invariant`]) are checked after **each** event of every scenario, with
//! [`apply_checked`](Aggregate::apply_checked):
//!
//! * **given events** as they are given: [`given`](AggregateScenario::given),
//!   [`and`](Given::and), [`given_stored`](AggregateScenario::given_stored) and
//!   [`and_stored`](Given::and_stored) fold each event into the state at once, and an
//!   event that breaks a rule fails the test **at the line that added it**, before any
//!   command: a history the aggregate could not have recorded is a broken fixture, and
//!   the line to fix is the one that wrote it;
//! * **new events** when [`when`](Given::when) applies them, failing at the `when` line.
//!
//! The message names the rule (its sentence and name), the event that broke it (its index
//! among the given or the new events, counting from 0, and the stored fixture it was
//! decoded from, if any), the state after it, what it changed, and the scenario:
//!
//! ```text
//! invariant check: the new event at index 1 (`Landed`) breaks invariant
//! `landings_follow_take_offs`: a flight never lands more often than it took off
//!
//! event:
//! Landed
//!
//! state after it:
//! Flight {
//!     take_offs: 1,
//!     landings: 2,
//! }
//!
//! what it changed (- before it, + after it):
//!   Flight {
//!       take_offs: 1,
//! -     landings: 1,
//! +     landings: 2,
//!   }
//!
//! scenario: Flight given 1 event, when `Bounce`
//! ```
//!
//! A rule is checked after each event, not after a command's whole batch: a batch whose
//! middle event breaks a rule fails even if a later one restores it.
//!
//! To test that a rule exists and catches a faulty decision, expect it to break with
//! [`expect_violation`](Given::expect_violation): the scenario then fails unless the
//! first rule a new event breaks is that one, and [`Then::violation`] returns it.
//!
//! ```
//! # include!("doctest_tank.rs");
//! # fn main() {
//! use cqrs_testing::prelude::*;
//!
//! Tank::given([TankEvent::Filled { litres: 5 }])
//!     .when(TankCommand::Drain { litres: 3 })
//!     .then_events([TankEvent::Drained { litres: 3 }]);
//!
//! // The handler lets a tank drain below empty; the invariant catches it.
//! Tank::given([TankEvent::Filled { litres: 5 }])
//!     .expect_violation("never_negative")
//!     .when(TankCommand::Drain { litres: 7 })
//!     .then_events([TankEvent::Drained { litres: 7 }]);
//! # }
//! ```
//!
//! ```should_panic
//! # include!("doctest_tank.rs");
//! # fn main() {
//! use cqrs_testing::prelude::*;
//!
//! // Panics: "invariant check: the new event at index 0 (`Drained`) breaks invariant
//! // `never_negative`: a tank never holds less than nothing"
//! let _ = Tank::given([TankEvent::Filled { litres: 5 }])
//!     .when(TankCommand::Drain { litres: 7 });
//! # }
//! ```
//!
//! A failed check or assertion panics at the caller's line with a message that names it
//! and, where two values differ, shows their `{:#?}` forms as a line diff
//! (`-` expected, `+` actual).
//!
//! ## Async handlers and runtimes
//!
//! `when` drives the handler's future to completion on a fresh current-thread tokio
//! runtime, so scenarios work in a plain `#[test]`. Inside a running runtime (a
//! `#[tokio::test]`), that runtime runs on a scoped thread of its own, since a runtime
//! cannot block inside another. The handler therefore cannot rely on tasks of the test's
//! own runtime making progress while it runs.

use std::fmt::{self, Debug, Write as _};
use std::future::Future;

use cqrs_core::invariant::{Invariant, InvariantViolation};
use cqrs_core::upcast::{StoredValue, Value};
use cqrs_core::{Aggregate, Command as _, DomainEvent, JsonCodec, Metadata, NewEvent};

pub mod app;
pub mod conformance;
pub mod golden;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod properties;
pub mod read_side;
mod scenarios;

/// Brings [`AggregateScenario`], [`AppScenario`](app::AppScenario) and the
/// [`scenarios!`](crate::scenarios!) macro into scope: `use cqrs_testing::prelude::*;`.
pub mod prelude {
    pub use crate::AggregateScenario;
    pub use crate::app::AppScenario;
    pub use crate::scenarios;
}

/// Starts a Given/When/Then scenario from an aggregate type: `Account::given([...])`.
///
/// Implemented for every [`Aggregate`] that can be compared and printed, which the
/// automatic checks need: the state must be `PartialEq + Debug` and the events
/// `PartialEq` (they are always `Debug`, being [`DomainEvent`]s, and so is the error).
pub trait AggregateScenario: Aggregate + PartialEq + Debug
where
    Self::Event: PartialEq,
{
    /// The aggregate has already recorded `events`, oldest first.
    ///
    /// # Panics
    ///
    /// At the caller's line if an event breaks one of the aggregate's
    /// [invariants](crate#invariants).
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    fn given<I>(events: I) -> Given<Self>
    where
        I: IntoIterator<Item = Self::Event>;

    /// The aggregate has recorded nothing yet: it starts from `Self::default()`.
    #[must_use = "a scenario does nothing until `when` runs a command"]
    fn given_no_events() -> Given<Self>;

    /// The aggregate has already recorded one event, given as it is stored: its stored
    /// type name (a current name, an alias or a removed name), the schema version it was
    /// written with, and its payload as JSON. Add more with [`Given::and_stored`] and
    /// [`Given::and`].
    ///
    /// The event goes through the event type's upcast chain
    /// ([`DomainEvent::decode_json`]) at once, and the events it means today become the
    /// history: one for most events, several for a split, none for a drop. See the
    /// [crate docs](crate#starting-from-stored-events) for an example.
    ///
    /// # Panics
    ///
    /// At the caller's line if the event does not decode, naming its index among the
    /// given events, its type, version and payload, and the [`DecodeReason`](cqrs_core::DecodeReason);
    /// or if an event it decodes into breaks one of the aggregate's
    /// [invariants](crate#invariants).
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    fn given_stored(event_type: &str, schema_version: u32, payload: Value) -> Given<Self>;
}

impl<A> AggregateScenario for A
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    #[track_caller]
    fn given<I>(events: I) -> Given<Self>
    where
        I: IntoIterator<Item = Self::Event>,
    {
        Given::empty().and(events)
    }

    fn given_no_events() -> Given<Self> {
        Given::empty()
    }

    #[track_caller]
    fn given_stored(event_type: &str, schema_version: u32, payload: Value) -> Given<Self> {
        Given::empty().and_stored(event_type, schema_version, payload)
    }
}

/// The history of a scenario: the events the aggregate has already recorded.
///
/// Made by [`AggregateScenario::given`], [`given_no_events`](AggregateScenario::given_no_events)
/// or [`given_stored`](AggregateScenario::given_stored); extended with [`and`](Self::and)
/// and [`and_stored`](Self::and_stored); run a command against it with
/// [`when`](Self::when), or check the history alone with
/// [`then_given_events`](Self::then_given_events) and [`then_state`](Self::then_state).
pub struct Given<A: Aggregate> {
    history: History<A>,
    expected_violation: Option<&'static Invariant>,
}

/// The given events, where they came from, and the state they fold into.
struct History<A: Aggregate> {
    events: Vec<A::Event>,
    /// The given events folded into `A::default()` with `apply_checked`, one by one as
    /// they were given.
    state: A,
    /// Every fixture given so far: typed events and stored events alike.
    fixtures: usize,
    /// The stored events among them.
    stored: usize,
    /// How many current events those stored events decoded into.
    from_stored: usize,
}

impl<A: Aggregate + Debug> History<A> {
    fn counts(&self) -> Counts {
        Counts {
            events: self.events.len(),
            stored: self.stored,
            from_stored: self.from_stored,
        }
    }

    /// Applies a given event with its invariant checks and adds it to the history.
    /// `stored`: the stored fixture it was decoded from (its index, type and version).
    #[track_caller]
    fn push(&mut self, event: A::Event, stored: Option<(usize, &str, u32)>) {
        let index = self.events.len();
        let checked = self.state.apply_checked(&event);
        self.events.push(event);
        if let Err(violation) = checked {
            let what = format!("the given event at index {index}");
            let origin = match stored {
                Some((fixture, event_type, schema_version)) => format!(
                    ", decoded from the stored event given at index {fixture}, \
                     `{event_type}` schema v{schema_version}"
                ),
                None => String::new(),
            };
            panic!(
                "{}\n\n{}",
                violation_report(
                    &violation,
                    &what,
                    &origin,
                    &self.events[index],
                    &self.state,
                    || fold::<A>(self.events[..index].iter()),
                ),
                scenario::<A>(self.counts(), None)
            );
        }
    }
}

/// How the given history was made, for failure messages.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// The given events.
    events: usize,
    /// The stored events given.
    stored: usize,
    /// How many of the given events those stored events decoded into.
    from_stored: usize,
}

impl<A> Given<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    fn empty() -> Self {
        Self {
            history: History {
                events: Vec::new(),
                state: A::default(),
                fixtures: 0,
                stored: 0,
                from_stored: 0,
            },
            expected_violation: None,
        }
    }

    /// The aggregate has also recorded `events`, after the ones given so far.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// Account::given_stored("Opened", 1, json!({"name": "ann"}))
    ///     .and([AccountEvent::Deposited { amount: 5 }])
    ///     .then_state(|account| assert_eq!(account.balance, 5));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if an event breaks one of the aggregate's
    /// [invariants](crate#invariants).
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    pub fn and<I>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
    {
        // A loop, not a closure, so that a failure points at the caller's line.
        for event in events {
            self.history.fixtures += 1;
            self.history.push(event, None);
        }
        self
    }

    /// The aggregate has also recorded one event given as it is stored, after the ones
    /// given so far: see [`AggregateScenario::given_stored`].
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// Account::given_stored("Opened", 1, json!({"name": "ann"}))
    ///     .and_stored("Deposited", 1, json!({"cents": "250"}))
    ///     .then_given_events([
    ///         AccountEvent::Opened { owner: "ann".into(), currency: "EUR".into() },
    ///         AccountEvent::Deposited { amount: 250 },
    ///     ]);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if the event does not decode, naming its index among the
    /// given events (counting from 0 every event passed to `given` or `and` and every
    /// stored event), its type, version and payload, and the [`DecodeReason`](cqrs_core::DecodeReason);
    /// or if an event it decodes into breaks one of the aggregate's
    /// [invariants](crate#invariants).
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    pub fn and_stored(mut self, event_type: &str, schema_version: u32, payload: Value) -> Self {
        let index = self.history.fixtures;
        match A::Event::decode_json(event_type, schema_version, payload.clone()) {
            Ok(events) => {
                let history = &mut self.history;
                history.fixtures += 1;
                history.stored += 1;
                history.from_stored += events.len();
                for event in events {
                    history.push(event, Some((index, event_type, schema_version)));
                }
                self
            }
            Err(reason) => panic!(
                "given_stored: the stored event given at index {index} (`{event_type}`, schema \
                 v{schema_version}) does not decode into `{}`\n\n\
                 event type:     {event_type}\n\
                 schema version: {schema_version}\n\
                 payload:\n{}\n\n\
                 reason: {}\n\n{}",
                std::any::type_name::<A::Event>(),
                pretty_json(&payload),
                describe(&reason),
                scenario::<A>(self.history.counts(), None),
            ),
        }
    }

    /// Like [`and_stored`](Self::and_stored), for each of `stored` in order: events kept
    /// as [`StoredValue`]s, such as golden [cases](golden::Case::stored).
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_core::upcast::StoredValue;
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// let stored = [
    ///     StoredValue::new("Opened", 1, json!({"name": "ann"})),
    ///     StoredValue::new("Deposited", 2, json!({"amount": 7})),
    /// ];
    /// Account::given_no_events()
    ///     .and_stored_values(stored)
    ///     .then_state(|account| assert_eq!(account.balance, 7));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// As [`and_stored`](Self::and_stored), at the first event that does not decode or
    /// breaks an invariant.
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    pub fn and_stored_values<I>(self, stored: I) -> Self
    where
        I: IntoIterator<Item = StoredValue>,
    {
        // A loop, not a closure, so that a failure points at the caller's line.
        let mut given = self;
        for event in stored {
            given = given.and_stored(&event.event_type, event.schema_version, event.payload);
        }
        given
    }

    /// The given events as the aggregate sees them: typed events as given, stored events
    /// as they decode today.
    pub fn events(&self) -> &[A::Event] {
        &self.history.events
    }

    /// Asserts the given history is exactly `expected`, in order: what stored events
    /// become today, without running a command.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// // A removed type that stood for a deposit and a withdrawal.
    /// Account::given_stored("Transferred", 1, json!({"amount": 3}))
    ///     .then_given_events([
    ///         AccountEvent::Deposited { amount: 3 },
    ///         AccountEvent::Withdrew { amount: 3 },
    ///     ]);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// With a diff of the expected and actual histories if they differ.
    #[track_caller]
    pub fn then_given_events<I>(self, expected: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        if self.history.events != expected {
            panic!(
                "then_given_events: the given events differ (- expected, + actual)\n{}\n\n{}",
                diff(&expected, &self.history.events),
                scenario::<A>(self.history.counts(), None)
            );
        }
        self
    }

    /// Folds the given events into `A::default()` and hands the state to `check`, without
    /// running a command. The automatic checks on the given events run first: each
    /// survives a codec round trip, and folding them twice gives equal states.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// Account::given_stored("AccountCreated", 1, json!({"name": "bo"}))
    ///     .then_state(|account| assert_eq!(account.owner.as_deref(), Some("bo")));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If an automatic check fails; and whatever `check` asserts.
    #[track_caller]
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check_given::<A>(&self.history, None);
        check(&self.history.state);
        self
    }

    /// Expects the command's new events to break the invariant named `name` (its
    /// predicate method): [`when`](Self::when) then fails unless the first invariant a
    /// new event breaks is this one, instead of failing because one is broken. For
    /// testing that a rule exists and catches what it should; see the
    /// [crate docs](crate#invariants).
    ///
    /// ```
    /// # include!("doctest_tank.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// // The handler does not stop a drain below zero; the rule does.
    /// let then = Tank::given([TankEvent::Filled { litres: 5 }])
    ///     .expect_violation("never_negative")
    ///     .when(TankCommand::Drain { litres: 7 })
    ///     .then_events([TankEvent::Drained { litres: 7 }])
    ///     .then_state(|tank| assert_eq!(tank.litres, -2));
    /// assert_eq!(then.violation().unwrap().name, "never_negative");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if the aggregate declares no invariant named `name`, listing
    /// those it declares.
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    pub fn expect_violation(mut self, name: &str) -> Self {
        self.expected_violation = Some(find_invariant::<A>(name));
        self
    }

    /// Hands `services` to the handler instead of `A::Services::default()`.
    #[must_use = "a scenario does nothing until `when` runs a command"]
    pub fn with_services(self, services: A::Services) -> GivenWithServices<A> {
        GivenWithServices {
            history: self.history,
            expected_violation: self.expected_violation,
            services,
        }
    }

    /// Runs `command` with `A::Services::default()` and empty [`Metadata`], then the
    /// automatic checks (see the [crate docs](crate)).
    ///
    /// # Panics
    ///
    /// If an automatic check fails (a broken [invariant](crate#invariants) included), or the
    /// handler panics.
    #[track_caller]
    #[must_use = "check the outcome with a `then_*` method"]
    pub fn when(self, command: A::Command) -> Then<A>
    where
        A::Services: Default,
    {
        run(
            self.history,
            self.expected_violation,
            &A::Services::default(),
            command,
            Metadata::default(),
        )
    }

    /// Like [`when`](Self::when), with `metadata` carried into the encoded events (see
    /// [`Then::encoded_events`]) as a command's metadata is carried into its events.
    ///
    /// # Panics
    ///
    /// If an automatic check fails (a broken [invariant](crate#invariants) included), or the
    /// handler panics.
    #[track_caller]
    #[must_use = "check the outcome with a `then_*` method"]
    pub fn when_with(self, command: A::Command, metadata: Metadata) -> Then<A>
    where
        A::Services: Default,
    {
        run(
            self.history,
            self.expected_violation,
            &A::Services::default(),
            command,
            metadata,
        )
    }
}

impl<A: Aggregate> Debug for Given<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Given")
            .field("events", &self.history.events)
            .finish()
    }
}

/// A scenario's history together with the services its handler gets.
///
/// Made by [`Given::with_services`].
#[must_use = "a scenario does nothing until `when` runs a command"]
pub struct GivenWithServices<A: Aggregate> {
    history: History<A>,
    expected_violation: Option<&'static Invariant>,
    services: A::Services,
}

impl<A> GivenWithServices<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    /// See [`Given::expect_violation`].
    ///
    /// # Panics
    ///
    /// At the caller's line if the aggregate declares no invariant named `name`.
    #[must_use = "a scenario does nothing until `when` runs a command"]
    #[track_caller]
    pub fn expect_violation(mut self, name: &str) -> Self {
        self.expected_violation = Some(find_invariant::<A>(name));
        self
    }

    /// Runs `command` with the services and empty [`Metadata`], then the automatic checks
    /// (see the [crate docs](crate)).
    ///
    /// # Panics
    ///
    /// If an automatic check fails (a broken [invariant](crate#invariants) included), or the
    /// handler panics.
    #[track_caller]
    #[must_use = "check the outcome with a `then_*` method"]
    pub fn when(self, command: A::Command) -> Then<A> {
        run(
            self.history,
            self.expected_violation,
            &self.services,
            command,
            Metadata::default(),
        )
    }

    /// Like [`when`](Self::when), with `metadata` carried into the encoded events (see
    /// [`Then::encoded_events`]).
    ///
    /// # Panics
    ///
    /// If an automatic check fails (a broken [invariant](crate#invariants) included), or the
    /// handler panics.
    #[track_caller]
    #[must_use = "check the outcome with a `then_*` method"]
    pub fn when_with(self, command: A::Command, metadata: Metadata) -> Then<A> {
        run(
            self.history,
            self.expected_violation,
            &self.services,
            command,
            metadata,
        )
    }
}

impl<A: Aggregate> Debug for GivenWithServices<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GivenWithServices")
            .field("events", &self.history.events)
            .finish_non_exhaustive()
    }
}

/// The outcome of a scenario's command, to assert on with the `then_*` methods.
///
/// Every `then_*` method returns the outcome again, so several can be chained:
/// `.then_events([..]).then_state(|s| ..)`.
pub struct Then<A: Aggregate> {
    given: Counts,
    command: &'static str,
    result: Result<Vec<A::Event>, A::Error>,
    state: A,
    metadata: Metadata,
    encoded: Vec<NewEvent>,
    violation: Option<InvariantViolation>,
}

impl<A> Then<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    /// Asserts the command was accepted and produced exactly `expected`, in order.
    ///
    /// # Panics
    ///
    /// With a diff of the expected and actual events if they differ, or with the error if
    /// the command was rejected.
    #[track_caller]
    pub fn then_events<I>(self, expected: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match &self.result {
            Ok(actual) if *actual == expected => {}
            Ok(actual) => self.fail(format_args!(
                "then_events: the events differ (- expected, + actual)\n{}",
                diff(&expected, actual)
            )),
            Err(error) => self.fail(format_args!(
                "then_events: expected {}, but the command was rejected\n\n\
                 error:\n{}\n\nexpected events:\n{expected:#?}",
                count(expected.len()),
                describe(error),
            )),
        }
        self
    }

    /// Asserts the command was accepted and produced no events.
    ///
    /// # Panics
    ///
    /// Listing the events if there were any, or with the error if the command was
    /// rejected.
    #[track_caller]
    pub fn then_no_events(self) -> Self {
        match &self.result {
            Ok(actual) if actual.is_empty() => {}
            Ok(actual) => self.fail(format_args!(
                "then_no_events: expected no events, but the command produced {}:\n{actual:#?}",
                count(actual.len())
            )),
            Err(error) => self.fail(format_args!(
                "then_no_events: expected the command to be accepted with no events, \
                 but it was rejected\n\nerror:\n{}",
                describe(error)
            )),
        }
        self
    }

    /// Asserts the command was accepted and its events satisfy `predicate`.
    ///
    /// # Panics
    ///
    /// Listing the events if `predicate` returns false, or with the error if the command
    /// was rejected.
    #[track_caller]
    pub fn then_events_match(self, predicate: impl FnOnce(&[A::Event]) -> bool) -> Self {
        match &self.result {
            Ok(actual) => {
                if !predicate(actual) {
                    self.fail(format_args!(
                        "then_events_match: the events do not match the predicate; \
                         the command produced {}:\n{actual:#?}",
                        count(actual.len())
                    ))
                }
            }
            Err(error) => self.fail(format_args!(
                "then_events_match: expected events, but the command was rejected\n\n\
                 error:\n{}",
                describe(error)
            )),
        }
        self
    }

    /// Asserts the command was rejected with an error equal to `expected`.
    ///
    /// # Panics
    ///
    /// With a diff of the two errors if they differ, or listing the events if the command
    /// was accepted.
    #[track_caller]
    pub fn then_error(self, expected: A::Error) -> Self
    where
        A::Error: PartialEq,
    {
        match &self.result {
            Err(actual) if *actual == expected => {}
            Err(actual) => self.fail(format_args!(
                "then_error: the errors differ (- expected, + actual)\n{}\n\n\
                 the actual error displays as: {actual}",
                diff(&expected, actual)
            )),
            Ok(actual) => self.fail(format_args!(
                "then_error: expected the command to be rejected with {expected:?}, \
                 but it was accepted and produced {}:\n{actual:#?}",
                count(actual.len())
            )),
        }
        self
    }

    /// Asserts the command was rejected with an error satisfying `predicate`.
    ///
    /// # Panics
    ///
    /// Showing the error if `predicate` returns false, or listing the events if the
    /// command was accepted.
    #[track_caller]
    pub fn then_error_matches(self, predicate: impl FnOnce(&A::Error) -> bool) -> Self {
        match &self.result {
            Err(actual) => {
                if !predicate(actual) {
                    self.fail(format_args!(
                        "then_error_matches: the error does not match the predicate\n\n\
                         error:\n{}",
                        describe(actual)
                    ))
                }
            }
            Ok(actual) => self.fail(format_args!(
                "then_error_matches: expected the command to be rejected, \
                 but it was accepted and produced {}:\n{actual:#?}",
                count(actual.len())
            )),
        }
        self
    }

    /// Hands the state to `check`: the given state with the new events applied, or the
    /// given state unchanged if the command was rejected. `check` asserts what it wants.
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check(&self.state);
        self
    }

    /// The handler's result: the new events, or the rejection.
    pub fn result(&self) -> Result<&[A::Event], &A::Error> {
        self.result.as_deref()
    }

    /// The state after the command: see [`then_state`](Self::then_state).
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The metadata the command was sent with ([`Given::when_with`]; empty otherwise).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The new events as they would be appended: encoded with [`JsonCodec`] and carrying
    /// the command's metadata. Empty if the command was rejected.
    pub fn encoded_events(&self) -> &[NewEvent] {
        &self.encoded
    }

    /// The invariant the new events broke, as [`Given::expect_violation`] expected; `None`
    /// when no violation was expected (an unexpected one fails [`Given::when`]).
    pub fn violation(&self) -> Option<&InvariantViolation> {
        self.violation.as_ref()
    }

    /// Takes the handler's result out of the outcome.
    pub fn into_result(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }

    #[track_caller]
    fn fail(&self, message: fmt::Arguments<'_>) {
        panic!(
            "{message}\n\n{}",
            scenario::<A>(self.given, Some(self.command))
        );
    }
}

impl<A: Aggregate + Debug> Debug for Then<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Then")
            .field("command", &self.command)
            .field("result", &self.result)
            .field("state", &self.state)
            .field("metadata", &self.metadata)
            .field("violation", &self.violation)
            .finish_non_exhaustive()
    }
}

/// The automatic checks on the given events alone: each survives a codec round trip, and
/// refolding them from `A::default()` gives the state they were folded into as they were
/// given. Returns the refolded state.
#[track_caller]
fn check_given<A>(history: &History<A>, command: Option<&str>) -> A
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    let context = || scenario::<A>(history.counts(), command);
    for event in &history.events {
        if let Err(failure) = round_trip(event, Metadata::default()) {
            panic!("{failure}\n\nthe event is a given event\n\n{}", context());
        }
    }

    // Fold the history a second time: an apply that reads anything but its event shows
    // here even when the command is then rejected.
    let reference = fold::<A>(history.events.iter());
    if history.state != reference {
        panic!(
            "refold check: apply is not a pure function of its events: folding the given \
             events twice from A::default() gave different states (- first, + second)\n{}\n\n{}",
            diff(&history.state, &reference),
            context()
        );
    }
    reference
}

/// Runs the command and every automatic check.
#[track_caller]
fn run<A>(
    history: History<A>,
    expected_violation: Option<&'static Invariant>,
    services: &A::Services,
    command: A::Command,
    metadata: Metadata,
) -> Then<A>
where
    A: Aggregate + PartialEq + Debug,
    A::Event: PartialEq,
{
    let command_name = command.command_name();
    let counts = history.counts();
    let context = || scenario::<A>(counts, Some(command_name));
    let reference = check_given::<A>(&history, Some(command_name));
    let History {
        events: given,
        mut state,
        ..
    } = history;

    let result = block_on(state.handle(command, services));

    if state != reference {
        panic!(
            "state check: handle changed the state while {} the command; a handler must \
             only decide, changing the state is apply's job (- before handle, + after \
             handle)\n{}\n\n{}",
            if result.is_ok() {
                "accepting"
            } else {
                "rejecting"
            },
            diff(&reference, &state),
            context()
        );
    }

    let mut encoded = Vec::new();
    let mut violation = None;
    match &result {
        Ok(events) => {
            for event in events {
                match round_trip(event, metadata.clone()) {
                    Ok(new) => encoded.push(new),
                    Err(failure) => {
                        panic!("{failure}\n\nthe event is a new event\n\n{}", context())
                    }
                }
            }
            for (index, event) in events.iter().enumerate() {
                let Err(broken) = state.apply_checked(event) else {
                    continue;
                };
                if violation.is_some() {
                    // Only the first violation counts: the state is already broken.
                    continue;
                }
                if expected_violation.is_some_and(|rule| rule.name == broken.name) {
                    violation = Some(broken);
                    continue;
                }
                let report = violation_report(
                    &broken,
                    &format!("the new event at index {index}"),
                    "",
                    event,
                    &state,
                    || fold::<A>(given.iter().chain(&events[..index])),
                );
                match expected_violation {
                    Some(rule) => panic!(
                        "{report}\n\nexpect_violation: the scenario expected invariant `{}` \
                         to be the first one broken\n\n{}",
                        rule.name,
                        context()
                    ),
                    None => panic!("{report}\n\n{}", context()),
                }
            }
            let refolded = fold::<A>(given.iter().chain(events));
            if state != refolded {
                panic!(
                    "refold check: apply is not a pure function of its events: the state the \
                     handler path produced differs from the state refolded from the given and \
                     new events (- live: given state + new events, + refolded from \
                     A::default())\n{}\n\n{}",
                    diff(&state, &refolded),
                    context()
                );
            }
            if let (Some(rule), None) = (expected_violation, &violation) {
                panic!(
                    "expect_violation: expected the new events to break invariant `{}` ({}), \
                     but it held after each of the {}:\n{events:#?}\n\nstate after them:\n\
                     {state:#?}\n\n{}",
                    rule.name,
                    rule.rule,
                    count_new(events.len()),
                    context()
                );
            }
        }
        Err(error) => {
            if let Some(rule) = expected_violation {
                panic!(
                    "expect_violation: expected the new events to break invariant `{}` ({}), \
                     but the command was rejected\n\nerror:\n{}\n\n{}",
                    rule.name,
                    rule.rule,
                    describe(error),
                    context()
                );
            }
        }
    }

    Then {
        given: counts,
        command: command_name,
        result,
        state,
        metadata,
        encoded,
        violation,
    }
}

/// Folds `events` into `A::default()` as the scenario does: with
/// [`apply_checked`](Aggregate::apply_checked), so that the invariants' predicates run
/// just as often (their results are not looked at: the scenario checked them already).
fn fold<'e, A: Aggregate>(events: impl Iterator<Item = &'e A::Event>) -> A {
    let mut state = A::default();
    for event in events {
        let _ = state.apply_checked(event);
    }
    state
}

/// The invariant `name` of `A`.
#[track_caller]
fn find_invariant<A: Aggregate>(name: &str) -> &'static Invariant {
    match A::INVARIANTS.iter().find(|rule| rule.name == name) {
        Some(rule) => rule,
        None if A::INVARIANTS.is_empty() => panic!(
            "expect_violation: `{}` declares no invariants, so none named `{name}`; declare \
             it with #[invariant(..)] on the aggregate",
            A::TYPE_NAME
        ),
        None => panic!(
            "expect_violation: `{}` declares no invariant named `{name}`; it declares: {}",
            A::TYPE_NAME,
            A::INVARIANTS
                .iter()
                .map(|rule| format!("`{}`", rule.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What a failed invariant check says: the rule, the event that broke it (`what`, with
/// `origin` after its type), the state after it, and what it changed (`before` refolds the
/// state before it; called only here, on failure).
fn violation_report<A: Aggregate + Debug>(
    violation: &InvariantViolation,
    what: &str,
    origin: &str,
    event: &A::Event,
    after: &A,
    before: impl FnOnce() -> A,
) -> String {
    let before = before();
    format!(
        "invariant check: {what} (`{}`{origin}) breaks invariant `{}`: {}\n\n\
         event:\n{event:#?}\n\n\
         state after it:\n{after:#?}\n\n\
         what it changed (- before it, + after it):\n{}",
        event.event_type(),
        violation.name,
        violation.rule,
        changes(&before, after),
    )
}

/// Encodes `event` into a [`NewEvent`] and decodes it back; the envelope, or why the round
/// trip failed.
fn round_trip<E>(event: &E, metadata: Metadata) -> Result<NewEvent, String>
where
    E: DomainEvent + PartialEq,
{
    let event_type = event.event_type();
    let new = NewEvent::encode(event, &JsonCodec, metadata).map_err(|error| {
        format!(
            "codec check: event `{event_type}` cannot be encoded with the json codec\n\n\
             error: {error}\n\nevent:\n{event:#?}"
        )
    })?;
    let payload = String::from_utf8_lossy(&new.payload);
    let fail = |what: String| {
        format!(
            "codec check: event `{event_type}` does not survive a json round trip: {what}\n\n\
             payload: {payload}"
        )
    };
    let mut decoded = E::decode_all(
        &JsonCodec,
        &new.event_type,
        new.schema_version,
        &new.payload,
    )
    .map_err(|error| {
        fail(format!(
            "it does not decode\n\nerror: {error}\n\nevent:\n{event:#?}"
        ))
    })?;
    if decoded.len() != 1 {
        return Err(fail(format!(
            "it decodes into {} events, not one: a current-version event must not be split \
             or dropped\n\nevent:\n{event:#?}\n\ndecoded:\n{decoded:#?}",
            decoded.len()
        )));
    }
    let decoded = decoded.remove(0);
    if decoded != *event {
        return Err(fail(format!(
            "it decodes to a different value (- original, + decoded)\n{}",
            diff(event, &decoded)
        )));
    }
    if decoded.event_type() != event_type {
        return Err(fail(format!(
            "it decodes as event type `{}`",
            decoded.event_type()
        )));
    }
    Ok(new)
}

/// Drives `future` to completion on a current-thread runtime, on a scoped thread of its
/// own if this thread already runs a runtime.
fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    let run = move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cqrs-testing: cannot build a tokio runtime for the handler")
            .block_on(future)
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| match scope.spawn(run).join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        run()
    }
}

/// The last paragraph of every failure: which scenario failed.
fn scenario<A: Aggregate>(given: Counts, command: Option<&str>) -> String {
    let mut out = format!("scenario: {} given {}", A::TYPE_NAME, count(given.events));
    if given.stored > 0 {
        let _ = write!(
            out,
            " ({} of them decoded from {})",
            given.from_stored,
            count_stored(given.stored)
        );
    }
    match command {
        Some(command) => {
            let _ = write!(out, ", when `{command}`");
        }
        None => out.push_str(", no command"),
    }
    out
}
/// An error's `{:#?}` form, and its `Display` form beside it.
fn describe<E: std::error::Error>(error: &E) -> String {
    format!("{error:#?}\n(displays as: {error})")
}

fn count(n: usize) -> String {
    match n {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    }
}

fn count_new(n: usize) -> String {
    match n {
        1 => "new event".to_owned(),
        n => format!("{n} new events"),
    }
}

fn count_stored(n: usize) -> String {
    match n {
        1 => "1 stored event".to_owned(),
        n => format!("{n} stored events"),
    }
}

/// `value` as pretty-printed JSON (2-space indent).
fn pretty_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A line diff of the `{:#?}` forms of `expected` and `actual`: common lines prefixed with
/// two spaces, expected-only lines with `- `, actual-only lines with `+ `. Long runs of
/// common lines are elided when the output is long. No trailing newline.
fn diff<E: Debug + ?Sized, F: Debug + ?Sized>(expected: &E, actual: &F) -> String {
    let expected = format!("{expected:#?}\n");
    let actual = format!("{actual:#?}\n");
    if expected == actual {
        return format!(
            "{}(the two print identically: they differ in something Debug does not show)\n",
            prefixed("  ", &expected)
        )
        .trim_end()
        .to_owned();
    }
    diff_lines(&expected, &actual)
}

/// The lines that differ between the `{:#?}` forms of `before` and `after`, each with two
/// lines of context, marked as [`diff`] marks them.
fn changes<T: Debug + ?Sized>(before: &T, after: &T) -> String {
    let before = format!("{before:#?}\n");
    let after = format!("{after:#?}\n");
    if before == after {
        return "  (nothing Debug shows)".to_owned();
    }
    marked(&similar::TextDiff::from_lines(&before, &after), true, 2)
}

/// A line diff of two texts, each ending with a newline, marked as [`diff`] marks it.
fn diff_lines(expected: &str, actual: &str) -> String {
    let text = similar::TextDiff::from_lines(expected, actual);
    let long = expected.lines().count().max(actual.lines().count()) > 60;
    marked(&text, long, 4)
}

/// `text` with every line marked; only the changed groups with `context` lines around them
/// if `grouped`, the groups separated by `  ...`.
fn marked<'a>(text: &similar::TextDiff<'a, 'a, 'a, str>, grouped: bool, context: usize) -> String {
    let groups = if grouped {
        text.grouped_ops(context)
    } else {
        vec![text.ops().to_vec()]
    };
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str("  ...\n");
        }
        for op in group {
            for change in text.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "- ",
                    similar::ChangeTag::Insert => "+ ",
                    similar::ChangeTag::Equal => "  ",
                };
                let _ = write!(out, "{sign}{}", change.value());
                if change.missing_newline() {
                    out.push('\n');
                }
            }
        }
    }
    out.truncate(out.trim_end().len());
    out
}

fn prefixed(prefix: &str, text: &str) -> String {
    text.lines().fold(String::new(), |mut out, line| {
        let _ = writeln!(out, "{prefix}{line}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn the_diff_marks_expected_and_actual_lines() {
        let d = diff(&vec![1, 2, 3], &vec![1, 5, 3]);
        assert_eq!(d, "  [\n      1,\n-     2,\n+     5,\n      3,\n  ]");
    }

    #[test]
    fn a_long_diff_elides_common_runs() {
        let a: Vec<u32> = (0..200).collect();
        let mut b = a.clone();
        b[10] = 1000;
        b[150] = 2000;
        let d = diff(&a, &b);
        assert!(d.contains("-     10,\n+     1000,\n"), "{d}");
        assert!(d.contains("-     150,\n+     2000,\n"), "{d}");
        assert!(d.contains("  ...\n"), "{d}");
        assert!(d.lines().count() < 40, "{d}");
    }

    #[test]
    fn values_that_print_alike_are_called_out() {
        let d = diff(&f64::NAN, &f64::NAN);
        assert!(d.contains("Debug does not show"), "{d}");
    }
}
