//! The read-side conformance suite: every store that keeps views (in-memory, SQLite,
//! PostgreSQL) runs the same cases against [`ViewStore`], inline projections and the
//! [`ProjectionRunner`].
//!
//! ```no_run
//! use cqrs_core::store::InMemoryEventStore;
//!
//! cqrs_testing::read_side_conformance!(memory, || async {
//!     Some((InMemoryEventStore::new(), ()))
//! });
//! # fn main() {}
//! ```
//!
//! The cases use a hand-written projection, [`Tally`]: per aggregate it sums the `n` of
//! `Added` events and refuses to apply a stream's events out of order or twice (the
//! document remembers the last version), so a duplicate or a skipped delivery fails
//! loudly instead of hiding in a sum.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_core::projection::{
    DocChange, Projection, ProjectionError, ProjectionRunner, RunnerOptions, ViewStore, WaitError,
};
use cqrs_core::store::{EventStore, ExpectedVersion, StoreError};
use cqrs_core::{Metadata, NewEvent, RecordedEvent};
use serde::{Deserialize, Serialize};

/// The document of [`Tally`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TallyDoc {
    /// Σ n of the stream's `Added` events.
    pub sum: u64,
    /// How many were applied.
    pub count: u64,
    /// The last stream version applied.
    pub last_version: u64,
}

/// The suite's projection (see the module docs). `poison` makes it fail on events whose
/// payload says `"poison": true`; `panic_once` makes it panic the first time it sees one
/// of those event ids.
#[derive(Clone)]
pub struct Tally {
    name: String,
    /// Fail on poisoned events while set.
    pub poison: Arc<AtomicBool>,
    /// Event ids to panic on, once each.
    pub panic_once: Arc<Mutex<HashSet<uuid::Uuid>>>,
}

impl Tally {
    /// A tally named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            poison: Arc::new(AtomicBool::new(true)),
            panic_once: Arc::default(),
        }
    }
}

#[derive(Deserialize)]
struct Added {
    n: u64,
    #[serde(default)]
    poison: bool,
}

impl Projection for Tally {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        &*event.event_type == "Added"
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        if self
            .panic_once
            .lock()
            .map(|mut s| s.remove(&event.event_id))
            .unwrap_or(false)
        {
            panic!("tally: injected crash at position {}", event.position);
        }
        let added: Added = serde_json::from_slice(&event.payload)
            .map_err(|e| ProjectionError::Handler(format!("bad payload: {e}")))?;
        if added.poison && self.poison.load(Ordering::SeqCst) {
            return Err(ProjectionError::Handler(format!(
                "poison event at version {}",
                event.version
            )));
        }
        let mut doc: TallyDoc = match current {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| ProjectionError::Handler(format!("bad document: {e}")))?,
            None => TallyDoc::default(),
        };
        if event.version <= doc.last_version {
            return Err(ProjectionError::Handler(format!(
                "version {} of {} applied twice (the document is at {})",
                event.version, event.stream_id, doc.last_version
            )));
        }
        doc.sum += added.n;
        doc.count += 1;
        doc.last_version = event.version;
        Ok(DocChange::Put(serde_json::to_vec(&doc).unwrap().into()))
    }
}

/// An `Added` event.
pub fn added(n: u64, poison: bool) -> NewEvent {
    let payload = serde_json::to_vec(&serde_json::json!({ "n": n, "poison": poison })).unwrap();
    NewEvent::new("Added", 1, payload, Metadata::default())
}

/// An event the tally does not handle (with a payload it could not decode).
pub fn other() -> NewEvent {
    NewEvent::new("Other", 1, b"not json".to_vec(), Metadata::default())
}

