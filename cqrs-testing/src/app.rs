//! Application-level scenarios: given events in several streams of a store, when commands
//! go through the [`Cqrs`] runtime (middleware, conflict retries, codec, store), then the
//! committed events and what the streams hold.
//!
//! Where a [Given/When/Then scenario](crate::AggregateScenario) runs one aggregate's
//! handler directly, an [`AppScenario`] runs the runtime as the application does, over an
//! [`InMemoryEventStore`]:
//!
//! ```
//! # include!("doctest_account.rs");
//! # fn main() {
//! use cqrs_core::runtime::{CommandRequest, Middleware, Next};
//! use cqrs_testing::prelude::*;
//!
//! /// Stamps every command with its actor.
//! struct Audit;
//!
//! #[cqrs_core::async_trait]
//! impl Middleware<Account> for Audit {
//!     async fn call(&self, mut request: CommandRequest<Account>, next: Next<'_, Account>)
//!         -> CommandResult<Account> {
//!         request.metadata = request.metadata.with_actor("teller-7");
//!         next.run(request).await
//!     }
//! }
//!
//! AppScenario::new(|store| Cqrs::<Account>::builder(store).middleware(Audit).build())
//!     .given("acct-1", [AccountEvent::Deposited { amount: 5 }])
//!     .given("acct-2", [AccountEvent::Deposited { amount: 1 }])
//!     .when("acct-1", AccountCommand::Withdraw { amount: 2 })
//!     .then_committed([AccountEvent::Withdrew { amount: 2 }])
//!     .then_committed_with(|committed| {
//!         assert_eq!(committed.stream_version, 2);
//!         assert_eq!(committed.events[0].metadata.actor.as_deref(), Some("teller-7"));
//!     })
//!     .then_stream("acct-1", [
//!         AccountEvent::Deposited { amount: 5 },
//!         AccountEvent::Withdrew { amount: 2 },
//!     ])
//!     // A rejection commits nothing.
//!     .when("acct-2", AccountCommand::Withdraw { amount: 9 })
//!     .then_rejected(AccountError::InsufficientFunds)
//!     .then_stream("acct-2", [AccountEvent::Deposited { amount: 1 }])
//!     .then_state("acct-1", |account| assert_eq!(account.balance, 3));
//! # }
//! ```
//!
//! ## What it checks without being asked
//!
//! * **Invariants of given events**: [`given`](AppScenario::given) folds the stream it
//!   appends to, what it held and the new events, with
//!   [`apply_checked`](Aggregate::apply_checked); an event that breaks an invariant fails
//!   at that `given` line, as in a Given/When/Then scenario.
//!   ([`given_stored`](AppScenario::given_stored) and [`given_raw`](AppScenario::given_raw)
//!   append without checks: legacy streams may predate a rule.)
//! * **Invariants of committed events**: after a command that committed events,
//!   [`when`](AppScenario::when) refolds the stream with `apply_checked` and fails at its
//!   line if one of the committed events broke an invariant (an aggregate that enforces
//!   its invariants has the runtime refuse such a command instead, with
//!   [`CommandError::Invariant`]).
//!
//! ## Conflicts and retries
//!
//! The runtime keeps the aggregates it has loaded in its cache. Appending to a stream the
//! runtime has already loaded ([`given`](AppScenario::given) after a
//! [`when`](AppScenario::when) on it) plays another writer: the next command on that
//! stream meets a concurrency conflict, and the runtime reloads and retries it according to
//! its [`RetryPolicy`](cqrs_core::RetryPolicy). A middleware holding a clone of the store
//! can do the same from inside a command.
//!
//! ## Async
//!
//! Every step blocks on a current-thread tokio runtime the scenario owns (with time and
//! I/O enabled), kept for the scenario's whole life so that tasks a middleware spawns
//! survive between steps. Inside a running runtime (a `#[tokio::test]`), each step runs
//! on a scoped thread of its own. [`block_on`](AppScenario::block_on) runs any other
//! future the same way, for custom assertions on [`cqrs`](AppScenario::cqrs) or
//! [`store`](AppScenario::store).

use std::fmt::{self, Debug, Write as _};
use std::future::Future;

use cqrs_core::upcast::StoredValue;
use cqrs_core::{
    Aggregate, Codec, Command as _, CommandError, CommandResult, Committed, Cqrs, DomainEvent,
    EventStore, ExpectedVersion, InMemoryEventStore, JsonCodec, Metadata, NewEvent, RecordedEvent,
};

