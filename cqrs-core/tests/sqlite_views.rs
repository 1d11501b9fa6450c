//! The read side of the SQLite store: inline projections in the append's transaction,
//! async batches committed atomically with their checkpoint, dead letters, rebuilds into
//! a new generation, persistence across reopening, commit notifications.
#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cqrs_core::ExpectedVersion::{Any, NoStream};
use cqrs_core::prelude::*;
use cqrs_core::projection::{
    BatchError, DeadLetter, DocChange, Projection, ProjectionBatch, ProjectionError,
    ProjectionState, ViewStore,
};
use cqrs_core::store::StoreError;
use cqrs_core::store::sqlite::{SqliteEventStore, SqliteOptions};
use uuid::Uuid;

/// A database file under the temp dir, removed (with its WAL) when dropped.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("cqrs-views-{name}-{}.db", Uuid::now_v7()));
        Self { path }
    }

    fn open(&self) -> SqliteEventStore {
        SqliteEventStore::open(&self.path).unwrap()
    }

    /// A plain rusqlite connection to the file, behind the store's back.
    fn raw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", self.path.display()));
        }
    }
}

/// Counts the events of each aggregate as `{"count": n}`; fails on `Boom`, panics on
/// `Panic`, ignores `Ignored`, deletes the document on `Reset`.
struct Counts;

impl Projection for Counts {
    fn name(&self) -> &str {
        "counts"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        &*event.event_type != "Ignored"
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        match &*event.event_type {
            "Boom" => return Err(ProjectionError::Handler("boom".into())),
            "Panic" => panic!("the projection panicked"),
            "Reset" => return Ok(DocChange::Delete),
            _ => {}
        }
        let count = current.map_or(0, count_of);
        Ok(DocChange::Put(Bytes::from(
            serde_json::to_vec(&serde_json::json!({ "count": count + 1 })).unwrap(),
        )))
    }
}

fn count_of(doc: &[u8]) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
    value["count"].as_u64().unwrap()
}

fn counts() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(Counts)]
}

fn event(event_type: &'static str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        metadata: Metadata::default(),
        payload: Bytes::from_static(b"{}"),
    }
}

async fn count(store: &SqliteEventStore, key: &str) -> Option<u64> {
    store
        .load_doc("counts", key)
        .await
        .unwrap()
        .map(|doc| count_of(&doc))
}

/// Appends without projections and returns the recorded events, for async batches.
async fn recorded(
    store: &SqliteEventStore,
    stream: &str,
    types: &[&'static str],
) -> Vec<RecordedEvent> {
    let out = store
        .append(stream, Any, types.iter().map(|t| event(t)).collect())
        .await
        .unwrap();
    store.read_all(out.positions[0], types.len()).await.unwrap()
}

fn batch<'a>(
    generation: u32,
    from: u64,
    events: &'a [RecordedEvent],
    park: &'a [DeadLetter],
    resolved: &'a [Uuid],
    checkpoint: u64,
) -> ProjectionBatch<'a> {
    ProjectionBatch {
        projection: &Counts,
        generation,
        from,
        events,
        park,
        resolved,
        checkpoint,
    }
}

fn dead_letter(event: &RecordedEvent, generation: u32, blocked_by: Option<u64>) -> DeadLetter {
    DeadLetter {
        projection: "counts".into(),
        generation,
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id.to_string(),
        version: event.version,
        reason: "boom".into(),
        attempts: 3,
        blocked_by,
    }
}

