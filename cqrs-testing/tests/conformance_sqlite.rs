//! The SQLite adapter passes the whole conformance suite, every case at its default size,
//! with both durability levels, and with a hook that damages stored rows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cqrs_core::snapshot::Snapshot;
use cqrs_core::store::sqlite::{Durability, SqliteEventStore, SqliteOptions};
use cqrs_core::store::{
    AppendOutcome, BoxError, EventStore, EventVisitor, ExpectedVersion, RetentionOutcome,
    StoreError,
};
use cqrs_core::{NewEvent, RecordedEvent};
use cqrs_testing::conformance::{BoxFuture, Config};

/// A store on a file of its own, removed when the last clone is dropped.
#[derive(Clone)]
struct TempSqlite {
    store: SqliteEventStore,
    _file: Arc<Removed>,
}

struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", self.0.display()));
        }
    }
}

fn open(durability: Durability) -> TempSqlite {
    let path = std::env::temp_dir().join(format!("cqrs-conformance-{}.db", uuid::Uuid::now_v7()));
    let store = SqliteOptions::new()
        .durability(durability)
        .open(&path)
        .expect("a fresh SQLite file opens");
    TempSqlite {
        store,
        _file: Arc::new(Removed(path)),
    }
}

/// Overwrites the metadata of one stored event with text that is not JSON.
fn corrupt<'a>(
    store: &'a TempSqlite,
    stream_id: &'a str,
    version: u64,
) -> BoxFuture<'a, Result<(), BoxError>> {
    Box::pin(async move {
        let conn = rusqlite::Connection::open(store.store.path())?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let changed = conn.execute(
            "UPDATE events SET metadata = 'not json' WHERE stream_id = ?1 AND version = ?2",
            rusqlite::params![stream_id, version as i64],
        )?;
        if changed != 1 {
            return Err(format!("no event {stream_id} v{version} to damage").into());
        }
        Ok(())
    })
}

#[async_trait]
impl EventStore for TempSqlite {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.store.append(stream_id, expected, events).await
    }
    async fn read_stream(&self, s: &str, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_stream(s, from).await
    }
    async fn read_stream_with(
        &self,
        s: &str,
        from: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.store.read_stream_with(s, from, visit).await
    }
    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store.read_all(from, limit).await
    }
    async fn stream_version(&self, s: &str) -> Result<Option<u64>, StoreError> {
        self.store.stream_version(s).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.store.head_position().await
    }
    async fn delete_stream(
        &self,
        s: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        self.store.delete_stream(s, expected).await
    }
    async fn truncate_stream(&self, s: &str, before: u64) -> Result<RetentionOutcome, StoreError> {
        self.store.truncate_stream(s, before).await
    }
    async fn expire(&self, before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        self.store.expire(before).await
    }
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.store.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, s: &str) -> Result<Option<Snapshot>, StoreError> {
        self.store.load_snapshot(s).await
    }
}

cqrs_testing::event_store_conformance!(
    sqlite_full,
    || async { open(Durability::Full) },
    Config::default().corrupt(corrupt)
);

cqrs_testing::event_store_conformance!(
    sqlite_normal,
    || async { open(Durability::Normal) },
    Config::default().corrupt(corrupt)
);