/// The fold the tally must reach: per aggregate id, over every committed `Added`
/// event (poisoned ones included unless `skip` names them).
pub async fn expected_docs(
    store: &dyn EventStore,
    skip: &HashSet<uuid::Uuid>,
) -> BTreeMap<String, TallyDoc> {
    let mut out: BTreeMap<String, TallyDoc> = BTreeMap::new();
    let mut from = 1;
    loop {
        let page = store.read_all(from, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        from = last.position + 1;
        for e in &page {
            if &*e.event_type != "Added" || skip.contains(&e.event_id) {
                continue;
            }
            let added: Added = serde_json::from_slice(&e.payload).unwrap();
            let doc = out
                .entry(cqrs_core::projection::aggregate_id(&e.stream_id).to_owned())
                .or_default();
            doc.sum += added.n;
            doc.count += 1;
            doc.last_version = e.version;
        }
    }
}

/// The tally's documents in the store's active generation.
pub async fn stored_docs(views: &dyn ViewStore, name: &str) -> BTreeMap<String, TallyDoc> {
    views
        .load_docs(name)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

fn fast() -> RunnerOptions {
    RunnerOptions {
        batch_size: 200,
        poll_interval: Duration::from_millis(20),
        max_attempts: 3,
        backoff: Duration::from_millis(1),
    }
}

async fn append(store: &dyn EventStore, stream: &str, events: Vec<NewEvent>) -> u64 {
    *store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .unwrap()
        .positions
        .last()
        .unwrap()
}

/// Inline: the documents change in the append's transaction; a failing projection
/// refuses the append and leaves events and documents untouched.
pub async fn inline_projection<S>(store: S)
where
    S: EventStore + ViewStore + Clone,
{
    let tally = Tally::new("tally_inline");
    let projections: Vec<Arc<dyn Projection>> = vec![Arc::new(tally.clone())];
    let outcome = store
        .append_projected(
            "acct-a",
            ExpectedVersion::NoStream,
            vec![added(5, false), other(), added(7, false)],
            &projections,
        )
        .await
        .unwrap();
    let doc: TallyDoc =
        serde_json::from_slice(&store.load_doc("tally_inline", "a").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(
        doc,
        TallyDoc {
            sum: 12,
            count: 2,
            last_version: 3
        }
    );
    assert!(!outcome.deduplicated);

    let refused = store
        .append_projected(
            "acct-a",
            ExpectedVersion::Exact(3),
            vec![added(1, false), added(100, true)],
            &projections,
        )
        .await
        .unwrap_err();
    match &refused {
        StoreError::Projection {
            projection,
            stream_id,
            source,
            ..
        } => {
            assert_eq!(projection, "tally_inline");
            assert_eq!(stream_id, "acct-a");
            assert!(source.to_string().contains("poison"), "{source}");
        }
        other => panic!("expected StoreError::Projection, got {other:?}"),
    }
    assert_eq!(store.stream_version("acct-a").await.unwrap(), Some(3));
    let after: TallyDoc =
        serde_json::from_slice(&store.load_doc("tally_inline", "a").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(after, doc, "a refused append changed the view");

    // A re-send of a committed batch is deduplicated and applies nothing again.
    let batch = vec![added(2, false)];
    let first = store
        .append_projected("acct-b", ExpectedVersion::Any, batch.clone(), &projections)
        .await
        .unwrap();
    let again = store
        .append_projected("acct-b", ExpectedVersion::Any, batch, &projections)
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.positions, first.positions);
    let b: TallyDoc =
        serde_json::from_slice(&store.load_doc("tally_inline", "b").await.unwrap().unwrap())
            .unwrap();
    assert_eq!(b.count, 1);
}

/// Async: the runner catches up, `wait_for` returns once the position is reached, a
/// position never reached times out with an error naming what it waited for, lag is 0.
pub async fn async_catch_up<S>(store: S)
where
    S: EventStore + ViewStore + Clone,
{
    let tally = Tally::new("tally_async");
    let mut head = 0;
    for i in 0..200u64 {
        head = append(&store, &format!("acct-{}", i % 10), vec![added(i, false)]).await;
    }
    let runner = ProjectionRunner::new(store.clone(), tally)
        .options(fast())
        .spawn();
    runner
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        stored_docs(&store, "tally_async").await,
        expected_docs(&store, &HashSet::new()).await
    );
    assert_eq!(runner.lag().await.unwrap(), 0);

    // New commits wake the runner.
    let started = Instant::now();
    let next = append(&store, "acct-x", vec![added(1, false)]).await;
    runner
        .wait_for(next, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));

    let err = runner
        .wait_for(next + 1_000, Duration::from_millis(100))
        .await
        .unwrap_err();
    match &err {
        WaitError::Timeout {
            projection,
            position,
            reached,
            ..
        } => {
            assert_eq!(projection, "tally_async");
            assert_eq!(*position, next + 1_000);
            assert_eq!(*reached, next);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("tally_async"), "{err}");
    runner.stop().await.unwrap();
}

/// Crash and resume: 10,000 events; the projection panics at random points (once each)
/// and the runner is killed and restarted again and again; in the end the documents
/// are exactly the fold of every event, each applied once.
pub async fn crash_and_resume<S>(store: S)
where
    S: EventStore + ViewStore + Clone,
{
    let tally = Tally::new("tally_crash");
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut head = 0;
    let mut ids = Vec::new();
    for batch in 0..1_000u64 {
        let events: Vec<NewEvent> = (0..10).map(|k| added(batch * 10 + k, false)).collect();
        ids.extend(events.iter().map(|e| e.event_id));
        head = append(&store, &format!("acct-{}", batch % 37), events).await;
    }
    {
        let mut panics = tally.panic_once.lock().unwrap();
        for id in &ids {
            if next() % 50 == 0 {
                panics.insert(*id);
            }
        }
        assert!(
            panics.len() > 100,
            "too few crashes injected: {}",
            panics.len()
        );
    }
    let mut restarts = 0;
    loop {
        let runner = ProjectionRunner::new(store.clone(), tally.clone())
            .options(fast())
            .spawn();
        // The first run is cut short at once, so there is always a restart.
        let pause = Duration::from_millis(if restarts == 0 { 1 } else { 5 + next() % 40 });
        let done = runner.wait_for(head, pause).await.is_ok();
        runner.abort();
        restarts += 1;
        if done {
            break;
        }
        assert!(restarts < 10_000, "no progress");
    }
    assert!(restarts > 1, "the runner was never restarted");
    // Every event was applied, so every injected crash happened.
    assert!(
        tally.panic_once.lock().unwrap().is_empty(),
        "some injected crashes never fired"
    );
    assert_eq!(
        stored_docs(&store, "tally_crash").await,
        expected_docs(&store, &HashSet::new()).await
    );
    assert!(store.dead_letters("tally_crash").await.unwrap().is_empty());
}

/// A poison event is parked with its reason; later events of its stream wait behind it
/// (parked in order); other streams go on; the checkpoint passes it only as a dead
/// letter. Retry (after a fix) applies the stream's parked events in order; skip drops
/// the failing one and applies the rest.
pub async fn poison_events<S>(store: S)
where
    S: EventStore + ViewStore + Clone,
{
    let tally = Tally::new("tally_poison");
    append(&store, "acct-p", vec![added(1, false), added(2, false)]).await;
    let poisoned = added(3, true);
    let poisoned_id = poisoned.event_id;
    append(&store, "acct-p", vec![poisoned]).await;
    append(&store, "acct-q", vec![added(10, false)]).await;
    append(&store, "acct-p", vec![added(4, false)]).await;
    let head = append(&store, "acct-q", vec![added(20, false)]).await;

    let runner = ProjectionRunner::new(store.clone(), tally.clone())
        .options(fast())
        .spawn();
    runner
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    let letters = runner.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].event_id, poisoned_id);
    assert_eq!(letters[0].version, 3);
    assert!(
        letters[0].reason.contains("poison"),
        "{}",
        letters[0].reason
    );
    assert_eq!(letters[0].blocked_by, None);
    assert!(letters[0].attempts >= 1);
    assert_eq!(letters[1].version, 4);
    assert_eq!(letters[1].blocked_by, Some(letters[0].position));
    let docs = stored_docs(&store, "tally_poison").await;
    assert_eq!(docs["p"].count, 2, "p stops before the poison event");
    assert_eq!(docs["q"].sum, 30, "other streams go on");

    // Still failing: retry reports it and keeps it parked.
    assert!(runner.retry(poisoned_id).await.is_err());
    assert_eq!(runner.dead_letters().await.unwrap().len(), 2);

    // Fixed: retry applies 3 then 4, in order.
    tally.poison.store(false, Ordering::SeqCst);
    runner.retry(poisoned_id).await.unwrap();
    assert!(runner.dead_letters().await.unwrap().is_empty());
    let docs = stored_docs(&store, "tally_poison").await;
    assert_eq!(
        docs["p"],
        TallyDoc {
            sum: 10,
            count: 4,
            last_version: 4
        }
    );

    // Skip: a second poison event is dropped, the one behind it applied.
    tally.poison.store(true, Ordering::SeqCst);
    let again = added(5, true);
    let again_id = again.event_id;
    append(&store, "acct-p", vec![again]).await;
    let head = append(&store, "acct-p", vec![added(6, false)]).await;
    runner
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(runner.dead_letters().await.unwrap().len(), 2);
    runner.skip(again_id).await.unwrap();
    assert!(runner.dead_letters().await.unwrap().is_empty());
    let docs = stored_docs(&store, "tally_poison").await;
    assert_eq!(
        docs["p"],
        TallyDoc {
            sum: 16,
            count: 5,
            last_version: 6
        }
    );
    runner.stop().await.unwrap();
}

