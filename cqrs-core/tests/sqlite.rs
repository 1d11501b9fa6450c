//! The SQLite event store: persistence, schema, pragmas, the append contract, group
//! commit, retention, snapshots, corrupt rows and the runtime on top of it.
#![cfg(feature = "sqlite")]

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cqrs_core::ExpectedVersion::{self, Any, Exact, NoStream, StreamExists};
use cqrs_core::prelude::*;
use cqrs_core::snapshot::{Snapshot, SnapshotPolicy};
use cqrs_core::store::sqlite::{Durability, SqliteEventStore, SqliteOptions};
use cqrs_core::store::{ActualVersion, RETENTION_STREAM, RetentionEvent, StoreError};

/// A database file under the temp dir, removed (with its WAL) when dropped.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("cqrs-sqlite-{name}-{}.db", uuid::Uuid::now_v7()));
        Self { path }
    }

    fn open(&self) -> SqliteEventStore {
        SqliteEventStore::open(&self.path).unwrap()
    }

    fn open_with(&self, options: SqliteOptions) -> SqliteEventStore {
        options.open(&self.path).unwrap()
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

fn event(n: u8) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "Noted".into(),
        schema_version: 1,
        metadata: Metadata::default(),
        payload: Bytes::from(vec![b'0' + n]),
    }
}

fn rich_event() -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "Rich".into(),
        schema_version: 3,
        metadata: Metadata::default()
            .with_correlation_id(uuid::Uuid::now_v7())
            .with_causation_id(uuid::Uuid::now_v7())
            .with_actor("alice")
            .with("tenant", "acme"),
        payload: Bytes::from_static(&[0, 159, 146, 150, 255]),
    }
}

fn backend_message(err: &StoreError) -> String {
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    err.to_string()
}

#[tokio::test]
async fn events_survive_reopening_the_file() {
    let db = TempDb::new("reopen");
    let rich = rich_event();
    let (first, second) = {
        let store = db.open();
        let first = store
            .append("s", NoStream, vec![event(1), rich.clone()])
            .await
            .unwrap();
        let second = store.append("t", Any, vec![event(2)]).await.unwrap();
        (first, second)
    };
    let store = db.open();
    assert_eq!(store.stream_version("s").await.unwrap(), Some(2));
    assert_eq!(store.stream_version("t").await.unwrap(), Some(1));
    assert_eq!(store.stream_version("nope").await.unwrap(), None);
    assert_eq!(store.head_position().await.unwrap(), 3);
    let s = store.read_stream("s", 1).await.unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].position, first.positions[0]);
    assert_eq!(s[1].position, first.positions[1]);
    assert_eq!(s[1].recorded_at, first.recorded_at);
    assert!(rich.same_content_as(&s[1]), "{:?} vs {:?}", rich, s[1]);
    assert_eq!((&*s[1].stream_id, s[1].version), ("s", 2));
    let all = store.read_all(1, 10).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, [1, 2, second.positions[0]]);
    // The batch re-sent after the reopen is recognised.
    let again = store.append("s", Exact(7), vec![event(1)]).await;
    assert!(matches!(again, Err(StoreError::Concurrency { .. })));
    let again = store
        .append("s", Exact(0), vec![s[0].clone_as_new(), rich])
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.positions, first.positions);
    assert_eq!(again.recorded_at, first.recorded_at);
}

/// Re-sending a recorded event as a new one.
trait CloneAsNew {
    fn clone_as_new(&self) -> NewEvent;
}

impl CloneAsNew for RecordedEvent {
    fn clone_as_new(&self) -> NewEvent {
        NewEvent {
            event_id: self.event_id,
            event_type: self.event_type.to_string().into(),
            schema_version: self.schema_version,
            metadata: self.metadata.clone(),
            payload: self.payload.clone(),
        }
    }
}