use crate::{count, count_stored, describe, diff, fold, violation_report};

/// An application-level scenario: one aggregate type's [`Cqrs`] runtime over an
/// [`InMemoryEventStore`], given events in any streams, sent commands in sequence, and
/// asserted on with the `then_*` methods. See the [module docs](self).
///
/// The `then_*` methods about "the command" look at the last [`when`](Self::when); the
/// others ([`then_stream`](Self::then_stream), [`then_state`](Self::then_state), ..) at
/// the store as it is. Every step returns the scenario, so they chain; a failed
/// assertion panics at the caller's line with a diff where two values differ and the
/// scenario's steps so far.
pub struct AppScenario<A: Aggregate, C: Codec = JsonCodec> {
    store: InMemoryEventStore,
    cqrs: Cqrs<A, C>,
    codec: C,
    runtime: Option<tokio::runtime::Runtime>,
    steps: Vec<String>,
    last: Option<Last<A>>,
}

/// The last command and its outcome.
struct Last<A: Aggregate> {
    id: String,
    command: &'static str,
    result: CommandResult<A>,
}

impl<A: Aggregate + Debug> AppScenario<A> {
    /// A scenario over a fresh, empty [`InMemoryEventStore`]; `build` makes the runtime
    /// from (a clone of) it, with whatever middleware, retry policy, cache and services
    /// the test wants. Given events are encoded with the [`JsonCodec`]; see
    /// [`with_codec`](AppScenario::with_codec) for a runtime with another codec.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).retry(RetryPolicy::never()).build())
    ///     .when("acct-1", AccountCommand::Deposit { amount: 3 })
    ///     .then_committed([AccountEvent::Deposited { amount: 3 }]);
    /// # }
    /// ```
    pub fn new(build: impl FnOnce(InMemoryEventStore) -> Cqrs<A>) -> Self {
        Self::with_codec(JsonCodec, build)
    }
}

