//! The storage conformance suite: the [`EventStore`] contract as tests that every adapter
//! runs.
//!
//! An adapter is done when it passes this suite. It checks what the contract on
//! [`EventStore`] promises, each rule in a case of its own so a failure names the rule:
//!
//! | case | what it checks |
//! |---|---|
//! | [`expected_versions`] | the `Any` / `NoStream` / `StreamExists` / `Exact(n)` table on a missing and an existing stream, and the concurrency error's fields |
//! | [`invalid_batches`] | empty batches, an id twice in a batch, `$`-prefixed streams: [`StoreError::InvalidBatch`], nothing written |
//! | [`atomic_batches`] | a batch that fails (conflict, duplicate, invalid) writes none of its events and burns none of its ids |
//! | [`idempotent_appends`] | re-sending a committed batch succeeds as deduplicated with its original positions, whatever the expected version, also when the copies race |
//! | [`conflicting_resends`] | an id that comes back with other content, in another stream, beside new events or in another order: [`StoreError::DuplicateEvent`] |
//! | [`partial_resends`] | any run of committed events re-sent in order (part of a batch, two batches as one) is deduplicated with the original positions, and writes nothing |
//! | [`stream_reads`] | the envelope round trip (ids, metadata, binary, empty and large payloads), reads from any version, `read_stream_with` stopping early |
//! | [`global_log`] | every committed event once, in position order; paging with any limit and resuming from any position |
//! | [`model_based`] | thousands of random sequences of appends, re-sends and reads, checked against a model |
//! | [`concurrent_writers`] | 16 tasks × 200 appends on 8 hot streams with exact versions and retries: gapless versions, no lost or doubled event, every lost race a concurrency error |
//! | [`global_log_under_writes`] | readers tailing the global log while writers commit see every event exactly once, in order, and re-reads agree |
//! | [`undecodable_events`] | an unknown type, a payload that is not JSON, a wrong shape, an unknown schema version: typed decode errors from [`RecordedEvent::decode`] and [`Cqrs::load`](cqrs_core::Cqrs::load), no panic |
//! | [`corrupt_rows`] | with the adapter's [`CorruptHook`]: a row damaged behind the store's back reads as a typed error, never a panic |
//! | [`snapshots`] | save and load, the newest by stream version wins, a late older one is ignored |
//! | [`delete_stream`] | tombstones, the concurrency check, the [`RetentionEvent::StreamDeleted`] marker, the snapshot going too |
//! | [`truncate_stream`] | the version kept, [`StoreError::StreamTruncated`] for removed versions, the marker |
//! | [`expire`] | time to live across streams, markers kept, the [`RetentionEvent::EventsExpired`] marker |
//!
//! # Running it against an adapter
//!
//! One line in the adapter's tests: [`event_store_conformance!`](crate::event_store_conformance)
//! expands to a module with one `#[test]` per case. Each test builds a fresh store with the
//! factory (an `async` closure, so it can open a database) and runs the case on a
//! multi-threaded tokio runtime:
//!
//! ```
//! use cqrs_core::store::InMemoryEventStore;
//!
//! cqrs_testing::event_store_conformance!(memory, || async { InMemoryEventStore::new() });
//! ```
//!
//! A slow store (an fsync per commit) may scale the random and concurrent cases down with a
//! [`Config`], saying why next to it:
//!
//! ```
//! # use cqrs_core::store::InMemoryEventStore;
//! use cqrs_testing::conformance::Config;
//!
//! cqrs_testing::event_store_conformance!(
//!     slow_memory,
//!     || async { InMemoryEventStore::new() },
//!     // Why: every append is an fsync here, and 2 000 model cases take minutes.
//!     Config::default().model_cases(300).appends_per_writer(50)
//! );
//! ```
//!
//! Every case is also a public `async fn` taking a fresh store and the [`Config`], for an
//! adapter that needs its own set-up per test (a schema per test on a shared server) or
//! its own test attributes. [`run_all`] runs every case in turn. The cases need a tokio
//! runtime with its time driver (`enable_all`), multi-threaded so that the concurrent
//! cases are concurrent:
//!
//! ```
//! use cqrs_core::store::InMemoryEventStore;
//! use cqrs_testing::conformance::{self, Config};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let config = Config::quick();
//! conformance::expected_versions(InMemoryEventStore::new(), &config).await.unwrap();
//! conformance::run_all(|| async { InMemoryEventStore::new() }, &config).await.unwrap();
//! # });
//! ```
//!
//! # What a store given to a case may hold
//!
//! Every case writes only to streams whose ids carry a random tag of its own, and checks
//! the global log from the head position it found when it started, ignoring other
//! streams' events. A factory may therefore hand out a store that already holds data, for
//! example one database reused across cases. Two cases should not share a store *at the
//! same time*, though: [`expire`] removes every event recorded before its cut-off, in
//! every stream, which would pull events from under a case running beside it.
//!
//! # Bad data
//!
//! The suite cannot damage an arbitrary backend's rows, so [`undecodable_events`] writes
//! events no decoder accepts through the public API (an unknown type name, bytes that are
//! not JSON) and checks the typed errors on the way back. An adapter that can reach its
//! own storage also gives a [`CorruptHook`] ([`Config::corrupt`]) that damages one stored
//! event behind the store's back, and [`corrupt_rows`] checks that every read path then
//! answers with a typed error instead of panicking. Without a hook that case passes
//! without checking anything.
//!
//! # Failures
//!
//! Each case returns a [`Failure`] naming the case and saying what differed; the macro's
//! tests panic with it. The model-based case shrinks a failing run to a short sequence of
//! operations and prints it with the seed to replay it
//! ([`Config::model_seed`], or the `CQRS_CONFORMANCE_SEED` environment variable).
//!
//! [`StoreError::InvalidBatch`]: cqrs_core::StoreError::InvalidBatch
//! [`StoreError::DuplicateEvent`]: cqrs_core::StoreError::DuplicateEvent
//! [`StoreError::StreamTruncated`]: cqrs_core::StoreError::StreamTruncated
//! [`RetentionEvent::StreamDeleted`]: cqrs_core::store::RetentionEvent::StreamDeleted
//! [`RetentionEvent::EventsExpired`]: cqrs_core::store::RetentionEvent::EventsExpired
//! [`RecordedEvent::decode`]: cqrs_core::RecordedEvent::decode

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use cqrs_core::store::{BoxError, EventStore};

