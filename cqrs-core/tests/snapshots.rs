//! Snapshots in the runtime: taken by policy, loaded with only the tail replayed, ignored
//! (never mis-read) when of another version or shape, and never failing a command.

use async_trait::async_trait;
use cqrs_core::prelude::*;
use cqrs_core::snapshot::{Snapshot, SnapshotPolicy};
use cqrs_core::store::{AppendOutcome, EventVisitor, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum CounterCommand {
    Add { n: u64 },
    AddMany { n: u64, times: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct CounterError;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(command = CounterCommand, event = CounterEvent, error = CounterError, name = "Counter")]
struct Counter {
    total: u64,
    events: u64,
}

#[aggregate_impl]
impl Counter {
    #[handle]
    fn add(&self, n: u64) -> CounterEvent {
        CounterEvent::Added { n }
    }
    #[handle]
    fn add_many(&self, n: u64, times: u64) -> Vec<CounterEvent> {
        (0..times).map(|_| CounterEvent::Added { n }).collect()
    }
    #[apply]
    fn added(&mut self, n: &u64) {
        self.total += n;
        self.events += 1;
    }
}

/// Counts the events the runtime reads, and can refuse snapshots.
#[derive(Clone)]
struct Counting {
    inner: InMemoryEventStore,
    read: Arc<AtomicU64>,
    refuse_snapshots: bool,
}

#[async_trait]
impl EventStore for Counting {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.inner.append(stream_id, expected, events).await
    }
    async fn read_stream(&self, s: &str, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.inner.read_stream(s, from).await?;
        self.read.fetch_add(events.len() as u64, Ordering::SeqCst);
        Ok(events)
    }
    async fn read_stream_with(
        &self,
        s: &str,
        from: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        let read = self.read.clone();
        self.inner
            .read_stream_with(s, from, &mut |e| {
                read.fetch_add(1, Ordering::SeqCst);
                visit(e)
            })
            .await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }
    async fn stream_version(&self, s: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(s).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        if self.refuse_snapshots {
            return Err(StoreError::Backend("snapshot table is full".into()));
        }
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, s: &str) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load_snapshot(s).await
    }
}

fn counting(refuse_snapshots: bool) -> Counting {
    Counting {
        inner: InMemoryEventStore::new(),
        read: Arc::new(AtomicU64::new(0)),
        refuse_snapshots,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_load_reads_the_snapshot_and_only_the_tail() {
    rt().block_on(async {
        let store = counting(false);
        let counters = Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::every(100))
            .build();
        // 250 events in commands of 1 and of 7: a snapshot whenever a multiple of 100
        // is crossed.
        counters
            .execute("c", CounterCommand::AddMany { n: 1, times: 7 })
            .await
            .unwrap();
        for _ in 0..243 {
            counters
                .execute("c", CounterCommand::Add { n: 1 })
                .await
                .unwrap();
        }
        let snap = store
            .inner
            .load_snapshot("Counter-c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snap.stream_version, 200);
        store.read.store(0, Ordering::SeqCst);
        let loaded = counters.load("c").await.unwrap();
        assert_eq!((loaded.state.total, loaded.version), (250, 250));
        assert_eq!(loaded.from_snapshot, Some(200));
        assert_eq!(
            store.read.load(Ordering::SeqCst),
            50,
            "only the tail is read"
        );

        // The events before the snapshot may now go: loads still work from it.
        store.inner.truncate_stream("Counter-c", 201).await.unwrap();
        let fresh = Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::every(100))
            .build();
        assert_eq!(fresh.load("c").await.unwrap().state.total, 250);
        // Without snapshots, the truncated stream is an error that says why.
        let plain = Cqrs::<Counter>::builder(store.clone()).build();
        let err = plain.load("c").await.unwrap_err();
        assert!(
            err.to_string().contains("first event is now version 201"),
            "{err}"
        );
    });
}

#[test]
fn a_snapshot_of_another_version_or_shape_is_ignored_and_the_state_rebuilt() {
    rt().block_on(async {
        let store = InMemoryEventStore::new();
        let counters = Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::every(1000))
            .build();
        for _ in 0..5 {
            counters
                .execute("c", CounterCommand::Add { n: 2 })
                .await
                .unwrap();
        }
        let good = Snapshot::take(
            "Counter-c",
            5,
            &Counter {
                total: 10,
                events: 5,
            },
            &JsonCodec,
        )
        .unwrap();
        // A lying snapshot of another version: it must not be used.
        let other_version = Snapshot {
            snapshot_version: 7,
            payload: serde_json::to_vec(&Counter {
                total: 999,
                events: 5,
            })
            .unwrap()
            .into(),
            ..good.clone()
        };
        store.save_snapshot(&other_version).await.unwrap();
        let fresh = || {
            Cqrs::<Counter>::builder(store.clone())
                .snapshots(SnapshotPolicy::every(1000))
                .build()
        };
        let loaded = fresh().load("c").await.unwrap();
        assert_eq!(loaded.state.total, 10);
        assert_eq!(
            loaded.from_snapshot, None,
            "the snapshot was ignored: a full replay"
        );
        let reshaped = Snapshot {
            payload: bytes::Bytes::from_static(br#"{"sum":999}"#),
            ..good
        };
        store.save_snapshot(&reshaped).await.unwrap();
        assert_eq!(fresh().load("c").await.unwrap().state.total, 10);
    });
}

#[test]
fn a_custom_policy_and_an_explicit_snapshot() {
    rt().block_on(async {
        let store = InMemoryEventStore::new();
        let counters = Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::when(|c: &Counter, _, since| {
                c.total >= 100 && since >= 3
            }))
            .build();
        counters
            .execute("c", CounterCommand::Add { n: 50 })
            .await
            .unwrap();
        counters
            .execute("c", CounterCommand::Add { n: 50 })
            .await
            .unwrap();
        assert!(store.load_snapshot("Counter-c").await.unwrap().is_none());
        counters
            .execute("c", CounterCommand::Add { n: 1 })
            .await
            .unwrap();
        assert_eq!(
            store
                .load_snapshot("Counter-c")
                .await
                .unwrap()
                .unwrap()
                .stream_version,
            3
        );
        counters
            .execute("c", CounterCommand::Add { n: 1 })
            .await
            .unwrap();
        assert_eq!(counters.snapshot("c").await.unwrap(), 4);
        assert_eq!(
            store
                .load_snapshot("Counter-c")
                .await
                .unwrap()
                .unwrap()
                .stream_version,
            4
        );
        assert_eq!(counters.snapshot("empty").await.unwrap(), 0);
        let plain = Cqrs::<Counter>::builder(store.clone()).build();
        assert!(plain.snapshot("c").await.is_err());
    });
}

#[test]
fn a_snapshot_that_cannot_be_saved_does_not_fail_the_command() {
    rt().block_on(async {
        let store = counting(true);
        let counters = Cqrs::<Counter>::builder(store.clone())
            .snapshots(SnapshotPolicy::every(1))
            .build();
        let done = counters
            .execute("c", CounterCommand::Add { n: 1 })
            .await
            .unwrap();
        assert_eq!(done.stream_version, 1);
        assert!(
            store
                .inner
                .load_snapshot("Counter-c")
                .await
                .unwrap()
                .is_none()
        );
    });
}

#[test]
#[should_panic(expected = "call .codec(..) before .snapshots(..)")]
fn the_codec_must_be_chosen_before_snapshots() {
    let _ = Cqrs::<Counter>::builder(InMemoryEventStore::new())
        .snapshots(SnapshotPolicy::every(10))
        .codec(JsonCodec);
}
