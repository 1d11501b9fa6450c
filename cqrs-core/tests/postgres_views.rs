//! The read side of the PostgreSQL adapter: inline projections in the append's
//! transaction, async batches (atomicity, stale checkpoints, dead letters), rebuilds,
//! tenants, the writer role, the commit notifier.
//!
//! Server from `CQRS_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! skipped with a printed reason when the server is unreachable, failing instead when
//! `CI=true`. Every test works in a schema of its own and drops it.
#![cfg(feature = "postgres")]

/// Only the PostgreSQL part of `tests/common` (`tests/common/postgres.rs`).
mod common {
    pub(crate) mod postgres;
}

use common::postgres::{kv_url, schema_name, store_or_skip, url};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cqrs_core::event::RecordedEvent;
use cqrs_core::projection::{
    BatchError, DeadLetter, DocChange, Projection, ProjectionBatch, ProjectionError,
    ProjectionState, ViewStore,
};
use cqrs_core::store::postgres::{PostgresEventStore, PostgresOptions};
use cqrs_core::store::{EventStore, ExpectedVersion};
use cqrs_core::{Metadata, NewEvent, StoreError};

async fn open_with(options: PostgresOptions) -> Option<PostgresEventStore> {
    store_or_skip(
        options
            .read_wait(Duration::from_millis(200))
            .connect()
            .await,
    )
}

async fn open(schema: &str, tenant: &str) -> Option<PostgresEventStore> {
    open_with(PostgresOptions::new(url()).schema(schema).tenant(tenant)).await
}

async fn drop_schema(store: &PostgresEventStore) {
    store.drop_schema().await.unwrap();
}

/// Runs `test` with a store of `tenant` in a fresh schema, and drops the schema even if
/// it fails.
async fn with_store<F, Fut>(tenant: &str, test: F)
where
    F: FnOnce(PostgresEventStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let options = PostgresOptions::new(url())
        .schema(schema_name("cqrs_test"))
        .tenant(tenant)
        .read_wait(Duration::from_millis(200));
    common::postgres::with_store(options, test).await;
}

/// The first `n` events of the global log. A transaction anywhere in the cluster (another
/// test's) can hold committed events back from readers for a while: wait for them.
async fn all_events(store: &PostgresEventStore, n: usize) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = store.read_all(0, n).await.unwrap();
        if events.len() == n || tokio::time::Instant::now() > deadline {
            assert_eq!(events.len(), n, "{events:?}");
            return events;
        }
    }
}

/// Appends one `Ticked` to each of the streams `acct-0` .. `acct-{n-1}` and returns
/// the `n` events as the log records them.
async fn one_tick_each(store: &PostgresEventStore, n: usize) -> Vec<RecordedEvent> {
    for k in 0..n {
        store
            .append(
                &format!("acct-{k}"),
                ExpectedVersion::NoStream,
                vec![event("Ticked")],
            )
            .await
            .unwrap();
    }
    all_events(store, n).await
}

fn event(event_type: &'static str) -> NewEvent {
    NewEvent::new(event_type, 1, &b"{}"[..], Metadata::default())
}

fn count_of(doc: Option<Bytes>) -> Option<u64> {
    let doc = doc?;
    let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    value["count"].as_u64()
}

/// `{"count": n}` per aggregate id (the stream id after the first `-`): `Ticked` counts,
/// `Closed` deletes the document, `Failed` fails, `Garbage` writes a document that is not
/// JSON.
struct Counter;

impl Projection for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(
            &*event.event_type,
            "Ticked" | "Closed" | "Failed" | "Garbage"
        )
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        let count = match current {
            Some(doc) => serde_json::from_slice::<serde_json::Value>(doc)
                .map_err(|e| ProjectionError::Handler(e.to_string()))?["count"]
                .as_u64()
                .unwrap_or(0),
            None => 0,
        };
        match &*event.event_type {
            "Failed" => Err(ProjectionError::Handler("boom".into())),
            "Closed" if current.is_some() => Ok(DocChange::Delete),
            "Closed" => Ok(DocChange::Unchanged),
            "Garbage" => Ok(DocChange::Put(Bytes::from_static(b"{not json"))),
            _ => Ok(DocChange::Put(Bytes::from(
                serde_json::json!({ "count": count + 1, "version": event.version }).to_string(),
            ))),
        }
    }
}

/// One document, `all`, counting every `Ticked` of every stream.
struct Total;

impl Projection for Total {
    fn name(&self) -> &str {
        "total"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        &*event.event_type == "Ticked"
    }

    fn key(&self, _: &RecordedEvent) -> Result<String, ProjectionError> {
        Ok("all".into())
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        _: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        let count = current
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(d).ok())
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0);
        Ok(DocChange::Put(Bytes::from(format!(
            "{{\"count\":{}}}",
            count + 1
        ))))
    }
}