mod appends;
mod bad_data;
mod concurrent;
mod model;
mod retention;
mod support;

pub use appends::{
    atomic_batches, conflicting_resends, expected_versions, global_log, idempotent_appends,
    invalid_batches, partial_resends, stream_reads,
};
pub use bad_data::{corrupt_rows, undecodable_events};
pub use concurrent::{concurrent_writers, global_log_under_writes};
pub use model::model_based;
pub use retention::{delete_stream, expire, snapshots, truncate_stream};

/// The names of every case, in the order [`run_all`] and the macros run them.
pub const CASES: &[&str] = {
    macro_rules! names {
        ($($case:ident)*) => {
            &[$(stringify!($case)),*]
        };
    }
    crate::conformance_case_names!([names])
};

/// A boxed future, as a [`CorruptHook`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Damages the stored event of `stream_id` at `version` behind the store's back, so that
/// reading it can no longer give back what was appended: overwrite its payload with
/// bytes no codec accepts, its metadata column with something that does not parse, a
/// column the store relies on with NULL. The event must still be there: the check is
/// that reads report the damage as a typed error, not that the row is gone.
///
/// Written as a plain function, the lifetimes spelled out:
///
/// ```
/// use cqrs_core::store::{BoxError, InMemoryEventStore};
/// use cqrs_testing::conformance::{BoxFuture, Config};
///
/// fn corrupt<'a>(
///     store: &'a InMemoryEventStore,
///     stream_id: &'a str,
///     version: u64,
/// ) -> BoxFuture<'a, Result<(), BoxError>> {
///     Box::pin(async move {
///         // e.g. `UPDATE events SET payload = x'ff00' WHERE stream_id = ? AND version = ?`
/// #       let _ = (store, stream_id, version);
///         Ok(())
///     })
/// }
///
/// let config = Config::default().corrupt(corrupt);
/// # let _ = config;
/// ```
pub type CorruptHook<S> = for<'a> fn(&'a S, &'a str, u64) -> BoxFuture<'a, Result<(), BoxError>>;