impl<A: Aggregate + Debug, C: Codec> AppScenario<A, C> {
    /// Like [`new`](AppScenario::new), for a runtime built with another payload codec
    /// (`.codec(..)` on the builder): `codec` encodes the given events and decodes the
    /// streams the `then_*` methods read, and must be the one the runtime uses.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::with_codec(JsonCodec, |store| Cqrs::<Account>::builder(store).codec(JsonCodec).build())
    ///     .given("acct-1", [AccountEvent::Deposited { amount: 3 }])
    ///     .then_state("acct-1", |account| assert_eq!(account.balance, 3));
    /// # }
    /// ```
    pub fn with_codec(codec: C, build: impl FnOnce(InMemoryEventStore) -> Cqrs<A, C>) -> Self {
        let store = InMemoryEventStore::new();
        let cqrs = build(store.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cqrs-testing: cannot build a tokio runtime for the app scenario");
        Self {
            store,
            cqrs,
            codec,
            runtime: Some(runtime),
            steps: Vec::new(),
            last: None,
        }
    }

    /// Appends `events` to the stream of aggregate instance `id` (`A::stream_id(id)`),
    /// after what it holds, as if earlier commands had recorded them (no metadata). The
    /// runtime is not involved: its middleware does not see them.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     .given("acct-1", [AccountEvent::Deposited { amount: 3 }])
    ///     .given("acct-1", [AccountEvent::Withdrew { amount: 1 }])
    ///     .then_stream("acct-1", [
    ///         AccountEvent::Deposited { amount: 3 },
    ///         AccountEvent::Withdrew { amount: 1 },
    ///     ]);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if an event breaks one of the aggregate's invariants (folded
    /// after what the stream already held), does not encode, or the store refuses them.
    #[track_caller]
    pub fn given<I>(mut self, id: &str, events: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
    {
        let stream_id = A::stream_id(id);
        let events: Vec<A::Event> = events.into_iter().collect();
        let held = self.decoded_stream(&stream_id, "given");
        let mut state = fold::<A>(held.iter());
        for (index, event) in events.iter().enumerate() {
            if let Err(violation) = state.apply_checked(event) {
                let what = format!(
                    "the event at index {index} given for stream `{stream_id}` (which held {} \
                     before)",
                    count(held.len())
                );
                let report = violation_report(&violation, &what, "", event, &state, || {
                    fold::<A>(held.iter().chain(&events[..index]))
                });
                self.fail(format_args!("{report}"));
            }
        }
        let mut batch = Vec::with_capacity(events.len());
        for event in &events {
            match NewEvent::encode(event, &self.codec, Metadata::default()) {
                Ok(new) => batch.push(new),
                Err(error) => self.fail(format_args!(
                    "given: event `{}` cannot be encoded with the `{}` codec\n\n\
                     error: {error}\n\nevent:\n{event:#?}",
                    event.event_type(),
                    self.codec.name()
                )),
            }
        }
        self.append("given", &stream_id, batch);
        self.steps.push(format!(
            "given {} in stream `{stream_id}`",
            count(events.len())
        ));
        self
    }

    /// Appends events as they are stored, in any stream: each a stored type name (a
    /// current name, an alias or a removed name), the schema version it was written with,
    /// and its JSON payload, for the runtime to lift through the upcast chains when it
    /// loads the stream. No invariant is checked. The payload is stored as JSON, so the
    /// runtime must use the [`JsonCodec`]; for another codec, see
    /// [`given_raw`](Self::given_raw).
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_core::upcast::StoredValue;
    /// use cqrs_testing::prelude::*;
    /// use serde_json::json;
    ///
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     // v1 of `Deposited` stored cents as a string.
    ///     .given_stored("Account-acct-1", [StoredValue::new("Deposited", 1, json!({"cents": "250"}))])
    ///     .when("acct-1", AccountCommand::Withdraw { amount: 200 })
    ///     .then_committed([AccountEvent::Withdrew { amount: 200 }])
    ///     .then_stream("acct-1", [
    ///         AccountEvent::Deposited { amount: 250 },
    ///         AccountEvent::Withdrew { amount: 200 },
    ///     ]);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if the store refuses the events.
    #[track_caller]
    pub fn given_stored<I>(self, stream_id: &str, stored: I) -> Self
    where
        I: IntoIterator<Item = StoredValue>,
    {
        let batch: Vec<NewEvent> = stored
            .into_iter()
            .map(|stored| {
                let payload = serde_json::to_vec(&stored.payload).expect("a JSON value serialises");
                NewEvent::new(
                    stored.event_type,
                    stored.schema_version,
                    payload,
                    Metadata::default(),
                )
            })
            .collect();
        self.given_batch("given_stored", stream_id, batch)
    }

    /// Appends `events`, already encoded, to any stream as they are: another aggregate's
    /// events, metadata, another codec's payloads. No invariant is checked.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// let opened = NewEvent::encode(
    ///     &AccountEvent::Deposited { amount: 4 },
    ///     &JsonCodec,
    ///     Metadata::default().with_actor("migration"),
    /// ).unwrap();
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     .given_raw("Account-acct-1", [opened])
    ///     .then_stream_raw("Account-acct-1", |events| {
    ///         assert_eq!(events[0].metadata.actor.as_deref(), Some("migration"));
    ///     });
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// At the caller's line if the store refuses the events.
    #[track_caller]
    pub fn given_raw<I>(self, stream_id: &str, events: I) -> Self
    where
        I: IntoIterator<Item = NewEvent>,
    {
        self.given_batch("given_raw", stream_id, events.into_iter().collect())
    }

    #[track_caller]
    fn given_batch(mut self, step: &str, stream_id: &str, batch: Vec<NewEvent>) -> Self {
        let n = batch.len();
        self.append(step, stream_id, batch);
        self.steps.push(format!(
            "{step}: {} in stream `{stream_id}`",
            count_stored(n)
        ));
        self
    }

    /// Sends `command` to aggregate instance `id` through the runtime, with empty
    /// [`Metadata`], and keeps its outcome for the `then_*` methods. Call it again to send
    /// the next command.
    ///
    /// # Panics
    ///
    /// At the caller's line if a committed event breaks one of the aggregate's invariants
    /// (see the [module docs](self#what-it-checks-without-being-asked)).
    #[track_caller]
    pub fn when(self, id: &str, command: A::Command) -> Self {
        self.when_with(id, command, Metadata::default())
    }

    /// Like [`when`](Self::when), with `metadata` for the command (its middleware sees it,
    /// its events carry it).
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     .when_with("acct-1", AccountCommand::Deposit { amount: 1 }, Metadata::default().with_actor("ann"))
    ///     .then_committed_with(|c| assert_eq!(c.events[0].metadata.actor.as_deref(), Some("ann")));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// As [`when`](Self::when).
    #[track_caller]
    pub fn when_with(mut self, id: &str, command: A::Command, metadata: Metadata) -> Self {
        let name = command.command_name();
        let result = self.block_on(self.cqrs.execute_with(id, command, metadata));
        let outcome = match &result {
            Ok(c) if c.events.is_empty() => "accepted, no events".to_owned(),
            Ok(c) => format!(
                "committed {} (stream version {})",
                count(c.events.len()),
                c.stream_version
            ),
            Err(CommandError::Rejected(_)) => "rejected".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        self.steps
            .push(format!("when `{name}` on `{id}`: {outcome}"));
        if let Ok(committed) = &result
            && !committed.events.is_empty()
        {
            self.check_committed(committed);
        }
        self.last = Some(Last {
            id: id.to_owned(),
            command: name,
            result,
        });
        self
    }

    /// Refolds the stream of `committed` with `apply_checked`; fails if one of its events
    /// broke an invariant.
    #[track_caller]
    fn check_committed(&self, committed: &Committed<A::Event>) {
        let first = committed.events[0].version;
        let recorded = self.recorded(&committed.stream_id, "when");
        let mut events = Vec::new();
        for event in &recorded {
            for decoded in self.decode(event, "when") {
                events.push((event.version, decoded));
            }
        }
        let mut state = A::default();
        for (index, (version, event)) in events.iter().enumerate() {
            let checked = state.apply_checked(event);
            if let (Err(violation), true) = (checked, *version >= first) {
                let what = format!(
                    "the committed event at stream version {version} of `{}`",
                    committed.stream_id
                );
                let report = violation_report(&violation, &what, "", event, &state, || {
                    fold::<A>(events[..index].iter().map(|(_, e)| e))
                });
                self.fail(format_args!("{report}"));
            }
        }
    }

    /// Asserts the last command committed exactly `expected`, in order.
    ///
    /// # Panics
    ///
    /// With a diff of the expected and committed events if they differ, or with the error
    /// if the command failed.
    #[track_caller]
    pub fn then_committed<I>(self, expected: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
        A::Event: PartialEq,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match &self.last("then_committed").result {
            Ok(c) => {
                let actual: Vec<&A::Event> = c.events.iter().map(|e| &e.event).collect();
                let expected: Vec<&A::Event> = expected.iter().collect();
                if actual != expected {
                    self.fail(format_args!(
                        "then_committed: the committed events differ (- expected, + actual)\n{}",
                        diff(&expected, &actual)
                    ));
                }
            }
            Err(error) => self.fail(format_args!(
                "then_committed: expected {}, but the command failed\n\n\
                 error:\n{}\n\nexpected events:\n{expected:#?}",
                count(expected.len()),
                describe(error)
            )),
        }
        self
    }

    /// Asserts the last command was accepted and committed nothing.
    ///
    /// ```
    /// # include!("doctest_tank.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::new(|store| Cqrs::<Tank>::builder(store).build())
    ///     .given("t", [TankEvent::Filled { litres: 5 }])
    ///     .when("t", TankCommand::TopUp { to: 3 })
    ///     .then_no_events();
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Listing the events if it committed some, or with the error if it failed.
    #[track_caller]
    pub fn then_no_events(self) -> Self {
        match &self.last("then_no_events").result {
            Ok(c) if c.events.is_empty() => {}
            Ok(c) => self.fail(format_args!(
                "then_no_events: expected no events, but the command committed {}:\n{:#?}",
                count(c.events.len()),
                c.events.iter().map(|e| &e.event).collect::<Vec<_>>()
            )),
            Err(error) => self.fail(format_args!(
                "then_no_events: expected the command to be accepted with no events, but it \
                 failed\n\nerror:\n{}",
                describe(error)
            )),
        }
        self
    }

    /// Asserts the aggregate rejected the last command
    /// ([`CommandError::Rejected`]) with an error equal to `expected`.
    ///
    /// # Panics
    ///
    /// With a diff of the two errors if they differ, with the error if the command failed
    /// otherwise (a conflict, a middleware's refusal, ..), or listing the events if it
    /// committed.
    #[track_caller]
    pub fn then_rejected(self, expected: A::Error) -> Self
    where
        A::Error: PartialEq,
    {
        match &self.last("then_rejected").result {
            Err(CommandError::Rejected(actual)) if *actual == expected => {}
            Err(CommandError::Rejected(actual)) => self.fail(format_args!(
                "then_rejected: the rejections differ (- expected, + actual)\n{}\n\n\
                 the actual error displays as: {actual}",
                diff(&expected, actual)
            )),
            Err(other) => self.fail(format_args!(
                "then_rejected: expected the aggregate to reject the command with \
                 {expected:?}, but the command failed otherwise\n\nerror:\n{}",
                describe(other)
            )),
            Ok(c) => self.fail(format_args!(
                "then_rejected: expected the command to be rejected with {expected:?}, but it \
                 was accepted and committed {}:\n{:#?}",
                count(c.events.len()),
                c.events.iter().map(|e| &e.event).collect::<Vec<_>>()
            )),
        }
        self
    }

    /// Asserts the last command failed with a [`CommandError`] satisfying `predicate`:
    /// a rejection, a conflict the retries did not resolve, a middleware's refusal, a
    /// broken invariant.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     .when("acct-1", AccountCommand::Withdraw { amount: 1 })
    ///     .then_error_matches(|e| e.rejection() == Some(&AccountError::InsufficientFunds));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Showing the error if `predicate` returns false, or listing the events if the
    /// command committed.
    #[track_caller]
    pub fn then_error_matches(
        self,
        predicate: impl FnOnce(&CommandError<A::Error>) -> bool,
    ) -> Self {
        match &self.last("then_error_matches").result {
            Err(error) => {
                if !predicate(error) {
                    self.fail(format_args!(
                        "then_error_matches: the error does not match the predicate\n\n\
                         error:\n{}",
                        describe(error)
                    ))
                }
            }
            Ok(c) => self.fail(format_args!(
                "then_error_matches: expected the command to fail, but it was accepted and \
                 committed {}:\n{:#?}",
                count(c.events.len()),
                c.events.iter().map(|e| &e.event).collect::<Vec<_>>()
            )),
        }
        self
    }

    /// Hands what the last command committed (the envelopes with their ids, versions,
    /// positions and metadata) to `check`, which asserts what it wants.
    ///
    /// # Panics
    ///
    /// With the error if the command failed; and whatever `check` asserts.
    #[track_caller]
    pub fn then_committed_with(self, check: impl FnOnce(&Committed<A::Event>)) -> Self {
        match &self.last("then_committed_with").result {
            Ok(committed) => check(committed),
            Err(error) => self.fail(format_args!(
                "then_committed_with: expected the command to commit, but it failed\n\n\
                 error:\n{}",
                describe(error)
            )),
        }
        self
    }

    /// Asserts the stream of aggregate instance `id` holds exactly `expected`, decoded
    /// today (through the upcast chains): what was given and what the commands committed.
    ///
    /// # Panics
    ///
    /// With a diff of the expected and stored events if they differ, or if a stored event
    /// does not decode.
    #[track_caller]
    pub fn then_stream<I>(self, id: &str, expected: I) -> Self
    where
        I: IntoIterator<Item = A::Event>,
        A::Event: PartialEq,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let stream_id = A::stream_id(id);
        let actual = self.decoded_stream(&stream_id, "then_stream");
        if actual != expected {
            self.fail(format_args!(
                "then_stream: stream `{stream_id}` holds other events (- expected, + stored)\n{}",
                diff(&expected, &actual)
            ));
        }
        self
    }

    /// Hands the events of any stream, as stored (type names, versions, positions,
    /// metadata, payloads), to `check`.
    ///
    /// # Panics
    ///
    /// If the store fails; and whatever `check` asserts.
    #[track_caller]
    pub fn then_stream_raw(self, stream_id: &str, check: impl FnOnce(&[RecordedEvent])) -> Self {
        let recorded = self.recorded(stream_id, "then_stream_raw");
        check(&recorded);
        self
    }

    /// Loads aggregate instance `id` from the store through the runtime
    /// ([`Cqrs::load`], bypassing its cache) and hands its state to `check`.
    ///
    /// # Panics
    ///
    /// If it does not load; and whatever `check` asserts.
    #[track_caller]
    pub fn then_state(self, id: &str, check: impl FnOnce(&A)) -> Self {
        match self.block_on(self.cqrs.load(id)) {
            Ok(loaded) => check(&loaded.state),
            Err(error) => self.fail(format_args!(
                "then_state: aggregate `{id}` does not load\n\nerror:\n{}",
                describe(&error)
            )),
        }
        self
    }

    /// The store the runtime writes to.
    pub fn store(&self) -> &InMemoryEventStore {
        &self.store
    }

    /// The runtime.
    pub fn cqrs(&self) -> &Cqrs<A, C> {
        &self.cqrs
    }

    /// The last command's outcome, `None` before the first [`when`](Self::when).
    pub fn result(&self) -> Option<&CommandResult<A>> {
        self.last.as_ref().map(|last| &last.result)
    }

    /// The events of aggregate instance `id`'s stream, decoded today.
    ///
    /// # Panics
    ///
    /// At the caller's line if the store fails or an event does not decode.
    #[track_caller]
    pub fn stream(&self, id: &str) -> Vec<A::Event> {
        self.decoded_stream(&A::stream_id(id), "stream")
    }

    /// Runs `future` to completion on the scenario's runtime: for custom assertions with
    /// [`cqrs`](Self::cqrs) or [`store`](Self::store).
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::prelude::*;
    ///
    /// let scenario = AppScenario::new(|store| Cqrs::<Account>::builder(store).build())
    ///     .when("acct-1", AccountCommand::Deposit { amount: 2 });
    /// let loaded = scenario.block_on(scenario.cqrs().load("acct-1")).unwrap();
    /// assert_eq!(loaded.version, 1);
    /// let head = scenario.block_on(scenario.store().head_position()).unwrap();
    /// assert_eq!(head, 1);
    /// # }
    /// ```
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the scenario");
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(
                |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                    Ok(output) => output,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
            )
        } else {
            runtime.block_on(future)
        }
    }