#[tokio::test]
async fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let db = TempDb::new("schema");
    let store = db.open();
    assert_eq!(store.schema_version().await.unwrap(), 2);
    store.append("s", Any, vec![event(1)]).await.unwrap();
    drop(store);
    {
        let raw = db.raw();
        let rows: Vec<(i64, String)> = raw
            .prepare("SELECT version, description FROM cqrs_schema ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0, rows[1].0), (1, 2));
        // Opening again applies nothing twice.
        drop(db.open());
        let count: i64 = raw
            .query_row("SELECT count(*) FROM cqrs_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
        raw.execute(
            "INSERT INTO cqrs_schema (version, description, applied_at) VALUES (7, 'future', 0)",
            [],
        )
        .unwrap();
    }
    let err = SqliteEventStore::open(&db.path).unwrap_err();
    let message = backend_message(&err);
    assert!(
        message.contains("schema version 7") && message.contains("version 2"),
        "{message}"
    );
}

#[tokio::test]
async fn another_programs_database_is_refused() {
    let db = TempDb::new("foreign");
    db.raw()
        .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY);")
        .unwrap();
    let message = backend_message(&SqliteEventStore::open(&db.path).unwrap_err());
    assert!(message.contains("not a cqrs event store"), "{message}");
}

fn pragma<'a>(pragmas: &'a [(&'static str, String)], name: &str) -> &'a str {
    pragmas
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no pragma {name} in {pragmas:?}"))
}

#[tokio::test]
async fn the_documented_pragmas_are_in_effect() {
    let db = TempDb::new("pragmas");
    let store = db.open();
    let p = store.pragmas().await.unwrap();
    let application_id = 0x4351_5253.to_string();
    let expected = [
        ("journal_mode", "wal"),
        ("synchronous", "2"), // FULL
        ("fullfsync", "1"),
        ("checkpoint_fullfsync", "1"),
        ("locking_mode", "normal"),
        ("busy_timeout", "5000"),
        ("foreign_keys", "1"),
        ("wal_autocheckpoint", "1000"),
        ("journal_size_limit", "67108864"),
        ("cache_size", "-16384"),
        ("temp_store", "2"), // MEMORY
        ("mmap_size", "0"),
        ("secure_delete", "1"),
        ("auto_vacuum", "0"), // NONE
        ("application_id", application_id.as_str()),
        ("query_only", "0"),
    ];
    for (name, value) in expected {
        assert_eq!(pragma(&p, name), value, "PRAGMA {name}");
    }
    drop(store);

    let store = db.open_with(
        SqliteOptions::new()
            .durability(Durability::Normal)
            .busy_timeout(Duration::from_millis(1500)),
    );
    let p = store.pragmas().await.unwrap();
    assert_eq!(pragma(&p, "synchronous"), "1"); // NORMAL
    assert_eq!(pragma(&p, "fullfsync"), "0");
    assert_eq!(pragma(&p, "busy_timeout"), "1500");
    // Background checkpoints: the WAL hook replaces the automatic checkpoint.
    assert_eq!(pragma(&p, "wal_autocheckpoint"), "0");
    // WAL is a property of the file.
    let mode: String = db
        .raw()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_copy_the_wal_into_the_file_in_either_mode() {
    for background in [true, false] {
        let db = TempDb::new("checkpoint");
        let store = db.open_with(
            SqliteOptions::new()
                .durability(Durability::Normal)
                .background_checkpoints(background),
        );
        let empty = std::fs::metadata(&db.path).unwrap().len();
        // About 2 000 WAL pages: past the threshold twice.
        let payload = Bytes::from(vec![b'x'; 3000]);
        for i in 0..400 {
            let batch = (0..4)
                .map(|_| NewEvent {
                    payload: payload.clone(),
                    ..event(1)
                })
                .collect();
            store
                .append(&format!("s-{}", i % 10), Any, batch)
                .await
                .unwrap();
        }
        // The checkpointer runs beside the writer: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let size = std::fs::metadata(&db.path).unwrap().len();
            if size > empty + 2_000_000 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "background {background}: the file is still {size} bytes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.read_all(1, 10_000).await.unwrap().len(), 1600);
    }
}

#[tokio::test]
async fn the_expected_version_table_holds() {
    let db = TempDb::new("expected");
    let store = db.open();
    // (expected, on an empty stream ok?, on a stream at version 1 ok?)
    let table: [(ExpectedVersion, bool, bool); 6] = [
        (Any, true, true),
        (NoStream, true, false),
        (StreamExists, false, true),
        (Exact(0), true, false),
        (Exact(1), false, true),
        (Exact(2), false, false),
    ];
    for (i, (expected, on_empty, on_one)) in table.into_iter().enumerate() {
        let empty = format!("empty-{i}");
        let r = store.append(&empty, expected, vec![event(1)]).await;
        assert_eq!(
            r.is_ok(),
            on_empty,
            "{expected:?} on an empty stream: {r:?}"
        );
        if let Err(e) = r {
            assert!(
                matches!(&e, StoreError::Concurrency { stream_id, expected: x, actual: ActualVersion(None) }
                    if *stream_id == empty && *x == expected),
                "{e:?}"
            );
        }
        let one = format!("one-{i}");
        store.append(&one, NoStream, vec![event(0)]).await.unwrap();
        let r = store.append(&one, expected, vec![event(1)]).await;
        assert_eq!(r.is_ok(), on_one, "{expected:?} at version 1: {r:?}");
        match r {
            Ok(out) => assert_eq!((out.stream_version, out.first_version()), (2, 2)),
            Err(e) => assert!(
                matches!(
                    &e,
                    StoreError::Concurrency {
                        actual: ActualVersion(Some(1)),
                        ..
                    }
                ),
                "{e:?}"
            ),
        }
    }
}

#[tokio::test]
async fn resending_a_batch_is_idempotent_and_conflicting_resends_are_refused() {
    let db = TempDb::new("idempotent");
    let store = db.open();
    let batch = vec![event(1), event(2), event(3)];
    let first = store.append("s", NoStream, batch.clone()).await.unwrap();
    assert!(!first.deduplicated);
    assert_eq!(first.positions, [1, 2, 3]);
    // Whatever the expected version, an exact re-send is answered from the log.
    for expected in [NoStream, Exact(0), Exact(3), Any] {
        let again = store.append("s", expected, batch.clone()).await.unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.positions, first.positions);
        assert_eq!(again.stream_version, 3);
        assert_eq!(again.recorded_at, first.recorded_at);
    }
    assert_eq!(store.head_position().await.unwrap(), 3);
    assert_eq!(store.stats().appended_events, 3);

    // Other content under a stored id.
    let mut changed = batch.clone();
    changed[0].payload = Bytes::from_static(b"x");
    let err = store.append("s", Any, changed).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateEvent { event_id, .. } if *event_id == batch[0].event_id)
    );
    assert!(err.to_string().contains("stored content differs"), "{err}");
    let mut changed = batch.clone();
    changed[1].metadata = Metadata::default().with_actor("mallory");
    let err = store.append("s", Any, changed).await.unwrap_err();
    assert!(err.to_string().contains("stored content differs"), "{err}");
    // In another stream.
    let err = store
        .append("other", Any, vec![batch[0].clone()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stored in stream `s`"), "{err}");
    // A committed event after a new one.
    let err = store
        .append("s", Any, vec![event(9), batch[1].clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateEvent { event_id, .. } if *event_id == batch[1].event_id)
    );
    // In another order.
    let err = store
        .append(
            "s",
            Any,
            vec![batch[0].clone(), batch[2].clone(), batch[1].clone()],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another order"), "{err}");
    // Stored events re-sent in their stored order are deduplicated whatever the batch
    // boundaries: part of a batch, or two batches as one.
    let more = store.append("s", Exact(3), vec![event(4)]).await.unwrap();
    assert_eq!(more.positions, [4]);
    let fourth = store.read_stream("s", 4).await.unwrap()[0].clone_as_new();
    for (part, positions) in [
        (vec![batch[0].clone(), batch[1].clone()], vec![1, 2]),
        (vec![batch[1].clone(), batch[2].clone()], vec![2, 3]),
        (vec![batch[2].clone(), fourth.clone()], vec![3, 4]),
        (
            vec![batch[0].clone(), batch[1].clone(), batch[2].clone(), fourth],
            vec![1, 2, 3, 4],
        ),
    ] {
        let again = store.append("s", Any, part).await.unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.positions, positions);
        assert_eq!(again.stream_version, *positions.last().unwrap());
    }
    // Mixed with a new event after them: refused.
    let err = store
        .append("s", Any, vec![batch[2].clone(), event(5), event(6)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEvent { .. }), "{err:?}");
    // Nothing of it was written, and no position was burnt.
    assert_eq!(store.head_position().await.unwrap(), 4);
    let next = store.append("s", Exact(4), vec![event(4)]).await.unwrap();
    assert_eq!(next.positions, [5]);
}

#[tokio::test]
async fn malformed_batches_are_refused() {
    let db = TempDb::new("malformed");
    let store = db.open();
    let err = store.append("s", Any, vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidBatch { .. }));
    let e = event(1);
    let err = store
        .append("s", Any, vec![e.clone(), e])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let err = store
        .append(RETENTION_STREAM, Any, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidBatch { .. }), "{err:?}");
    assert_eq!(store.head_position().await.unwrap(), 0);
}