/// How hard the suite pushes: the size of the random and concurrent cases, the seed of the
/// random one, and the adapter's [`CorruptHook`].
///
/// The defaults are the numbers the contract is stated with: 2 000 random operation
/// sequences, 16 writers × 200 appends on 8 hot streams. Lower them only for a store that
/// is slow by design, and say why where you do.
pub struct Config<S> {
    model_cases: u32,
    model_max_ops: usize,
    model_seed: Option<u64>,
    writers: usize,
    appends_per_writer: usize,
    hot_streams: usize,
    corrupt: Option<CorruptHook<S>>,
}

impl<S> Default for Config<S> {
    fn default() -> Self {
        Self {
            model_cases: 2000,
            model_max_ops: 24,
            model_seed: None,
            writers: 16,
            appends_per_writer: 200,
            hot_streams: 8,
            corrupt: None,
        }
    }
}

impl<S> Clone for Config<S> {
    fn clone(&self) -> Self {
        Self {
            corrupt: self.corrupt,
            ..*self
        }
    }
}

impl<S> fmt::Debug for Config<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("model_cases", &self.model_cases)
            .field("model_max_ops", &self.model_max_ops)
            .field("model_seed", &self.model_seed)
            .field("writers", &self.writers)
            .field("appends_per_writer", &self.appends_per_writer)
            .field("hot_streams", &self.hot_streams)
            .field("corrupt", &self.corrupt.map(|_| "hook"))
            .finish()
    }
}

impl<S> Config<S> {
    /// A small configuration for examples and smoke tests: 20 random sequences, 4 writers
    /// × 20 appends on 2 streams. Not enough to call an adapter conformant.
    pub fn quick() -> Self {
        Self {
            model_cases: 20,
            writers: 4,
            appends_per_writer: 20,
            hot_streams: 2,
            ..Self::default()
        }
    }

    /// How many random operation sequences [`model_based`] runs (default 2 000).
    #[must_use]
    pub fn model_cases(mut self, cases: u32) -> Self {
        self.model_cases = cases;
        self
    }

    /// The longest operation sequence [`model_based`] generates (default 24, at least 1).
    #[must_use]
    pub fn model_max_ops(mut self, ops: usize) -> Self {
        self.model_max_ops = ops.max(1);
        self
    }

    /// Replays [`model_based`] from this seed, printed by a failure (default: a random
    /// seed, or the `CQRS_CONFORMANCE_SEED` environment variable when set).
    #[must_use]
    pub fn model_seed(mut self, seed: u64) -> Self {
        self.model_seed = Some(seed);
        self
    }

    /// How many tasks append at once in the concurrent cases (default 16, at least 1).
    #[must_use]
    pub fn writers(mut self, writers: usize) -> Self {
        self.writers = writers.max(1);
        self
    }

    /// How many events each writer appends in the concurrent cases (default 200).
    #[must_use]
    pub fn appends_per_writer(mut self, appends: usize) -> Self {
        self.appends_per_writer = appends;
        self
    }

    /// How many streams the writers share in the concurrent cases (default 8, at least 1).
    #[must_use]
    pub fn hot_streams(mut self, streams: usize) -> Self {
        self.hot_streams = streams.max(1);
        self
    }

    /// The hook [`corrupt_rows`] damages a stored event with (default: none, and the case
    /// checks nothing).
    #[must_use]
    pub fn corrupt(mut self, hook: CorruptHook<S>) -> Self {
        self.corrupt = Some(hook);
        self
    }
}

/// A broken rule: the case, and what the store did instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The case that failed, one of [`CASES`].
    pub case: &'static str,
    /// What was expected and what the store did.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance case `{}` failed: {}",
            self.case, self.message
        )
    }
}

impl std::error::Error for Failure {}