    #[track_caller]
    fn last(&self, step: &str) -> &Last<A> {
        match &self.last {
            Some(last) => last,
            None => self.fail(format_args!(
                "{step}: no command has been sent yet; send one with `when`"
            )),
        }
    }

    #[track_caller]
    fn append(&self, step: &str, stream_id: &str, batch: Vec<NewEvent>) {
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.block_on(self.store.append(stream_id, ExpectedVersion::Any, batch))
        {
            self.fail(format_args!(
                "{step}: the store refused the events for stream `{stream_id}`\n\nerror:\n{}",
                describe(&error)
            ));
        }
    }

    #[track_caller]
    fn recorded(&self, stream_id: &str, step: &str) -> Vec<RecordedEvent> {
        match self.block_on(self.store.read_stream(stream_id, 1)) {
            Ok(events) => events,
            Err(error) => self.fail(format_args!(
                "{step}: cannot read stream `{stream_id}`\n\nerror:\n{}",
                describe(&error)
            )),
        }
    }

    #[track_caller]
    fn decode(&self, event: &RecordedEvent, step: &str) -> Vec<A::Event> {
        match event.decode::<A::Event, C>(&self.codec) {
            Ok(events) => events,
            Err(error) => self.fail(format_args!(
                "{step}: the event at version {} of stream `{}` does not decode\n\nerror:\n{}",
                event.version,
                event.stream_id,
                describe(&error)
            )),
        }
    }

    #[track_caller]
    fn decoded_stream(&self, stream_id: &str, step: &str) -> Vec<A::Event> {
        let mut events = Vec::new();
        for event in self.recorded(stream_id, step) {
            events.extend(self.decode(&event, step));
        }
        events
    }

    #[track_caller]
    fn fail(&self, message: fmt::Arguments<'_>) -> ! {
        panic!("{message}\n\n{}", self.context());
    }

    /// The last paragraph of every failure: the scenario's steps.
    fn context(&self) -> String {
        let mut out = format!("app scenario ({}):", A::TYPE_NAME);
        if self.steps.is_empty() {
            out.push_str(" no steps yet");
        }
        for step in &self.steps {
            let _ = write!(out, "\n  {step}");
        }
        if let Some(last) = &self.last {
            let _ = write!(
                out,
                "\n(the `then_*` steps look at the last command: `{}` on `{}`)",
                last.command, last.id
            );
        }
        out
    }
}

impl<A: Aggregate, C: Codec> Drop for AppScenario<A, C> {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which a running runtime forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl<A: Aggregate, C: Codec> Debug for AppScenario<A, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppScenario")
            .field("aggregate", &A::TYPE_NAME)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}