fn inline() -> Vec<Arc<dyn Projection>> {
    // Deliberately not in name order: the store sorts them (its document locks are taken
    // in (projection, key) order).
    vec![Arc::new(Total), Arc::new(Counter)]
}

/// A batch of `Counter` at `generation` from `from` to the last event's position.
fn batch<'a>(generation: u32, from: u64, events: &'a [RecordedEvent]) -> ProjectionBatch<'a> {
    ProjectionBatch {
        projection: &Counter,
        generation,
        from,
        events,
        park: &[],
        resolved: &[],
        checkpoint: events.last().map_or(from, |e| e.position),
    }
}

/// How many `projections` rows the store's schema holds (inline appends write none).
async fn projection_rows(store: &PostgresEventStore) -> i64 {
    let client = store.pool().get().await.unwrap();
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".projections", store.schema()),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn view_rows(store: &PostgresEventStore, projection: &str) -> Vec<(i32, String)> {
    let client = store.pool().get().await.unwrap();
    client
        .query(
            &format!(
                "SELECT generation, key FROM \"{}\".views WHERE tenant = $1 AND projection = $2 \
                 ORDER BY generation, key",
                store.schema()
            ),
            &[&store.tenant(), &projection],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_documents_commit_with_the_events_and_roll_back_with_them() {
    with_store("", |store| async move {
        let first = vec![event("Ticked"), event("Ticked")];
        let out = store
            .append_projected(
                "acct-1",
                ExpectedVersion::NoStream,
                first.clone(),
                &inline(),
            )
            .await
            .unwrap();
        assert_eq!(out.stream_version, 2);
        // Read your own write: the documents are there as soon as the append returns.
        assert_eq!(
            count_of(store.load_doc("counter", "1").await.unwrap()),
            Some(2)
        );
        assert_eq!(
            count_of(store.load_doc("total", "all").await.unwrap()),
            Some(2)
        );
        // Inline projections keep no checkpoint: the `projections` row is not written.
        let state = store.projection_state("counter").await.unwrap();
        assert_eq!(state, ProjectionState::default());
        assert_eq!(projection_rows(&store).await, 0);

        // A projection failing on the second event: neither the events nor any
        // projection's documents are committed.
        let failing = vec![event("Ticked"), event("Failed")];
        let failed_id = failing[1].event_id;
        let err = store
            .append_projected("acct-1", ExpectedVersion::Exact(2), failing, &inline())
            .await
            .unwrap_err();
        match err {
            StoreError::Projection {
                projection,
                stream_id,
                event_id,
                source,
            } => {
                assert_eq!(projection, "counter");
                assert_eq!(stream_id, "acct-1");
                assert_eq!(event_id, failed_id);
                assert!(
                    matches!(&*source, ProjectionError::Handler(m) if m == "boom"),
                    "{source:?}"
                );
            }
            other => panic!("expected a projection failure, got {other:?}"),
        }
        assert_eq!(store.stream_version("acct-1").await.unwrap(), Some(2));
        assert_eq!(store.read_stream("acct-1", 1).await.unwrap().len(), 2);
        assert_eq!(
            count_of(store.load_doc("counter", "1").await.unwrap()),
            Some(2)
        );
        assert_eq!(
            count_of(store.load_doc("total", "all").await.unwrap()),
            Some(2)
        );
        assert_eq!(store.projection_state("counter").await.unwrap(), state);

        // A document that is not JSON is the projection's failure too, naming the event.
        let garbage = vec![event("Garbage")];
        let garbage_id = garbage[0].event_id;
        match store
            .append_projected("acct-1", ExpectedVersion::Exact(2), garbage, &inline())
            .await
            .unwrap_err()
        {
            StoreError::Projection {
                event_id, source, ..
            } => {
                assert_eq!(event_id, garbage_id);
                assert!(
                    matches!(&*source, ProjectionError::Document { message, .. }
                        if message.contains("not valid JSON")),
                    "{source:?}"
                );
            }
            other => panic!("expected a document failure, got {other:?}"),
        }

        // A re-sent batch is deduplicated and applies nothing a second time.
        let again = store
            .append_projected("acct-1", ExpectedVersion::NoStream, first, &inline())
            .await
            .unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.positions, out.positions);
        assert_eq!(
            count_of(store.load_doc("counter", "1").await.unwrap()),
            Some(2)
        );

        // A conflict is a conflict, and applies nothing.
        let err = store
            .append_projected(
                "acct-1",
                ExpectedVersion::Exact(7),
                vec![event("Ticked")],
                &inline(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Concurrency { .. }), "{err:?}");
        assert_eq!(
            count_of(store.load_doc("total", "all").await.unwrap()),
            Some(2)
        );

        // A delete, and events no projection handles.
        let out = store
            .append_projected(
                "acct-1",
                ExpectedVersion::Exact(2),
                vec![event("Closed"), event("Ignored")],
                &inline(),
            )
            .await
            .unwrap();
        assert_eq!(store.load_doc("counter", "1").await.unwrap(), None);
        assert_eq!(
            count_of(store.load_doc("total", "all").await.unwrap()),
            Some(2)
        );
        assert_eq!(out.stream_version, 4);

        // Events no projection handles: a plain append.
        store
            .append_projected(
                "acct-5",
                ExpectedVersion::NoStream,
                vec![event("Ignored")],
                &inline(),
            )
            .await
            .unwrap();
        for projection in ["counter", "total"] {
            let state = store.projection_state(projection).await.unwrap();
            assert_eq!(state, ProjectionState::default(), "{projection}");
        }
        assert_eq!(projection_rows(&store).await, 0);
        assert_eq!(store.load_doc("counter", "5").await.unwrap(), None);

        // Without projections, a plain append.
        store
            .append_projected(
                "acct-2",
                ExpectedVersion::NoStream,
                vec![event("Ticked")],
                &[],
            )
            .await
            .unwrap();
        assert_eq!(store.load_doc("counter", "2").await.unwrap(), None);

        // Bad projection lists are refused before anything is written.
        struct Named(&'static str);
        impl Projection for Named {
            fn name(&self) -> &str {
                self.0
            }
            fn handles(&self, _: &RecordedEvent) -> bool {
                false
            }
            fn apply(
                &self,
                _: Option<&[u8]>,
                _: &RecordedEvent,
            ) -> Result<DocChange, ProjectionError> {
                Ok(DocChange::Unchanged)
            }
        }
        for list in [
            vec![Arc::new(Named("Bad-Name")) as Arc<dyn Projection>],
            vec![Arc::new(Named("twice")), Arc::new(Named("twice"))],
        ] {
            let err = store
                .append_projected("acct-3", ExpectedVersion::Any, vec![event("Ticked")], &list)
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("invalid projection name")
                    || err.to_string().contains("listed twice"),
                "{err}"
            );
        }
        assert_eq!(store.stream_version("acct-3").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inline_appends_never_lose_a_document_update() {
    with_store("", |store| async move {
        let mut tasks = Vec::new();
        for writer in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..5u64 {
                    store
                        .append_projected(
                            &format!("acct-{writer}"),
                            ExpectedVersion::Exact(n),
                            vec![event("Ticked")],
                            &inline(),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        // Writers racing on one stream: the losers' transactions (events and documents)
        // roll back and run again.
        for _ in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    store
                        .append_projected(
                            "acct-shared",
                            ExpectedVersion::Any,
                            vec![event("Ticked")],
                            &inline(),
                        )
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.stream_version("acct-shared").await.unwrap(), Some(20));
        assert_eq!(
            count_of(store.load_doc("counter", "shared").await.unwrap()),
            Some(20)
        );
        assert_eq!(
            count_of(store.load_doc("total", "all").await.unwrap()),
            Some(50)
        );
        let docs = store.load_docs("counter").await.unwrap();
        assert_eq!(
            docs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["0", "1", "2", "3", "4", "5", "shared"]
        );
        assert!(
            docs[..6]
                .iter()
                .all(|(_, d)| count_of(Some(d.clone())) == Some(5))
        );
        assert_eq!(all_events(&store, 50).await.len(), 50);
        assert_eq!(projection_rows(&store).await, 0);
    })
    .await;
}

/// `{"count": n}` under the single key `all`, whatever the stream: `Ticked` counts,
/// `Closed` deletes the document.
struct Shared;

impl Projection for Shared {
    fn name(&self) -> &str {
        "shared"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(&*event.event_type, "Ticked" | "Closed")
    }

    fn key(&self, _: &RecordedEvent) -> Result<String, ProjectionError> {
        Ok("all".into())
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        if &*event.event_type == "Closed" {
            return Ok(DocChange::Delete);
        }
        let count = current
            .and_then(|d| serde_json::from_slice::<serde_json::Value>(d).ok())
            .and_then(|v| v["count"].as_u64())
            .unwrap_or(0);
        Ok(DocChange::Put(Bytes::from(format!(
            "{{\"count\":{}}}",
            count + 1
        ))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_appends_to_different_streams_never_wait_on_each_other() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    let Some(locker) = open(&schema, "").await else {
        return;
    };
    let checks = tokio::spawn({
        let (store, locker) = (store.clone(), locker.clone());
        async move {
            let counter: Vec<Arc<dyn Projection>> = vec![Arc::new(Counter)];
            store
                .append_projected(
                    "acct-held",
                    ExpectedVersion::NoStream,
                    vec![event("Ticked")],
                    &counter,
                )
                .await
                .unwrap();
            // Another session holds the projection's row (as an async batch or a rebuild
            // would) and the document of another stream, until every append is done:
            // inline appends take neither lock.
            let q = locker.schema().to_owned();
            let mut holder = locker.pool().get().await.unwrap();
            holder
                .execute(
                    &format!(
                        "INSERT INTO \"{q}\".projections (tenant, projection) \
                         VALUES ('', 'counter')"
                    ),
                    &[],
                )
                .await
                .unwrap();
            let tx = holder.transaction().await.unwrap();
            let locked = tx
                .execute(
                    &format!(
                        "SELECT 1 FROM \"{q}\".projections WHERE projection = 'counter' \
                         FOR UPDATE"
                    ),
                    &[],
                )
                .await
                .unwrap()
                + tx.execute(
                    &format!(
                        "SELECT 1 FROM \"{q}\".views WHERE projection = 'counter' \
                         AND key = 'held' FOR UPDATE"
                    ),
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(locked, 2);

            let (tasks_n, appends) = (16u64, 50u64);
            let started = std::time::Instant::now();
            let mut tasks = Vec::new();
            for writer in 0..tasks_n {
                let (store, counter) = (store.clone(), counter.clone());
                tasks.push(tokio::spawn(async move {
                    for n in 0..appends {
                        // Half the writers do not know the version: the keys are planned
                        // with a placeholder, the documents built with the real one.
                        let expected = if writer % 2 == 0 {
                            ExpectedVersion::Exact(n)
                        } else {
                            ExpectedVersion::Any
                        };
                        store
                            .append_projected(
                                &format!("acct-w{writer}"),
                                expected,
                                vec![event("Ticked")],
                                &counter,
                            )
                            .await
                            .unwrap();
                    }
                }));
            }
            let all = async {
                for task in tasks {
                    task.await.unwrap();
                }
            };
            tokio::time::timeout(Duration::from_secs(60), all)
                .await
                .expect("inline appends waited on a lock they should not take");
            let elapsed = started.elapsed();
            eprintln!(
                "{} inline appends on {tasks_n} streams in {elapsed:?} ({:.0}/s)",
                tasks_n * appends,
                (tasks_n * appends) as f64 / elapsed.as_secs_f64()
            );
            tx.rollback().await.unwrap();

            for writer in 0..tasks_n {
                let doc = store
                    .load_doc("counter", &format!("w{writer}"))
                    .await
                    .unwrap()
                    .unwrap();
                let value: serde_json::Value = serde_json::from_slice(&doc).unwrap();
                assert_eq!(value["count"], appends, "w{writer}");
                assert_eq!(value["version"], appends, "w{writer}");
            }
            assert_eq!(
                count_of(store.load_doc("counter", "held").await.unwrap()),
                Some(1)
            );
            // The row the holder created is untouched: no checkpoint moved.
            assert_eq!(
                store.projection_state("counter").await.unwrap(),
                ProjectionState::default()
            );
        }
    })
    .await;
    drop_schema(&locker).await;
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_shared_by_streams_never_loses_an_update() {
    let schema = schema_name("cqrs_test");
    let Some(store) = open(&schema, "").await else {
        return;
    };
    let Some(locker) = open(&schema, "").await else {
        return;
    };
    let checks = tokio::spawn({
        let (store, locker) = (store.clone(), locker.clone());
        async move {
            let shared: Vec<Arc<dyn Projection>> = vec![Arc::new(Shared), Arc::new(Counter)];
            // Another session creates the document and has not committed: the append
            // finds it absent, inserts it, waits for the other session, fails on the key
            // when it commits, and runs again, finding (and locking) the document.
            let mut holder = locker.pool().get().await.unwrap();
            let tx = holder.transaction().await.unwrap();
            tx.execute(
                &format!(
                    "INSERT INTO \"{}\".views (tenant, projection, generation, key, doc) \
                     VALUES ('', 'shared', 0, 'all', '{{\"count\": 100}}')",
                    locker.schema()
                ),
                &[],
            )
            .await
            .unwrap();
            let append = tokio::spawn({
                let (store, shared) = (store.clone(), shared.clone());
                async move {
                    store
                        .append_projected(
                            "acct-a",
                            ExpectedVersion::NoStream,
                            vec![event("Ticked")],
                            &shared,
                        )
                        .await
                }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!append.is_finished(), "the insert did not wait");
            tx.commit().await.unwrap();
            let out = append.await.unwrap().unwrap();
            assert_eq!(out.stream_version, 1);
            assert_eq!(
                count_of(store.load_doc("shared", "all").await.unwrap()),
                Some(101)
            );
            assert_eq!(
                count_of(store.load_doc("counter", "a").await.unwrap()),
                Some(1)
            );

            // Writers of different streams racing on the one document: updates (through
            // the document's lock), then, once it is deleted, racing creations.
            let race = |rounds: u64| {
                let mut tasks = Vec::new();
                for writer in 0..8 {
                    let (store, shared) = (store.clone(), shared.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..rounds {
                            store
                                .append_projected(
                                    &format!("acct-r{writer}"),
                                    ExpectedVersion::Any,
                                    vec![event("Ticked")],
                                    &shared,
                                )
                                .await
                                .unwrap();
                        }
                    }));
                }
                async move {
                    for task in tasks {
                        task.await.unwrap();
                    }
                }
            };
            race(25).await;
            assert_eq!(
                count_of(store.load_doc("shared", "all").await.unwrap()),
                Some(301)
            );
            for round in 0..5 {
                store
                    .append_projected(
                        "acct-a",
                        ExpectedVersion::Any,
                        vec![event("Closed")],
                        &shared,
                    )
                    .await
                    .unwrap();
                assert_eq!(store.load_doc("shared", "all").await.unwrap(), None);
                race(2).await;
                assert_eq!(
                    count_of(store.load_doc("shared", "all").await.unwrap()),
                    Some(16),
                    "round {round}"
                );
            }
            for writer in 0..8 {
                assert_eq!(
                    count_of(
                        store
                            .load_doc("counter", &format!("r{writer}"))
                            .await
                            .unwrap()
                    ),
                    Some(35)
                );
            }
        }
    })
    .await;
    drop_schema(&locker).await;
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_documents_and_checkpoint_together_or_nothing() {
    with_store("", |store| async move {
        for (stream, event_type) in [
            ("acct-1", "Ticked"),
            ("acct-2", "Ticked"),
            ("acct-1", "Ticked"),
            ("acct-1", "Ignored"),
            ("acct-4", "Ticked"),
            ("acct-3", "Failed"),
        ] {
            store
                .append(stream, ExpectedVersion::Any, vec![event(event_type)])
                .await
                .unwrap();
        }
        let events = all_events(&store, 6).await;

        store.commit_batch(batch(0, 0, &events[..4])).await.unwrap();
        assert_eq!(
            count_of(store.load_doc("counter", "1").await.unwrap()),
            Some(2)
        );
        assert_eq!(
            count_of(store.load_doc("counter", "2").await.unwrap()),
            Some(1)
        );
        let state = store.projection_state("counter").await.unwrap();
        assert_eq!(state.position, events[3].position);

        // The projection fails on the second event of the batch: the first event's
        // document is not written, the checkpoint does not move.
        let err = store
            .commit_batch(batch(0, events[3].position, &events[4..]))
            .await
            .unwrap_err();
        match err {
            BatchError::Apply {
                index,
                error: ProjectionError::Handler(message),
            } => {
                assert_eq!(index, 1);
                assert_eq!(message, "boom");
            }
            other => panic!("expected an apply failure, got {other:?}"),
        }
        assert_eq!(store.load_doc("counter", "4").await.unwrap(), None);
        assert_eq!(store.projection_state("counter").await.unwrap(), state);

        // The same events with the failing one parked instead.
        let failing = &events[5];
        let letter = DeadLetter {
            projection: "counter".into(),
            generation: 0,
            position: failing.position,
            event_id: failing.event_id,
            stream_id: failing.stream_id.to_string(),
            version: failing.version,
            reason: "boom\0with a NUL".into(),
            attempts: 3,
            blocked_by: None,
        };
        store
            .commit_batch(ProjectionBatch {
                park: std::slice::from_ref(&letter),
                checkpoint: failing.position,
                ..batch(0, events[3].position, &events[4..5])
            })
            .await
            .unwrap();
        assert_eq!(
            count_of(store.load_doc("counter", "4").await.unwrap()),
            Some(1)
        );
        assert_eq!(
            store.projection_state("counter").await.unwrap().position,
            failing.position
        );
        let letters = store.dead_letters("counter").await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].reason, "boom\u{fffd}with a NUL");
        assert_eq!(
            DeadLetter {
                reason: letter.reason.clone(),
                ..letters[0].clone()
            },
            letter
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_batch_commits_nothing() {
    with_store("", |store| async move {
        let events = one_tick_each(&store, 3).await;
        // Not the stored checkpoint (0).
        let err = store.commit_batch(batch(0, 5, &events)).await.unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::Stale {
                    stored: Some(0),
                    from: 5
                }
            ),
            "{err:?}"
        );
        // A generation that is neither active nor rebuilding.
        let err = store.commit_batch(batch(7, 0, &events)).await.unwrap_err();
        assert!(
            matches!(
                err,
                BatchError::Stale {
                    stored: None,
                    from: 0
                }
            ),
            "{err:?}"
        );
        assert!(store.load_docs("counter").await.unwrap().is_empty());

        // Two runners racing from the same checkpoint: one wins, the other is stale.
        let (a, b) = tokio::join!(
            store.commit_batch(batch(0, 0, &events)),
            store.commit_batch(batch(0, 0, &events)),
        );
        let stale = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Err(BatchError::Stale { .. })))
            .count();
        assert_eq!(
            (a.is_ok() as usize + b.is_ok() as usize, stale),
            (1, 1),
            "{a:?} {b:?}"
        );
        let docs = store.load_docs("counter").await.unwrap();
        assert_eq!(docs.len(), 3);
        assert!(
            docs.iter()
                .all(|(_, d)| count_of(Some(d.clone())) == Some(1))
        );
        assert_eq!(
            store.projection_state("counter").await.unwrap().position,
            events[2].position
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_are_listed_in_position_order_and_resolved() {
    with_store("", |store| async move {
        for event_type in ["Failed", "Ticked", "Ticked"] {
            store
                .append("acct-1", ExpectedVersion::Any, vec![event(event_type)])
                .await
                .unwrap();
        }
        let events = all_events(&store, 3).await;
        let letter = |e: &RecordedEvent, attempts, blocked_by: Option<u64>| DeadLetter {
            projection: "counter".into(),
            generation: 0,
            position: e.position,
            event_id: e.event_id,
            stream_id: e.stream_id.to_string(),
            version: e.version,
            reason: match blocked_by {
                Some(p) => format!("waiting behind position {p}"),
                None => "boom".into(),
            },
            attempts,
            blocked_by,
        };
        // The failing event and the one behind it (same stream) are parked; given in
        // reverse order, listed in position order.
        let parked = [
            letter(&events[1], 0, Some(events[0].position)),
            letter(&events[0], 5, None),
        ];
        store
            .commit_batch(ProjectionBatch {
                park: &parked,
                checkpoint: events[1].position,
                ..batch(0, 0, &[])
            })
            .await
            .unwrap();
        let listed = store.dead_letters("counter").await.unwrap();
        assert_eq!(listed, [parked[1].clone(), parked[0].clone()]);

        // Re-parking updates; resolving removes (the skipped failing event), and applying
        // the waiting one resolves it too.
        let retried = letter(&events[0], 6, None);
        store
            .commit_batch(ProjectionBatch {
                park: std::slice::from_ref(&retried),
                ..batch(0, events[1].position, &[])
            })
            .await
            .unwrap();
        assert_eq!(store.dead_letters("counter").await.unwrap()[0].attempts, 6);
        let resolved = [events[0].event_id, events[1].event_id];
        store
            .commit_batch(ProjectionBatch {
                resolved: &resolved,
                ..batch(0, events[1].position, &events[1..])
            })
            .await
            .unwrap();
        assert!(store.dead_letters("counter").await.unwrap().is_empty());
        assert_eq!(
            count_of(store.load_doc("counter", "1").await.unwrap()),
            Some(2)
        );
        assert_eq!(
            store.projection_state("counter").await.unwrap().position,
            events[2].position
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_keeps_the_old_generation_readable_until_it_is_activated() {
    with_store("", |store| async move {
        let events = one_tick_each(&store, 3).await;
        store.commit_batch(batch(0, 0, &events)).await.unwrap();
        let failing = &events[2];
        store
            .commit_batch(ProjectionBatch {
                park: &[DeadLetter {
                    projection: "counter".into(),
                    generation: 0,
                    position: failing.position,
                    event_id: failing.event_id,
                    stream_id: failing.stream_id.to_string(),
                    version: 1,
                    reason: "old".into(),
                    attempts: 1,
                    blocked_by: None,
                }],
                ..batch(0, events[2].position, &[])
            })
            .await
            .unwrap();

        let first = store.start_rebuild("counter").await.unwrap();
        assert_eq!(first, 1);
        // Restarting a rebuild drops what the previous one wrote.
        store.commit_batch(batch(1, 0, &events[..1])).await.unwrap();
        let generation = store.start_rebuild("counter").await.unwrap();
        assert_eq!(generation, 2);
        assert!(!view_rows(&store, "counter").await.iter().any(|r| r.0 == 1));
        assert_eq!(
            store.projection_state("counter").await.unwrap(),
            ProjectionState {
                active_generation: 0,
                position: events[2].position,
                rebuilding: Some((2, 0)),
            }
        );

        // The rebuild writes generation 2 (two of the three streams so far, in two
        // batches); reads still come from generation 0.
        store
            .commit_batch(batch(generation, 0, &events[..1]))
            .await
            .unwrap();
        store
            .commit_batch(batch(generation, events[0].position, &events[1..2]))
            .await
            .unwrap();
        assert_eq!(store.load_docs("counter").await.unwrap().len(), 3);
        assert_eq!(
            count_of(store.load_doc("counter", "0").await.unwrap()),
            Some(1)
        );
        // The active generation's checkpoint is separate from the rebuild's.
        let err = store.commit_batch(batch(0, 0, &events)).await.unwrap_err();
        assert!(
            matches!(err, BatchError::Stale { stored: Some(p), .. } if p == events[2].position)
        );

        // Only the generation being rebuilt can be activated.
        let err = store.activate("counter", 5).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains('5') && text.contains('2'), "{text}");

        store.activate("counter", generation).await.unwrap();
        assert_eq!(
            store.projection_state("counter").await.unwrap(),
            ProjectionState {
                active_generation: 2,
                position: events[1].position,
                rebuilding: None,
            }
        );
        let docs = store.load_docs("counter").await.unwrap();
        assert_eq!(
            docs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["0", "1"]
        );
        assert_eq!(
            count_of(store.load_doc("counter", "0").await.unwrap()),
            Some(1)
        );
        assert_eq!(store.load_doc("counter", "2").await.unwrap(), None);
        // The old generation's documents and dead letters are gone.
        assert!(view_rows(&store, "counter").await.iter().all(|r| r.0 == 2));
        assert!(store.dead_letters("counter").await.unwrap().is_empty());
        let err = store.activate("counter", generation).await.unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
        // The next rebuild goes above every generation used so far.
        assert_eq!(store.start_rebuild("counter").await.unwrap(), 3);
        // A projection that never ran can be rebuilt too.
        assert_eq!(store.start_rebuild("fresh").await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_do_not_see_each_others_views() {
    let schema = schema_name("cqrs_test");
    let Some(a) = open(&schema, "a").await else {
        return;
    };
    let b = open(&schema, "b").await.unwrap();
    let checks = tokio::spawn({
        let (a, b) = (a.clone(), b.clone());
        async move {
            a.append_projected(
                "acct-1",
                ExpectedVersion::NoStream,
                vec![event("Ticked")],
                &inline(),
            )
            .await
            .unwrap();
            assert_eq!(count_of(a.load_doc("counter", "1").await.unwrap()), Some(1));
            assert_eq!(b.load_doc("counter", "1").await.unwrap(), None);
            assert!(b.load_docs("counter").await.unwrap().is_empty());
            assert_eq!(
                b.projection_state("counter").await.unwrap(),
                ProjectionState::default()
            );

            // Same stream id, key and projection in tenant b: its own documents.
            b.append_projected(
                "acct-1",
                ExpectedVersion::NoStream,
                vec![event("Ticked"), event("Ticked")],
                &inline(),
            )
            .await
            .unwrap();
            assert_eq!(count_of(b.load_doc("counter", "1").await.unwrap()), Some(2));
            assert_eq!(count_of(a.load_doc("counter", "1").await.unwrap()), Some(1));

            // Batches, dead letters and rebuilds stay in their tenant too.
            let events = all_events(&b, 2).await;
            assert_eq!(b.start_rebuild("counter").await.unwrap(), 1);
            b.commit_batch(batch(1, 0, &events)).await.unwrap();
            b.activate("counter", 1).await.unwrap();
            assert_eq!(
                a.projection_state("counter")
                    .await
                    .unwrap()
                    .active_generation,
                0
            );
            assert_eq!(count_of(a.load_doc("counter", "1").await.unwrap()), Some(1));
            assert_eq!(count_of(b.load_doc("counter", "1").await.unwrap()), Some(2));
        }
    })
    .await;
    drop_schema(&a).await;
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_role_runs_inline_projections_batches_and_rebuilds() {
    let schema = schema_name("cqrs_test");
    let Some(owner) = open(&schema, "").await else {
        return;
    };
    let role = format!("cqrs_writer_{}", uuid::Uuid::now_v7().simple());
    let password = uuid::Uuid::now_v7().simple().to_string();
    owner
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"
        ))
        .await
        .unwrap();
    let checks = tokio::spawn({
        let (owner, schema, role) = (owner.clone(), schema.clone(), role.clone());
        async move {
            owner.grant_writer(&role).await.unwrap();
            let writer = PostgresOptions::new(kv_url(&role, Some(&password)))
                .schema(&schema)
                .read_wait(Duration::from_millis(200))
                .connect()
                .await
                .unwrap();
            writer
                .append_projected(
                    "acct-1",
                    ExpectedVersion::NoStream,
                    vec![event("Ticked")],
                    &inline(),
                )
                .await
                .unwrap();
            assert_eq!(
                count_of(writer.load_doc("counter", "1").await.unwrap()),
                Some(1)
            );
            writer
                .append("acct-2", ExpectedVersion::NoStream, vec![event("Failed")])
                .await
                .unwrap();
            let events = all_events(&writer, 2).await;
            let generation = writer.start_rebuild("counter").await.unwrap();
            let failing = &events[1];
            writer
                .commit_batch(ProjectionBatch {
                    park: &[DeadLetter {
                        projection: "counter".into(),
                        generation,
                        position: failing.position,
                        event_id: failing.event_id,
                        stream_id: failing.stream_id.to_string(),
                        version: failing.version,
                        reason: "boom".into(),
                        attempts: 1,
                        blocked_by: None,
                    }],
                    checkpoint: failing.position,
                    ..batch(generation, 0, &events[..1])
                })
                .await
                .unwrap();
            assert_eq!(writer.dead_letters("counter").await.unwrap().len(), 1);
            writer.activate("counter", generation).await.unwrap();
            assert_eq!(
                count_of(writer.load_doc("counter", "1").await.unwrap()),
                Some(1)
            );
            assert_eq!(
                writer.projection_state("counter").await.unwrap().position,
                events[1].position
            );
        }
    })
    .await;
    drop_schema(&owner).await;
    owner
        .pool()
        .get()
        .await
        .unwrap()
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
        .await
        .unwrap();
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_notifier_reports_the_highest_position_committed() {
    with_store("", |store| async move {
        let mut rx = store
            .commit_notifier()
            .expect("the postgres store notifies");
        assert_eq!(*rx.borrow_and_update(), 0);
        let out = store
            .append("acct-1", ExpectedVersion::NoStream, vec![event("Ticked")])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*rx.borrow_and_update(), out.positions[0]);

        // A clone shares the notifier; inline appends notify too.
        let clone = store.clone();
        let out = clone
            .append_projected(
                "acct-1",
                ExpectedVersion::Exact(1),
                vec![event("Ticked"), event("Ticked")],
                &inline(),
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*rx.borrow_and_update(), out.positions[1]);

        // Nothing committed, nothing sent.
        let _ = store
            .append_projected(
                "acct-1",
                ExpectedVersion::Exact(3),
                vec![event("Failed")],
                &inline(),
            )
            .await
            .unwrap_err();
        assert!(!rx.has_changed().unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_inline_append_leaves_no_transaction_on_the_pooled_connection() {
    let schema = schema_name("cqrs_test");
    // One connection: whatever the cancelled append left on it, the next call meets.
    let Some(store) = open_with(PostgresOptions::new(url()).schema(&schema).pool_size(1)).await
    else {
        return;
    };
    let Some(locker) = open(&schema, "").await else {
        return;
    };
    let checks = tokio::spawn({
        let (store, locker) = (store.clone(), locker.clone());
        async move {
            store
                .append_projected(
                    "acct-1",
                    ExpectedVersion::NoStream,
                    vec![event("Ticked")],
                    &inline(),
                )
                .await
                .unwrap();
            // Another session holds the document: the inline append blocks after its
            // append, inside its transaction, and is cancelled there.
            let mut holder = locker.pool().get().await.unwrap();
            let tx = holder.transaction().await.unwrap();
            tx.execute(
                &format!(
                    "SELECT 1 FROM \"{}\".views WHERE projection = 'counter' AND key = '1' \
                     FOR UPDATE",
                    locker.schema()
                ),
                &[],
            )
            .await
            .unwrap();
            let cancelled = tokio::time::timeout(
                Duration::from_millis(300),
                store.append_projected(
                    "acct-1",
                    ExpectedVersion::Exact(1),
                    vec![event("Ticked")],
                    &inline(),
                ),
            )
            .await;
            assert!(
                cancelled.is_err(),
                "the append was not blocked: {cancelled:?}"
            );
            tx.rollback().await.unwrap();

            // The same connection, outside any transaction: a plain append works (inside
            // a leftover transaction it would fail with CQ001), and the cancelled batch is
            // not stored.
            let out = store
                .append("acct-2", ExpectedVersion::NoStream, vec![event("Ticked")])
                .await
                .unwrap();
            assert_eq!(out.stream_version, 1);
            assert_eq!(store.stream_version("acct-1").await.unwrap(), Some(1));
            assert_eq!(
                count_of(store.load_doc("counter", "1").await.unwrap()),
                Some(1)
            );
            // Outside a transaction block, a simple query's statement starts its
            // transaction: both clocks agree.
            let client = store.pool().get().await.unwrap();
            let rows = client
                .simple_query("SELECT now() = statement_timestamp()")
                .await
                .unwrap();
            let own_transaction = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(|v| v == "t"),
                _ => None,
            });
            assert_eq!(own_transaction, Some(true));
        }
    })
    .await;
    drop_schema(&locker).await;
    if let Err(e) = checks {
        std::panic::resume_unwind(e.into_panic());
    }
}