#[tokio::test]
async fn reads_start_anywhere_and_stream_in_chunks() {
    let db = TempDb::new("reads");
    let store = db.open();
    // More than one chunk of the streaming read.
    for k in 0..7 {
        let batch: Vec<NewEvent> = (0..100).map(|_| event(k)).collect();
        store.append("big", Any, batch).await.unwrap();
    }
    store.append("small", Any, vec![event(1)]).await.unwrap();
    let all = store.read_stream("big", 1).await.unwrap();
    assert_eq!(all.len(), 700);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64 + 1)
    );
    assert_eq!(store.read_stream("big", 650).await.unwrap().len(), 51);
    assert_eq!(store.read_stream("big", 0).await.unwrap().len(), 700);
    assert!(store.read_stream("big", 701).await.unwrap().is_empty());
    assert!(store.read_stream("missing", 1).await.unwrap().is_empty());

    let mut seen = Vec::new();
    store
        .read_stream_with("big", 2, &mut |e| {
            seen.push(e.version);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(seen, (2..=700).collect::<Vec<u64>>());
    let mut seen = 0;
    store
        .read_stream_with("big", 1, &mut |_| {
            seen += 1;
            if seen == 300 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await
        .unwrap();
    assert_eq!(seen, 300);
    let mut seen = 0;
    store
        .read_stream_with("missing", 1, &mut |_| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(seen, 0);

    // The global log pages by position.
    let page = store.read_all(699, 3).await.unwrap();
    let positions: Vec<u64> = page.iter().map(|e| e.position).collect();
    assert_eq!(positions, [699, 700, 701]);
    assert_eq!(&*page[2].stream_id, "small");
    assert!(store.read_all(702, 10).await.unwrap().is_empty());
    assert!(store.read_all(1, 0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_stream_keep_versions_gapless() {
    let db = TempDb::new("writers");
    let store = db.open_with(SqliteOptions::new().durability(Durability::Normal));
    let writers = 8;
    let per_writer = 25;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            let mut conflicts = 0u32;
            let mut mine = Vec::new();
            for _ in 0..per_writer {
                loop {
                    let version = store.stream_version("hot").await.unwrap().unwrap_or(0);
                    let e = event(w);
                    match store.append("hot", Exact(version), vec![e.clone()]).await {
                        Ok(out) => {
                            assert_eq!(out.stream_version, version + 1);
                            mine.push(e.event_id);
                            break;
                        }
                        Err(StoreError::Concurrency {
                            expected, actual, ..
                        }) => {
                            assert_eq!(expected, Exact(version));
                            assert!(actual.0.unwrap_or(0) > version);
                            conflicts += 1;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            (mine, conflicts)
        });
    }
    let mut ids = HashSet::new();
    let mut conflicts = 0;
    while let Some(done) = tasks.join_next().await {
        let (mine, c) = done.unwrap();
        conflicts += c;
        ids.extend(mine);
    }
    let total = (writers as usize) * per_writer;
    assert_eq!(ids.len(), total);
    let stream = store.read_stream("hot", 1).await.unwrap();
    assert_eq!(stream.len(), total);
    for (i, e) in stream.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
        assert!(ids.contains(&e.event_id));
    }
    let positions: Vec<u64> = stream.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    println!(
        "{conflicts} conflicts among {writers} writers, {:?}",
        store.stats()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn group_commit_shares_one_transaction_between_waiting_writers() {
    for (cap, grouped) in [(128, true), (1, false)] {
        let db = TempDb::new("group");
        let store = db.open_with(SqliteOptions::new().group_commit(cap));
        let n = 64u64;
        let mut tasks = tokio::task::JoinSet::new();
        // All requests are sent before the first answer can arrive: the writer finds
        // them waiting.
        for i in 0..n {
            let store = store.clone();
            tasks.spawn(async move {
                // Every other request conflicts: it fails alone, the others commit.
                let expected = if i % 2 == 0 { NoStream } else { Exact(5) };
                store
                    .append(&format!("s-{i}"), expected, vec![event(1)])
                    .await
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Concurrency { .. }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(ok, n / 2);
        let stats = store.stats();
        assert_eq!(stats.write_requests, n);
        assert_eq!(stats.appended_events, n / 2);
        if grouped {
            assert!(
                stats.transactions < n / 2 && stats.largest_group > 1,
                "{stats:?}"
            );
        } else {
            assert_eq!(
                (stats.transactions, stats.largest_group),
                (n, 1),
                "{stats:?}"
            );
        }
        // Positions are gapless: the failed requests burnt none.
        let log = store.read_all(1, 1000).await.unwrap();
        let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
        assert_eq!(positions, (1..=n / 2).collect::<Vec<u64>>());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_resent_within_the_same_group_is_deduplicated() {
    let db = TempDb::new("same-group");
    let store = db.open();
    let batch = vec![event(1), event(2)];
    let (a, b) = tokio::join!(
        store.append("s", NoStream, batch.clone()),
        store.append("s", NoStream, batch.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.positions, b.positions);
    assert!(a.deduplicated != b.deduplicated);
    assert_eq!(store.head_position().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_tailing_the_log_sees_every_event_once_in_order() {
    let db = TempDb::new("tail");
    let store = db.open_with(SqliteOptions::new().durability(Durability::Normal));
    let writers = 4u8;
    let per_writer = 50;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..per_writer {
                let batch = (0..(1 + i % 3)).map(|_| event(w)).collect();
                store.append(&format!("w-{w}"), Any, batch).await.unwrap();
            }
        });
    }
    let total: usize = (0..per_writer).map(|i| 1 + i % 3).sum::<usize>() * writers as usize;
    let mut seen = Vec::with_capacity(total);
    let mut next = 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} events seen",
            seen.len()
        );
        let page = store.read_all(next, 7).await.unwrap();
        for e in &page {
            // No retention here: the log has no gaps, and nothing shows up late.
            assert_eq!(e.position, next, "{seen:?}");
            next += 1;
            seen.push(e.event_id);
        }
        if page.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    assert_eq!(store.head_position().await.unwrap(), total as u64);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), total);
}

fn marker(event: &RecordedEvent) -> RetentionEvent {
    assert_eq!(&*event.stream_id, RETENTION_STREAM);
    let mut decoded: Vec<RetentionEvent> = event.decode(&JsonCodec).unwrap();
    decoded.remove(0)
}

#[tokio::test]
async fn deleting_a_stream_tombstones_it_and_records_a_marker() {
    let db = TempDb::new("delete");
    let store = db.open();
    store
        .append("gone", NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    store
        .append("kept", NoStream, vec![event(3)])
        .await
        .unwrap();
    let snap = Snapshot {
        stream_id: "gone".into(),
        stream_version: 2,
        snapshot_version: 1,
        codec: "json".into(),
        taken_at: SystemTime::now(),
        payload: Bytes::from_static(b"{}"),
    };
    store.save_snapshot(&snap).await.unwrap();

    let err = store.delete_stream("gone", Exact(1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Concurrency {
                actual: ActualVersion(Some(2)),
                ..
            }
        ),
        "{err:?}"
    );
    let out = store.delete_stream("gone", Exact(2)).await.unwrap();
    assert_eq!(out.removed, 2);
    let marker_position = out.marker_position.unwrap();
    assert_eq!(marker_position, 4);

    let deleted = |r: Result<_, StoreError>| matches!(r, Err(StoreError::StreamDeleted { ref stream_id }) if stream_id == "gone");
    assert!(deleted(
        store.append("gone", Any, vec![event(4)]).await.map(drop)
    ));
    assert!(deleted(store.read_stream("gone", 1).await.map(drop)));
    assert!(deleted(store.stream_version("gone").await.map(drop)));
    // Its snapshot went with it.
    assert_eq!(store.load_snapshot("gone").await.unwrap(), None);
    assert!(deleted(store.delete_stream("gone", Any).await.map(drop)));
    assert!(deleted(
        store
            .read_stream_with("gone", 1, &mut |_| ControlFlow::Continue(()))
            .await
    ));

    // The log holds the other stream and the marker.
    let log = store.read_all(1, 100).await.unwrap();
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, [3, 4]);
    assert_eq!(
        marker(&log[1]),
        RetentionEvent::StreamDeleted {
            stream_id: "gone".into(),
            version: 2,
            removed: 2
        }
    );

    // A missing stream: a conflict unless `Any`, which tombstones the id, still with a
    // marker.
    let err = store.delete_stream("never", NoStream).await.unwrap_err();
    assert!(matches!(err, StoreError::Concurrency { .. }), "{err:?}");
    let out = store.delete_stream("never", Any).await.unwrap();
    assert_eq!(out.removed, 0);
    let never = store
        .read_all(out.marker_position.unwrap(), 1)
        .await
        .unwrap();
    assert_eq!(
        marker(&never[0]),
        RetentionEvent::StreamDeleted {
            stream_id: "never".into(),
            version: 0,
            removed: 0
        }
    );
    assert!(matches!(
        store.append("never", Any, vec![event(1)]).await,
        Err(StoreError::StreamDeleted { .. })
    ));
    // Reserved ids cannot be deleted.
    assert!(matches!(
        store.delete_stream(RETENTION_STREAM, Any).await,
        Err(StoreError::InvalidBatch { .. })
    ));

    // Deleting the newest events never lets a position be handed out twice.
    store
        .append("last", NoStream, vec![event(1)])
        .await
        .unwrap();
    let out = store.delete_stream("last", Any).await.unwrap();
    drop(store);
    let store = db.open();
    let next = store
        .append("after", NoStream, vec![event(1)])
        .await
        .unwrap();
    assert!(next.positions[0] > out.marker_position.unwrap());
    // The tombstone survives the reopen.
    assert!(matches!(
        store.stream_version("gone").await,
        Err(StoreError::StreamDeleted { .. })
    ));
}

#[tokio::test]
async fn truncating_keeps_the_version_and_refuses_reads_of_removed_events() {
    let db = TempDb::new("truncate");
    let store = db.open();
    let batch: Vec<NewEvent> = (0..5).map(event).collect();
    store.append("s", NoStream, batch).await.unwrap();
    let err = store.truncate_stream("s", 7).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidBatch { .. }), "{err:?}");

    let out = store.truncate_stream("s", 3).await.unwrap();
    assert_eq!(out.removed, 2);
    let m = out.marker_position.unwrap();
    assert_eq!(store.stream_version("s").await.unwrap(), Some(5));
    let err = store.read_stream("s", 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::StreamTruncated { ref stream_id, first_version: 3 } if stream_id == "s"),
        "{err:?}"
    );
    let err = store
        .read_stream_with("s", 2, &mut |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::StreamTruncated {
            first_version: 3,
            ..
        }
    ));
    let rest = store.read_stream("s", 3).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.version).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    let log = store.read_all(1, 100).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.position).collect::<Vec<_>>(),
        [3, 4, 5, m]
    );
    assert_eq!(
        marker(&log[3]),
        RetentionEvent::StreamTruncated {
            stream_id: "s".into(),
            before_version: 3,
            removed: 2
        }
    );
    // Truncating again before the same or an earlier version removes nothing.
    let out = store.truncate_stream("s", 3).await.unwrap();
    assert_eq!((out.removed, out.marker_position), (0, None));
    // Appends continue after the kept version.
    let next = store.append("s", Exact(5), vec![event(6)]).await.unwrap();
    assert_eq!(next.stream_version, 6);
    // Everything: the stream keeps its version, reads from after it are empty.
    let out = store.truncate_stream("s", 7).await.unwrap();
    assert_eq!(out.removed, 4);
    assert_eq!(store.stream_version("s").await.unwrap(), Some(6));
    assert!(store.read_stream("s", 7).await.unwrap().is_empty());
    assert!(matches!(
        store.read_stream("s", 6).await,
        Err(StoreError::StreamTruncated {
            first_version: 7,
            ..
        })
    ));
    // A missing stream has nothing to truncate.
    for before in [1, 9] {
        let out = store.truncate_stream("missing", before).await.unwrap();
        assert_eq!((out.removed, out.marker_position), (0, None));
    }
    // The retention stream's own old markers can be trimmed, which leaves a marker too.
    let markers = store
        .stream_version(RETENTION_STREAM)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(markers, 2);
    let out = store.truncate_stream(RETENTION_STREAM, 2).await.unwrap();
    assert_eq!(out.removed, 1);
    let trimmed = store.read_stream(RETENTION_STREAM, 2).await.unwrap();
    assert_eq!(trimmed.len(), 2);
    assert_eq!(trimmed[1].position, out.marker_position.unwrap());
}

#[tokio::test]
async fn expiry_removes_old_events_of_every_stream_and_keeps_markers() {
    let db = TempDb::new("expire");
    let store = db.open();
    store
        .append("a", NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    store.append("b", NoStream, vec![event(3)]).await.unwrap();
    store.truncate_stream("b", 1).await.unwrap(); // nothing, no marker
    let before = store.delete_stream("b", Any).await.unwrap();
    assert!(before.marker_position.is_some());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.append("a", Exact(2), vec![event(4)]).await.unwrap();
    store.append("c", NoStream, vec![event(5)]).await.unwrap();

    let out = store.expire(cutoff).await.unwrap();
    assert_eq!(out.removed, 2);
    let m = out.marker_position.unwrap();
    let log = store.read_all(1, 100).await.unwrap();
    let streams: Vec<&str> = log.iter().map(|e| &*e.stream_id).collect();
    assert_eq!(streams, [RETENTION_STREAM, "a", "c", RETENTION_STREAM]);
    assert_eq!(log[3].position, m);
    let cutoff_ms = cutoff
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert_eq!(
        marker(&log[3]),
        RetentionEvent::EventsExpired {
            recorded_before_ms: cutoff_ms,
            removed: 2
        }
    );
    assert!(matches!(
        store.read_stream("a", 1).await,
        Err(StoreError::StreamTruncated {
            first_version: 3,
            ..
        })
    ));
    assert_eq!(store.read_stream("a", 3).await.unwrap().len(), 1);
    assert_eq!(store.stream_version("a").await.unwrap(), Some(3));
    // Nothing more to expire: no marker.
    let out = store.expire(cutoff).await.unwrap();
    assert_eq!((out.removed, out.marker_position), (0, None));
    // Expiring everything keeps the markers.
    let out = store
        .expire(SystemTime::now() + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(out.removed, 2);
    let log = store.read_all(1, 100).await.unwrap();
    assert!(log.iter().all(|e| &*e.stream_id == RETENTION_STREAM));
    assert_eq!(log.len(), 3);
}

#[tokio::test]
async fn the_newest_snapshot_wins() {
    let db = TempDb::new("snapshots");
    let store = db.open();
    assert_eq!(store.load_snapshot("s").await.unwrap(), None);
    let snap = |version: u64, payload: &'static [u8]| Snapshot {
        stream_id: "s".into(),
        stream_version: version,
        snapshot_version: 2,
        codec: "json".into(),
        taken_at: SystemTime::now(),
        payload: Bytes::from_static(payload),
    };
    let ten = snap(10, b"ten");
    store.save_snapshot(&ten).await.unwrap();
    assert_eq!(store.load_snapshot("s").await.unwrap(), Some(ten.clone()));
    store.save_snapshot(&snap(5, b"five")).await.unwrap();
    assert_eq!(store.load_snapshot("s").await.unwrap(), Some(ten));
    let twenty = snap(20, b"twenty");
    store.save_snapshot(&twenty).await.unwrap();
    drop(store);
    let store = db.open();
    assert_eq!(store.load_snapshot("s").await.unwrap(), Some(twenty));
}

#[tokio::test]
async fn a_corrupt_row_is_a_typed_error_naming_it() {
    let db = TempDb::new("corrupt");
    let store = db.open();
    store
        .append("s", NoStream, vec![event(1), event(2), event(3)])
        .await
        .unwrap();
    let damage = |sql: &str| {
        db.raw().execute(sql, []).unwrap();
    };
    damage("UPDATE events SET metadata = 'not json' WHERE version = 2");
    for err in [
        store.read_stream("s", 1).await.unwrap_err(),
        store.read_all(1, 10).await.unwrap_err(),
        store
            .read_stream_with("s", 1, &mut |_| ControlFlow::Continue(()))
            .await
            .unwrap_err(),
    ] {
        let message = backend_message(&err);
        assert!(
            message.contains("position 2") && message.contains("`s`") && message.contains("JSON"),
            "{message}"
        );
    }
    // The rows before it are handed over; a visitor that stops before it never sees it.
    let mut seen = 0;
    store
        .read_stream_with("s", 1, &mut |_| {
            seen += 1;
            ControlFlow::Break(())
        })
        .await
        .unwrap();
    assert_eq!(seen, 1);
    assert_eq!(store.read_stream("s", 3).await.unwrap().len(), 1);

    damage("UPDATE events SET event_id = x'0102' WHERE version = 3");
    let message = backend_message(&store.read_stream("s", 3).await.unwrap_err());
    assert!(message.contains("2 bytes long"), "{message}");
    damage("UPDATE events SET version = -4 WHERE version = 1");
    let message = backend_message(&store.read_all(1, 1).await.unwrap_err());
    assert!(message.contains("negative version"), "{message}");

    // A re-send that has to compare with a corrupt row says so too.
    store.append("t", NoStream, vec![event(1)]).await.unwrap();
    let stored = store.read_stream("t", 1).await.unwrap();
    damage("UPDATE events SET metadata = '[' WHERE stream_id = 't'");
    let err = store
        .append("t", Any, vec![stored[0].clone_as_new()])
        .await
        .unwrap_err();
    backend_message(&err);

    // A corrupt snapshot.
    store
        .save_snapshot(&Snapshot {
            stream_id: "t".into(),
            stream_version: 1,
            snapshot_version: 1,
            codec: "json".into(),
            taken_at: SystemTime::now(),
            payload: Bytes::from_static(b"{}"),
        })
        .await
        .unwrap();
    damage("UPDATE snapshots SET snapshot_version = -1");
    let message = backend_message(&store.load_snapshot("t").await.unwrap_err());
    assert!(message.contains("snapshot of stream `t`"), "{message}");
}

#[tokio::test]
async fn a_store_whose_writer_cannot_commit_reports_errors() {
    // The file is locked by another connection for longer than the busy timeout: the
    // group fails as a whole with a backend error, and the store recovers afterwards.
    let db = TempDb::new("busy");
    let store = db.open_with(SqliteOptions::new().busy_timeout(Duration::from_millis(50)));
    store.append("s", NoStream, vec![event(1)]).await.unwrap();
    let blocker = db.raw();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .append("s", Exact(1), vec![event(2)])
        .await
        .unwrap_err();
    backend_message(&err);
    blocker.execute_batch("ROLLBACK").unwrap();
    let out = store.append("s", Exact(1), vec![event(2)]).await.unwrap();
    assert_eq!(out.positions, [2]);
}

// The runtime on top of the store.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum CounterCommand {
    Add { n: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(command = CounterCommand, event = CounterEvent, error = Never)]
struct Counter {
    total: u64,
}

#[aggregate_impl]
impl Counter {
    #[handle]
    fn add(&self, n: u64) -> CounterEvent {
        CounterEvent::Added { n }
    }

    #[apply]
    fn added(&mut self, n: &u64) {
        self.total += n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_runs_on_the_sqlite_store() {
    let db = TempDb::new("runtime");
    let store = db.open();
    let counters = Arc::new(
        Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::every(10))
            .build(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..4u64 {
        let counters = counters.clone();
        tasks.spawn(async move {
            for n in 1..=25 {
                counters
                    .execute(&format!("c-{t}"), CounterCommand::Add { n })
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let snap = store.load_snapshot("Counter-c-0").await.unwrap().unwrap();
    assert_eq!(snap.stream_version, 20);
    // Truncated below the snapshot, the aggregate still loads: snapshot plus tail.
    store.truncate_stream("Counter-c-0", 21).await.unwrap();
    drop(counters);

    let counters = Cqrs::<Counter>::builder(db.open())
        .snapshots(SnapshotPolicy::every(10))
        .build();
    for t in 0..4 {
        let loaded = counters.load(&format!("c-{t}")).await.unwrap();
        assert_eq!((loaded.state.total, loaded.version), (325, 25));
    }
    counters
        .execute("c-0", CounterCommand::Add { n: 5 })
        .await
        .unwrap();
    assert_eq!(counters.load("c-0").await.unwrap().state.total, 330);
    assert_eq!(path_of(&store), db.path.as_path());
}

fn path_of(store: &SqliteEventStore) -> &Path {
    store.path()
}