/// Every case that failed in [`run_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures(pub Vec<Failure>);

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} conformance case(s) failed", self.0.len())?;
        for failure in &self.0 {
            write!(f, "\n\n{failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}

/// Runs every case in [`CASES`] in turn, each on a fresh store from `factory`, and
/// returns every failure. Needs a tokio runtime (see the [module docs](self)).
pub async fn run_all<S, F, Fut>(factory: F, config: &Config<S>) -> Result<(), Failures>
where
    S: EventStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut failures = Vec::new();
    macro_rules! case {
        ($($case:ident)*) => {$(
            if let Err(failure) = $case(factory().await, config).await {
                failures.push(failure);
            }
        )*};
    }
    crate::conformance_case_names!([case]);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failures(failures))
    }
}

/// Runs one case of the macro's tests: a multi-threaded runtime, the case, a panic with
/// the failure. Not public API.
#[doc(hidden)]
#[track_caller]
pub fn __block_on(case: impl Future<Output = Result<(), Failure>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("cqrs-testing: cannot build a tokio runtime for the conformance suite");
    if let Err(failure) = runtime.block_on(case) {
        panic!("{failure}");
    }
}

/// Runs the storage [conformance suite](crate::conformance) against an event store: expands
/// to a module `$name` with one `#[test]` per case, each on a fresh store from the factory.
///
/// ```text
/// event_store_conformance!(name, factory);
/// event_store_conformance!(name, factory, config);
/// ```
///
/// * `name`: the module the tests go in (`memory`, `sqlite`): failures read
///   `memory::concurrent_writers`.
/// * `factory`: an expression callable with no argument that returns a future of a fresh
///   store, such as `|| async { InMemoryEventStore::new() }`. It is evaluated in the
///   generated module, which imports everything of the module the macro is called in.
/// * `config`: a [`Config`](crate::conformance::Config) (default
///   `Config::default()`), evaluated once per test.
///
/// ```
/// use cqrs_core::store::InMemoryEventStore;
/// use cqrs_testing::conformance::Config;
///
/// cqrs_testing::event_store_conformance!(memory, || async { InMemoryEventStore::new() });
///
/// cqrs_testing::event_store_conformance!(
///     memory_quick,
///     || async { InMemoryEventStore::new() },
///     Config::quick()
/// );
/// ```
#[macro_export]
macro_rules! event_store_conformance {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::event_store_conformance!($name, $factory, $crate::conformance::Config::default());
    };
    ($name:ident, $factory:expr, $config:expr $(,)?) => {
        #[allow(unused_imports)]
        mod $name {
            use super::*;

            $crate::conformance_case_names!([$crate::__conformance_cases]($factory, $config));
        }
    };
}

/// One `#[test]` per case, for [`event_store_conformance!`]. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (($factory:expr, $config:expr) $($case:ident)*) => {$(
        #[test]
        fn $case() {
            let config = $config;
            $crate::conformance::__block_on(async {
                let store = ($factory)().await;
                $crate::conformance::$case(store, &config).await
            });
        }
    )*};
}

/// `conformance_case_names!([callback] args..)` expands to `callback!(args.. case ..)`
/// with the name of every conformance case, in [`CASES`] order: the one list that
/// [`CASES`], [`run_all`](crate::conformance::run_all) and
/// [`event_store_conformance!`] are generated from. For a harness that needs its own
/// per-case set-up (the PostgreSQL suite gives each case a schema of its own and drops
/// it), so that a new case is never left out of it.
///
/// ```
/// macro_rules! count {
///     ($($case:ident)*) => { [$(stringify!($case)),*].len() };
/// }
/// assert_eq!(
///     cqrs_testing::conformance_case_names!([count]),
///     cqrs_testing::conformance::CASES.len()
/// );
/// ```
#[macro_export]
macro_rules! conformance_case_names {
    ([$($callback:tt)*] $($args:tt)*) => {
        $($callback)*! {
            $($args)*
            expected_versions
            invalid_batches
            atomic_batches
            idempotent_appends
            conflicting_resends
            partial_resends
            stream_reads
            global_log
            model_based
            concurrent_writers
            global_log_under_writes
            undecodable_events
            corrupt_rows
            snapshots
            delete_stream
            truncate_stream
            expire
        }
    };
}
