//! The in-memory store's contract: expected versions, atomic batches, idempotency, the
//! global log.

use bytes::Bytes;
use cqrs_core::ExpectedVersion::{self, Any, Exact, NoStream, StreamExists};
use cqrs_core::prelude::*;
use cqrs_core::store::{ActualVersion, StoreError};

fn event(n: u8) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: "Noted".into(),
        schema_version: 1,
        metadata: Metadata::default(),
        payload: Bytes::from(vec![b'0' + n]),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn the_expected_version_table_holds_on_empty_and_non_empty_streams() {
    block_on(async {
        let store = InMemoryEventStore::new();
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
            assert_eq!(
                r.is_ok(),
                on_one,
                "{expected:?} on a stream at version 1: {r:?}"
            );
            if let Err(e) = r {
                assert!(matches!(
                    e,
                    StoreError::Concurrency {
                        actual: ActualVersion(Some(1)),
                        ..
                    }
                ));
            }
        }
    });
}

#[test]
fn a_batch_commits_whole_with_gapless_versions_and_positions() {
    block_on(async {
        let store = InMemoryEventStore::new();
        let out = store
            .append("s", NoStream, vec![event(1), event(2), event(3)])
            .await
            .unwrap();
        assert_eq!((out.stream_version, out.first_version()), (3, 1));
        assert_eq!(out.positions, [1, 2, 3]);
        let out = store.append("t", Any, vec![event(4)]).await.unwrap();
        assert_eq!(out.positions, [4]);
        let failed = store.append("s", Exact(2), vec![event(5), event(6)]).await;
        assert!(failed.is_err());
        assert_eq!(
            store.read_stream("s", 1).await.unwrap().len(),
            3,
            "a failed batch writes nothing"
        );
        let tail = store.read_stream("s", 2).await.unwrap();
        assert_eq!(tail.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3]);
        assert!(store.read_stream("s", 9).await.unwrap().is_empty());
        assert!(store.read_stream("nope", 1).await.unwrap().is_empty());
        assert_eq!(store.stream_version("s").await.unwrap(), Some(3));
        assert_eq!(store.stream_version("nope").await.unwrap(), None);
    });
}

#[test]
fn re_sending_a_committed_batch_is_idempotent() {
    block_on(async {
        let store = InMemoryEventStore::new();
        let batch = vec![event(1), event(2)];
        let first = store.append("s", NoStream, batch.clone()).await.unwrap();
        store.append("s", Exact(2), vec![event(3)]).await.unwrap();
        let again = store.append("s", NoStream, batch.clone()).await.unwrap();
        assert!(again.deduplicated && !first.deduplicated);
        assert_eq!(
            (again.stream_version, &again.positions),
            (2, &first.positions)
        );
        assert_eq!(
            store.head_position().await.unwrap(),
            3,
            "nothing written twice"
        );

        // Same id, other content.
        let mut changed = batch.clone();
        changed[0].payload = Bytes::from_static(b"x");
        let err = store.append("s", Any, changed).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateEvent { event_id, .. } if *event_id == batch[0].event_id)
        );
        assert!(err.to_string().contains("stored content differs"), "{err}");
        // Same id in another stream.
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
        assert!(matches!(err, StoreError::DuplicateEvent { .. }));
        assert_eq!(store.head_position().await.unwrap(), 3);
    });
}

#[test]
fn malformed_batches_are_refused() {
    block_on(async {
        let store = InMemoryEventStore::new();
        let err = store.append("s", Any, vec![]).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidBatch { .. }));
        let e = event(1);
        let err = store
            .append("s", Any, vec![e.clone(), e.clone()])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        // The same in a batch large enough to be checked with a set.
        let mut large: Vec<NewEvent> = (0..100).map(|_| event(1)).collect();
        large.push(e.clone());
        large.push(e);
        let err = store.append("s", Any, large).await.unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        assert_eq!(store.head_position().await.unwrap(), 0);
    });
}

#[test]
fn the_global_log_pages_in_position_order_while_writers_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let store = InMemoryEventStore::new();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..100u64 {
                        store
                            .append(&format!("w{w}"), Exact(i), vec![event(1)])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        let mut from = 1;
        while seen.len() < 800 {
            let page = store.read_all(from, 37).await.unwrap();
            for e in &page {
                assert_eq!(e.position, from, "positions are gapless and in order");
                from += 1;
                seen.push(e.event_id);
            }
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 800, "every event exactly once");
        assert!(store.read_all(801, 10).await.unwrap().is_empty());
        assert_eq!(store.read_all(799, 10).await.unwrap().len(), 2);
    });
}

mod retention {
    use cqrs_core::prelude::*;
    use cqrs_core::snapshot::Snapshot;
    use cqrs_core::store::{RETENTION_STREAM, RetentionEvent, StoreError};
    use std::time::{Duration, SystemTime};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    enum E {
        N(u32),
    }

