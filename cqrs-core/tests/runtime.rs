//! The command runtime as a user relies on it.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::*;
use cqrs_core::prelude::*;
use cqrs_core::runtime::{CommandRequest, Middleware, Next};
use cqrs_core::store::{ActualVersion, StoreError};
use cqrs_core::{DecodeReason, ExpectedVersion};
use uuid::Uuid;

#[tokio::test]
async fn a_hot_aggregate_is_not_replayed_from_the_store() {
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone()).build();
    for _ in 0..100 {
        cqrs.execute("t", add(1)).await.unwrap();
    }
    assert_eq!(spy.reads(), 1, "only the first command loads the stream");
    assert_eq!(spy.appends.load(Ordering::SeqCst), 100);
    let loaded = cqrs.load("t").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (100, 100));
}

#[tokio::test]
async fn without_a_cache_every_command_replays_its_stream() {
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone())
        .cache_capacity(0)
        .build();
    for _ in 0..10 {
        cqrs.execute("t", add(1)).await.unwrap();
    }
    assert_eq!(spy.reads(), 10);
    assert_eq!(cqrs.load("t").await.unwrap().state.total, 10);
}

#[tokio::test]
async fn committed_events_carry_ids_versions_positions_and_metadata() {
    let store = InMemoryEventStore::new();
    let cqrs = Cqrs::<Tally>::builder(store.clone()).build();
    cqrs.execute("other", add(1)).await.unwrap();
    let correlation = Uuid::now_v7();
    let meta = Metadata::default()
        .with_correlation_id(correlation)
        .with_actor("ann");
    let done = cqrs
        .execute_with("t", TallyCommand::AddTwice { n: 5 }, meta.clone())
        .await
        .unwrap();
    assert_eq!(&*done.stream_id, "Tally-t");
    assert_eq!(done.stream_version, 2);
    let versions: Vec<_> = done
        .events
        .iter()
        .map(|e| (e.version, e.position))
        .collect();
    assert_eq!(versions, [(1, 2), (2, 3)]);
    assert!(
        done.events
            .iter()
            .all(|e| e.metadata == meta && e.event_type == "Added")
    );
    assert_ne!(done.events[0].event_id, done.events[1].event_id);
    assert_eq!(
        done.events[0].event_id.get_version_num(),
        7,
        "event ids are UUID v7"
    );

    let stored = store.read_stream("Tally-t", 1).await.unwrap();
    assert_eq!(stored.len(), 2);
    for (s, c) in stored.iter().zip(&done.events) {
        assert_eq!(
            (s.event_id, s.version, s.position),
            (c.event_id, c.version, c.position)
        );
        assert_eq!(s.metadata.correlation_id, Some(correlation));
        assert_eq!(
            s.decode::<TallyEvent, _>(&JsonCodec).unwrap(),
            std::slice::from_ref(&c.event)
        );
    }
}

#[tokio::test]
async fn a_rejection_or_an_empty_decision_writes_nothing() {
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone()).build();
    let err = cqrs.execute("t", add(0)).await.unwrap_err();
    assert_eq!(err.rejection(), Some(&TallyError::Zero));
    assert_eq!(err.to_string(), "command rejected: adding zero is refused");
    let none = cqrs.execute("t", TallyCommand::Nothing).await.unwrap();
    assert!(none.events.is_empty());
    assert_eq!(none.stream_version, 0);
    assert_eq!(spy.appends.load(Ordering::SeqCst), 0);
    assert_eq!(spy.inner.head_position().await.unwrap(), 0);
}

#[tokio::test]
async fn a_conflict_with_another_writer_reloads_and_retries() {
    let store = InMemoryEventStore::new();
    let a = Cqrs::<Tally>::builder(store.clone()).build();
    let b = Cqrs::<Tally>::builder(store.clone()).build();
    a.execute("t", add(1)).await.unwrap();
    b.execute("t", add(10)).await.unwrap(); // b caches version 2
    a.execute("t", add(100)).await.unwrap(); // a's cache is stale: conflict, reload, retry
    let done = b.execute("t", add(1000)).await.unwrap(); // b is stale too
    assert_eq!(
        done.events[0].event,
        TallyEvent::Added {
            n: 1000,
            total: 1111
        }
    );
    assert_eq!(done.stream_version, 4);
    assert_eq!(a.load("t").await.unwrap().state.total, 1111);
}