/// Rebuild: a new generation is built from position 0 while the old one keeps serving
/// (and following) reads; once caught up it replaces the old one, and equals the live
/// read model.
pub async fn rebuild<S>(store: S)
where
    S: EventStore + ViewStore + Clone,
{
    let tally = Tally::new("tally_rebuild");
    for i in 0..300u64 {
        append(&store, &format!("acct-{}", i % 7), vec![added(i, false)]).await;
    }
    let head = store.head_position().await.unwrap();
    let options = RunnerOptions {
        batch_size: 20,
        ..fast()
    };
    let runner = ProjectionRunner::new(store.clone(), tally.clone())
        .options(options.clone())
        .spawn();
    runner
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    runner.stop().await.unwrap();
    let live = stored_docs(&store, "tally_rebuild").await;
    assert_eq!(live, expected_docs(&store, &HashSet::new()).await);

    // A rebuild started (no runner moving it yet): the new generation is empty and the
    // old one keeps serving reads.
    let generation = store.start_rebuild("tally_rebuild").await.unwrap();
    let state = store.projection_state("tally_rebuild").await.unwrap();
    assert_eq!(state.rebuilding, Some((generation, 0)));
    assert_eq!(state.active_generation + 1, generation);
    assert_eq!(
        stored_docs(&store, "tally_rebuild").await,
        live,
        "the old read model stays online during the rebuild"
    );
    // Commits during the rebuild reach both generations; the runner catches the new
    // one up and swaps it in.
    let head = append(&store, "acct-new", vec![added(1_000, false)]).await;
    let runner = ProjectionRunner::new(store.clone(), tally)
        .options(options)
        .spawn();
    let until_active = |generation: u32| {
        let runner = &runner;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let state = runner.state().await.unwrap();
                if state.rebuilding.is_none() && state.active_generation == generation {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the rebuild never finished: {state:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    until_active(generation).await;
    runner
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        stored_docs(&store, "tally_rebuild").await,
        expected_docs(&store, &HashSet::new()).await
    );
    // The same through the handle, while the runner runs.
    let again = runner.rebuild().await.unwrap();
    assert_eq!(again, generation + 1);
    until_active(again).await;
    assert_eq!(
        stored_docs(&store, "tally_rebuild").await,
        expected_docs(&store, &HashSet::new()).await
    );
    runner.stop().await.unwrap();
}

/// One `#[tokio::test]` per read-side case, each on a fresh store from `$factory`: an
/// async closure returning `Option<(store, guard)>` (`None` skips the case, e.g. when a
/// server is unreachable outside CI; the guard is dropped after the case).
#[macro_export]
macro_rules! read_side_conformance {
    ($name:ident, $factory:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::__read_side_cases!($factory; inline_projection async_catch_up crash_and_resume poison_events rebuild);
        }
    };
}

/// One test per case, for [`read_side_conformance!`]. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __read_side_cases {
    ($factory:expr; $($case:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // The factory gives the store and a guard held until the case ends (a
                // temporary file's remover, a schema's dropper), or `None` to skip.
                let Some((store, guard)) = ($factory)().await else { return };
                $crate::read_side::$case(store).await;
                drop(guard);
            }
        )*
    };
}

/// Runs `case` on a store from `factory` (for callers not using the macro).
pub async fn run<S, F, Fut, C, CFut>(factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    C: FnOnce(S) -> CFut,
    CFut: Future<Output = ()>,
{
    case(factory().await).await;
}