    fn batch(ns: &[u32]) -> Vec<NewEvent> {
        ns.iter()
            .map(|n| NewEvent::encode(&E::N(*n), &JsonCodec, Metadata::default()).unwrap())
            .collect()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn delete_tombstones_the_id_and_tells_log_readers() {
        rt().block_on(async {
            let store = InMemoryEventStore::new();
            store
                .append("s-1", ExpectedVersion::NoStream, batch(&[1, 2]))
                .await
                .unwrap();
            store
                .append("s-2", ExpectedVersion::NoStream, batch(&[3]))
                .await
                .unwrap();
            let wrong = store.delete_stream("s-1", ExpectedVersion::Exact(1)).await;
            assert!(matches!(wrong, Err(StoreError::Concurrency { .. })));
            let out = store
                .delete_stream("s-1", ExpectedVersion::Exact(2))
                .await
                .unwrap();
            assert_eq!((out.removed, out.marker_position), (2, Some(4)));
            for result in [
                store
                    .append("s-1", ExpectedVersion::Any, batch(&[9]))
                    .await
                    .map(|_| ()),
                store.read_stream("s-1", 1).await.map(|_| ()),
                store.stream_version("s-1").await.map(|_| ()),
            ] {
                assert!(
                    matches!(result, Err(StoreError::StreamDeleted { .. })),
                    "{result:?}"
                );
            }
            let log = store.read_all(1, 10).await.unwrap();
            let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
            assert_eq!(positions, [3, 4]);
            assert_eq!(&*log[1].stream_id, RETENTION_STREAM);
            let marker: Vec<RetentionEvent> = log[1].decode(&JsonCodec).unwrap();
            assert_eq!(
                marker,
                [RetentionEvent::StreamDeleted {
                    stream_id: "s-1".into(),
                    version: 2,
                    removed: 2
                }]
            );
            assert!(matches!(
                store
                    .append(RETENTION_STREAM, ExpectedVersion::Any, batch(&[1]))
                    .await,
                Err(StoreError::InvalidBatch { .. })
            ));
        });
    }

    #[test]
    fn truncate_keeps_the_version_and_refuses_to_read_what_is_gone() {
        rt().block_on(async {
            let store = InMemoryEventStore::new();
            store
                .append("s", ExpectedVersion::NoStream, batch(&[1, 2, 3, 4]))
                .await
                .unwrap();
            let out = store.truncate_stream("s", 3).await.unwrap();
            assert_eq!(out.removed, 2);
            let err = store.read_stream("s", 1).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::StreamTruncated {
                        first_version: 3,
                        ..
                    }
                ),
                "{err:?}"
            );
            let kept = store.read_stream("s", 3).await.unwrap();
            assert_eq!(kept.iter().map(|e| e.version).collect::<Vec<_>>(), [3, 4]);
            assert_eq!(store.stream_version("s").await.unwrap(), Some(4));
            let next = store
                .append("s", ExpectedVersion::Exact(4), batch(&[5]))
                .await
                .unwrap();
            assert_eq!(next.stream_version, 5);
            assert!(store.truncate_stream("s", 7).await.is_err());
            assert_eq!(store.truncate_stream("s", 2).await.unwrap().removed, 0);
        });
    }

    #[test]
    fn expire_removes_old_events_everywhere() {
        rt().block_on(async {
            let store = InMemoryEventStore::new();
            store
                .append("a", ExpectedVersion::NoStream, batch(&[1]))
                .await
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let cutoff = SystemTime::now();
            std::thread::sleep(Duration::from_millis(5));
            store
                .append("a", ExpectedVersion::Exact(1), batch(&[2]))
                .await
                .unwrap();
            let out = store.expire(cutoff).await.unwrap();
            assert_eq!(out.removed, 1);
            assert_eq!(store.read_stream("a", 2).await.unwrap().len(), 1);
            assert_eq!(store.expire(cutoff).await.unwrap().marker_position, None);
        });
    }

    #[test]
    fn the_newest_snapshot_wins() {
        rt().block_on(async {
            #[derive(Serialize)]
            struct S(u32);
            let store = InMemoryEventStore::new();
            let snap = |v: u64| Snapshot {
                stream_id: "s".into(),
                stream_version: v,
                snapshot_version: 1,
                codec: "json".into(),
                taken_at: SystemTime::now(),
                payload: JsonCodec.encode_value(&S(v as u32)).unwrap().into(),
            };
            assert_eq!(store.load_snapshot("s").await.unwrap(), None);
            store.save_snapshot(&snap(10)).await.unwrap();
            store.save_snapshot(&snap(5)).await.unwrap();
            assert_eq!(
                store
                    .load_snapshot("s")
                    .await
                    .unwrap()
                    .unwrap()
                    .stream_version,
                10
            );
            store
                .append("s", ExpectedVersion::Any, batch(&[1]))
                .await
                .unwrap();
            store
                .delete_stream("s", ExpectedVersion::Any)
                .await
                .unwrap();
            assert_eq!(store.load_snapshot("s").await.unwrap(), None);
        });
    }
}