#[tokio::test]
async fn without_retries_a_conflict_names_stream_expected_and_actual() {
    let store = InMemoryEventStore::new();
    let a = Cqrs::<Tally>::builder(store.clone())
        .retry(RetryPolicy::never())
        .build();
    let b = Cqrs::<Tally>::builder(store.clone()).build();
    a.execute("t", add(1)).await.unwrap();
    b.execute("t", add(1)).await.unwrap();
    let err = a.execute("t", add(1)).await.unwrap_err();
    match &err {
        CommandError::Concurrency {
            stream_id,
            expected,
            actual,
            attempts,
        } => {
            assert_eq!(stream_id, "Tally-t");
            assert_eq!(*expected, ExpectedVersion::Exact(1));
            assert_eq!(*actual, ActualVersion(Some(2)));
            assert_eq!(*attempts, 1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.is_conflict());
    assert_eq!(
        err.to_string(),
        "concurrency conflict on stream `Tally-t`: expected version 1, found version 2 \
         (gave up after 1 attempt(s))"
    );
    // The failed command left the runtime able to go on: it reloads and succeeds.
    let done = a.execute("t", add(1)).await.unwrap();
    assert_eq!(done.stream_version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runtimes_on_one_hot_stream_lose_nothing() {
    let store = InMemoryEventStore::new();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let cqrs = Cqrs::<Tally>::builder(store.clone())
            .retry(RetryPolicy::retries(1000))
            .build();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                cqrs.execute("hot", add(1)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = store.read_stream("Tally-hot", 1).await.unwrap();
    assert_eq!(events.len(), 200);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
        let [TallyEvent::Added { total, .. }] = e.decode(&JsonCodec).unwrap()[..] else {
            panic!()
        };
        assert_eq!(
            total,
            i as u64 + 1,
            "every decision saw the state before it"
        );
    }
}

#[tokio::test]
async fn a_store_failure_is_reported_and_the_next_command_reloads() {
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone()).build();
    cqrs.execute("t", add(1)).await.unwrap();
    spy.fail_after_commit.store(true, Ordering::SeqCst);
    let err = cqrs.execute("t", add(2)).await.unwrap_err();
    assert!(
        matches!(err, CommandError::Store(StoreError::Backend(_))),
        "{err:?}"
    );
    spy.fail_after_commit.store(false, Ordering::SeqCst);
    let reads = spy.reads();
    // The ambiguous append did commit; the runtime must see it before deciding again.
    let done = cqrs.execute("t", add(4)).await.unwrap();
    assert_eq!(spy.reads(), reads + 1);
    assert_eq!(done.events[0].event, TallyEvent::Added { n: 4, total: 7 });

    spy.fail_appends.store(true, Ordering::SeqCst);
    assert!(cqrs.execute("t", add(1)).await.is_err());
    assert_eq!(
        cqrs.load("t").await.unwrap().state.total,
        7,
        "nothing partial was written"
    );
}

#[tokio::test]
async fn a_store_that_misreports_positions_gets_an_error_not_a_panic() {
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone()).build();
    spy.lose_positions.store(true, Ordering::SeqCst);
    let err = cqrs.execute("t", add(1)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("reported 0 positions for a batch of 1 events"),
        "{err}"
    );
    spy.lose_positions.store(false, Ordering::SeqCst);
    // The event did commit; the runtime reloads before deciding again.
    let done = cqrs.execute("t", add(1)).await.unwrap();
    assert_eq!(done.events[0].event, TallyEvent::Added { n: 1, total: 2 });
}

#[tokio::test]
async fn an_undecodable_stored_event_is_a_typed_error_naming_it() {
    let store = InMemoryEventStore::new();
    let cqrs = Cqrs::<Tally>::builder(store.clone()).build();
    cqrs.execute("t", add(1)).await.unwrap();
    let mut bad =
        NewEvent::encode(&TallyEvent::Pair(1, 2), &JsonCodec, Metadata::default()).unwrap();
    bad.payload = bytes::Bytes::from_static(b"{not json");
    store
        .append("Tally-u", ExpectedVersion::Any, vec![bad])
        .await
        .unwrap();
    let mut unknown =
        NewEvent::encode(&TallyEvent::Pair(1, 2), &JsonCodec, Metadata::default()).unwrap();
    unknown.event_type = "Refunded".into();
    store
        .append("Tally-v", ExpectedVersion::Any, vec![unknown])
        .await
        .unwrap();

    let err = cqrs.execute("u", add(1)).await.unwrap_err();
    let CommandError::Decode(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (e.stream_id.as_str(), e.version, e.event_type.as_str()),
        ("Tally-u", 1, "Pair")
    );
    assert!(matches!(e.reason, DecodeReason::Payload(_)));
    assert!(
        err.to_string()
            .starts_with("cannot decode event `Pair` (schema v1) at stream `Tally-u` version 1")
    );

    let err = cqrs.load("v").await.unwrap_err();
    let CommandError::Decode(e) = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(e.reason, DecodeReason::UnknownEventType { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("Refunded"));
}

#[tokio::test]
async fn routed_commands_find_their_aggregate() {
    let cqrs = Cqrs::<Tally>::builder(InMemoryEventStore::new()).build();
    let done = cqrs
        .execute_routed(TallyCommand::Add {
            tally: "r".into(),
            n: 3,
        })
        .await
        .unwrap();
    assert_eq!(&*done.stream_id, "Tally-r");
    let err = cqrs
        .execute_routed(TallyCommand::Nothing)
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Unrouted { command: "Nothing" }));
}

struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl Middleware<Tally> for Recorder {
    async fn call(
        &self,
        mut request: CommandRequest<Tally>,
        next: Next<'_, Tally>,
    ) -> CommandResult<Tally> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} before {}", self.name, request.aggregate_id));
        request.metadata = request.metadata.with(self.name, "seen");
        let result = next.run(request).await;
        self.log
            .lock()
            .unwrap()
            .push(format!("{} after ok={}", self.name, result.is_ok()));
        result
    }
}