#[tokio::test]
async fn an_inline_projection_is_readable_right_after_the_append() {
    let db = TempDb::new("inline");
    let store = db.open();
    let first = store
        .append_projected("acct-1", NoStream, vec![event("Opened")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(1));
    let second = vec![event("Deposited"), event("Ignored"), event("Deposited")];
    let out = store
        .append_projected("acct-1", Any, second.clone(), &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(3));
    assert_eq!(
        store.projection_state("counts").await.unwrap(),
        ProjectionState {
            active_generation: 0,
            // Inline projections keep no checkpoint.
            position: 0,
            rebuilding: None,
        }
    );

    // A re-send is deduplicated and applies nothing twice.
    let again = store
        .append_projected("acct-1", Any, second, &counts())
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(count(&store, "1").await, Some(3));

    // A deletion removes the document; no projections is a plain append.
    store
        .append_projected("acct-1", Any, vec![event("Reset")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, None);
    store
        .append_projected("acct-2", NoStream, vec![event("Opened")], &[])
        .await
        .unwrap();
    assert_eq!(count(&store, "2").await, None);
    assert!(first.positions[0] < out.positions[0]);
}

#[tokio::test]
async fn a_failing_inline_projection_commits_neither_events_nor_documents() {
    let db = TempDb::new("inline-fail");
    let store = db.open();
    store
        .append_projected("acct-1", NoStream, vec![event("Opened")], &counts())
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    let boom = event("Boom");
    let err = store
        .append_projected(
            "acct-1",
            Any,
            vec![event("Deposited"), boom.clone()],
            &counts(),
        )
        .await
        .unwrap_err();
    match &err {
        StoreError::Projection {
            projection,
            stream_id,
            event_id,
            source,
        } => {
            let ProjectionError::Handler(message) = &**source else {
                panic!("expected a handler error, got {source:?}");
            };
            assert_eq!(
                (
                    projection.as_str(),
                    stream_id.as_str(),
                    *event_id,
                    message.as_str()
                ),
                ("counts", "acct-1", boom.event_id, "boom")
            );
        }
        other => panic!("expected a projection error, got {other:?}"),
    }
    // Neither the events nor the first event's document change were committed.
    assert_eq!(store.stream_version("acct-1").await.unwrap(), Some(1));
    assert_eq!(store.head_position().await.unwrap(), head);
    assert_eq!(count(&store, "1").await, Some(1));

    // A panic is caught on the writer thread, which keeps serving.
    let err = store
        .append_projected("acct-1", Any, vec![event("Panic")], &counts())
        .await
        .unwrap_err();
    match &err {
        StoreError::Projection { source, .. } => match &**source {
            ProjectionError::Panicked(message) => {
                assert_eq!(message, "the projection panicked")
            }
            other => panic!("expected a caught panic, got {other:?}"),
        },
        other => panic!("expected a projection error, got {other:?}"),
    }
    store
        .append_projected("acct-1", Any, vec![event("Deposited")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(2));
}

#[tokio::test]
async fn a_failing_append_does_not_disturb_the_others_of_its_group() {
    let db = TempDb::new("inline-group");
    let store = db.open();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let kind = if i % 4 == 0 { "Boom" } else { "Opened" };
            store
                .append_projected(&format!("acct-{i}"), NoStream, vec![event(kind)], &counts())
                .await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        let key = i.to_string();
        if i % 4 == 0 {
            assert!(
                matches!(result, Err(StoreError::Projection { .. })),
                "{result:?}"
            );
            assert_eq!(count(&store, &key).await, None);
            let stream = format!("acct-{i}");
            assert_eq!(store.stream_version(&stream).await.unwrap(), None);
        } else {
            result.unwrap();
            assert_eq!(count(&store, &key).await, Some(1));
        }
    }
}

#[tokio::test]
async fn a_batch_that_fails_commits_nothing_and_names_the_event() {
    let db = TempDb::new("batch-fail");
    let store = db.open();
    let events = recorded(&store, "acct-1", &["Opened", "Deposited", "Boom"]).await;
    let last = events[2].position;
    let err = store
        .commit_batch(batch(0, 0, &events, &[], &[], last))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BatchError::Apply { index: 2, error: ProjectionError::Handler(ref m) } if m == "boom"),
        "{err:?}"
    );
    assert_eq!(count(&store, "1").await, None);
    assert_eq!(
        store.projection_state("counts").await.unwrap(),
        ProjectionState::default()
    );

    // Without the failing event, documents and checkpoint commit together.
    store
        .commit_batch(batch(0, 0, &events[..2], &[], &[], events[1].position))
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(2));
    assert_eq!(
        store.projection_state("counts").await.unwrap().position,
        events[1].position
    );
    assert_eq!(
        store.load_docs("counts").await.unwrap(),
        vec![("1".to_owned(), Bytes::from_static(br#"{"count":2}"#))]
    );
}

#[tokio::test]
async fn a_batch_from_another_checkpoint_is_stale() {
    let db = TempDb::new("stale");
    let store = db.open();
    let events = recorded(&store, "acct-1", &["Opened", "Deposited"]).await;
    let (p1, p2) = (events[0].position, events[1].position);
    store
        .commit_batch(batch(0, 0, &events[..1], &[], &[], p1))
        .await
        .unwrap();
    // A second runner that still believes the checkpoint is 0.
    let err = store
        .commit_batch(batch(0, 0, &events, &[], &[], p2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BatchError::Stale { stored: Some(s), from: 0 } if s == p1),
        "{err:?}"
    );
    assert_eq!(count(&store, "1").await, Some(1));
    // A generation that is neither active nor being rebuilt.
    let err = store
        .commit_batch(batch(7, p1, &events[1..], &[], &[], p2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BatchError::Stale { stored: None, .. }),
        "{err:?}"
    );
    store
        .commit_batch(batch(0, p1, &events[1..], &[], &[], p2))
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(2));
}

#[tokio::test]
async fn dead_letters_are_parked_updated_and_resolved() {
    let db = TempDb::new("dead");
    let store = db.open();
    let events = recorded(&store, "acct-1", &["Boom", "Deposited", "Opened"]).await;
    let failed = dead_letter(&events[0], 0, None);
    let waiting = DeadLetter {
        reason: format!("waiting behind position {}", events[0].position),
        attempts: 0,
        ..dead_letter(&events[1], 0, Some(events[0].position))
    };
    // Parked in reverse order: listed in position order.
    store
        .commit_batch(batch(
            0,
            0,
            &events[2..],
            &[waiting.clone(), failed.clone()],
            &[],
            events[2].position,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.dead_letters("counts").await.unwrap(),
        vec![failed.clone(), waiting.clone()]
    );
    assert_eq!(count(&store, "1").await, Some(1));

    // Parking again replaces the reason and the attempts.
    let retried = DeadLetter {
        reason: "still boom".into(),
        attempts: 5,
        ..failed.clone()
    };
    let p = events[2].position;
    store
        .commit_batch(batch(0, p, &[], std::slice::from_ref(&retried), &[], p))
        .await
        .unwrap();
    assert_eq!(
        store.dead_letters("counts").await.unwrap(),
        vec![retried, waiting.clone()]
    );

    // Resolving: the failed one is skipped, the waiting one applied.
    store
        .commit_batch(batch(
            0,
            p,
            &events[1..2],
            &[],
            &[failed.event_id, waiting.event_id],
            p,
        ))
        .await
        .unwrap();
    assert!(store.dead_letters("counts").await.unwrap().is_empty());
    assert_eq!(count(&store, "1").await, Some(2));

    // A dead letter naming another generation than the batch's is refused.
    let err = store
        .commit_batch(batch(
            0,
            p,
            &[],
            &[dead_letter(&events[0], 3, None)],
            &[],
            p,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BatchError::Store(StoreError::Backend(_)) if err.to_string().contains("generation 3")),
        "{err}"
    );
}

#[tokio::test]
async fn a_rebuild_serves_the_old_generation_until_it_is_activated() {
    let db = TempDb::new("rebuild");
    let store = db.open();
    store
        .append_projected(
            "acct-1",
            NoStream,
            vec![event("Opened"), event("Boom")],
            &[],
        )
        .await
        .unwrap();
    store
        .append_projected("acct-1", Any, vec![event("Deposited")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(1));
    let old_position = store.projection_state("counts").await.unwrap().position;

    let generation = store.start_rebuild("counts").await.unwrap();
    assert_eq!(generation, 1);
    assert_eq!(
        store.projection_state("counts").await.unwrap(),
        ProjectionState {
            active_generation: 0,
            position: old_position,
            rebuilding: Some((1, 0)),
        }
    );
    let events = store.read_all(1, 10).await.unwrap();
    // The rebuild parks the failing event and applies the others.
    store
        .commit_batch(batch(
            1,
            0,
            &[events[0].clone(), events[2].clone()],
            &[dead_letter(&events[1], 1, None)],
            &[],
            events[2].position,
        ))
        .await
        .unwrap();
    // Reads still come from the active generation.
    assert_eq!(count(&store, "1").await, Some(1));

    // Restarting drops the half-built generation.
    assert_eq!(store.start_rebuild("counts").await.unwrap(), 2);
    assert!(store.dead_letters("counts").await.unwrap().is_empty());
    let err = store.activate("counts", 1).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::Backend(_))
            && message.contains("generation 1")
            && message.contains("is 2"),
        "{message}"
    );
    store
        .commit_batch(batch(2, 0, &events, &[], &[], events[2].position))
        .await
        .unwrap_err();
    store
        .commit_batch(batch(
            2,
            0,
            &[events[0].clone(), events[2].clone()],
            &[dead_letter(&events[1], 2, None)],
            &[],
            events[2].position,
        ))
        .await
        .unwrap();
    store.activate("counts", 2).await.unwrap();
    assert_eq!(count(&store, "1").await, Some(2));
    assert_eq!(
        store.projection_state("counts").await.unwrap(),
        ProjectionState {
            active_generation: 2,
            position: events[2].position,
            rebuilding: None,
        }
    );
    assert_eq!(store.dead_letters("counts").await.unwrap()[0].generation, 2);
    // Only generation 2 is left in the file.
    let generations: Vec<i64> = db
        .raw()
        .prepare("SELECT DISTINCT generation FROM views WHERE projection = 'counts'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(generations, vec![2]);
    // Inline projections now write the new generation.
    store
        .append_projected("acct-1", Any, vec![event("Deposited")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(3));
    assert!(store.activate("counts", 2).await.is_err());
}

#[tokio::test]
async fn documents_and_checkpoints_survive_reopening_the_file() {
    let db = TempDb::new("reopen");
    let store = db.open();
    store
        .append_projected("acct-1", NoStream, vec![event("Opened")], &counts())
        .await
        .unwrap();
    let events = recorded(&store, "acct-2", &["Opened", "Deposited"]).await;
    let generation = store.start_rebuild("counts").await.unwrap();
    store
        .commit_batch(batch(generation, 0, &events, &[], &[], events[1].position))
        .await
        .unwrap();
    let state = store.projection_state("counts").await.unwrap();
    drop(store);

    let store = db.open();
    assert_eq!(store.projection_state("counts").await.unwrap(), state);
    assert_eq!(count(&store, "1").await, Some(1));
    store.activate("counts", generation).await.unwrap();
    assert_eq!(count(&store, "2").await, Some(2));
    assert_eq!(count(&store, "1").await, None);
}

#[tokio::test]
async fn the_commit_notifier_sends_the_head_after_each_append() {
    let db = TempDb::new("notify");
    let store = db.open();
    let mut head = store.commit_notifier().expect("SQLite notifies commits");
    assert_eq!(*head.borrow_and_update(), 0);
    let out = store
        .append(
            "acct-1",
            NoStream,
            vec![event("Opened"), event("Deposited")],
        )
        .await
        .unwrap();
    // Sent before the append was answered.
    assert!(head.has_changed().unwrap());
    assert_eq!(*head.borrow_and_update(), out.positions[1]);

    let waiter = tokio::spawn(async move {
        head.changed().await.unwrap();
        *head.borrow()
    });
    let out = store
        .append_projected("acct-1", Any, vec![event("Deposited")], &counts())
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("notified")
        .unwrap();
    assert_eq!(seen, out.positions[0]);

    // A store opened on a non-empty file starts at its head.
    drop(store);
    let store = db.open();
    assert_eq!(*store.commit_notifier().unwrap().borrow(), out.positions[0]);
}

#[tokio::test]
async fn a_version_1_file_is_migrated_and_bad_names_are_refused() {
    let db = TempDb::new("migrate");
    let store = db.open();
    store
        .append("acct-1", NoStream, vec![event("Opened")])
        .await
        .unwrap();
    drop(store);
    // Back to what a build of schema version 1 left.
    db.raw()
        .execute_batch(
            "DROP TABLE views; DROP TABLE projections; DROP TABLE dead_letters; \
             DELETE FROM cqrs_schema WHERE version = 2;",
        )
        .unwrap();
    let store = SqliteOptions::new().open(&db.path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 2);
    assert_eq!(store.stream_version("acct-1").await.unwrap(), Some(1));
    store
        .append_projected("acct-1", Any, vec![event("Deposited")], &counts())
        .await
        .unwrap();
    assert_eq!(count(&store, "1").await, Some(1));

    let err = store.load_doc("Counts", "1").await.unwrap_err();
    assert!(
        err.to_string().contains("invalid projection name `Counts`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_runners_continuing_from_one_checkpoint_exactly_one_commits() {
    let db = TempDb::new("race");
    let store = db.open();
    let events = recorded(&store, "acct-1", &["Opened", "Deposited"]).await;
    let last = events[1].position;
    for _ in 0..10 {
        // Each round in a fresh generation at checkpoint 0.
        let generation = store.start_rebuild("counts").await.unwrap();
        let (a, b) = tokio::join!(
            store.commit_batch(batch(generation, 0, &events, &[], &[], last)),
            store.commit_batch(batch(generation, 0, &events, &[], &[], last)),
        );
        let stale = [&a, &b]
            .iter()
            .filter(
                |r| matches!(r, Err(BatchError::Stale { stored: Some(s), from: 0 }) if *s == last),
            )
            .count();
        let committed = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!((committed, stale), (1, 1), "{a:?} {b:?}");
        store.activate("counts", generation).await.unwrap();
        assert_eq!(count(&store, "1").await, Some(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_that_do_not_move_the_checkpoint_never_lose_an_update() {
    // Misused checkpoints (a batch ending where it started) still never overwrite a
    // document another batch changed after it was read.
    let db = TempDb::new("lost-update");
    let store = db.open();
    let events = recorded(&store, "acct-1", &["Deposited"]).await;
    for round in 1..=10u64 {
        let (a, b) = tokio::join!(
            store.commit_batch(batch(0, 0, &events, &[], &[], 0)),
            store.commit_batch(batch(0, 0, &events, &[], &[], 0)),
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(count(&store, "1").await, Some(2 * round));
    }
}