struct DenyZero;

#[async_trait::async_trait]
impl Middleware<Tally> for DenyZero {
    async fn call(
        &self,
        request: CommandRequest<Tally>,
        next: Next<'_, Tally>,
    ) -> CommandResult<Tally> {
        if let TallyCommand::Add { n: 0, .. } = request.command {
            return Err(CommandError::Refused("zero is not allowed here".into()));
        }
        next.run(request).await
    }
}

#[tokio::test]
async fn middleware_runs_around_every_command_in_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let spy = Spy::default();
    let cqrs = Cqrs::<Tally>::builder(spy.clone())
        .middleware(Recorder {
            name: "outer",
            log: log.clone(),
        })
        .middleware(Recorder {
            name: "inner",
            log: log.clone(),
        })
        .middleware(DenyZero)
        .build();
    let done = cqrs.execute("t", add(1)).await.unwrap();
    assert_eq!(done.events[0].metadata.custom["outer"], "seen");
    assert_eq!(done.events[0].metadata.custom["inner"], "seen");
    let err = cqrs.execute("t", add(0)).await.unwrap_err();
    assert!(matches!(err, CommandError::Refused(_)), "{err:?}");
    assert_eq!(
        spy.appends.load(Ordering::SeqCst),
        1,
        "a refused command reaches no store"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer before t",
            "inner before t",
            "inner after ok=true",
            "outer after ok=true",
            "outer before t",
            "inner before t",
            "inner after ok=false",
            "outer after ok=false",
        ]
    );
}
