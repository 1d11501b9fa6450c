//! A small aggregate and store wrappers shared by the runtime tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use cqrs_core::prelude::*;
use cqrs_core::store::{AppendOutcome, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum TallyEvent {
    Added { n: u64, total: u64 },
    Pair(u8, u8),
}

#[derive(Debug, Clone, PartialEq, Command)]
pub enum TallyCommand {
    Add {
        #[command(id)]
        tally: String,
        n: u64,
    },
    AddTwice {
        n: u64,
    },
    Nothing,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TallyError {
    #[error("adding zero is refused")]
    Zero,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = TallyCommand, event = TallyEvent, error = TallyError, name = "Tally")]
pub struct Tally {
    pub total: u64,
    pub events: u64,
}

#[aggregate_impl]
impl Tally {
    #[handle]
    fn add(&self, tally: String, n: u64) -> Result<TallyEvent, TallyError> {
        let _ = tally;
        if n == 0 {
            return Err(TallyError::Zero);
        }
        Ok(TallyEvent::Added {
            n,
            total: self.total + n,
        })
    }

    #[handle]
    fn add_twice(&self, n: u64) -> Vec<TallyEvent> {
        vec![
            TallyEvent::Added {
                n,
                total: self.total + n,
            },
            TallyEvent::Added {
                n,
                total: self.total + 2 * n,
            },
        ]
    }

    #[handle]
    fn nothing(&self) -> Option<TallyEvent> {
        None
    }

    #[apply]
    fn added(&mut self, total: &u64) {
        self.total = *total;
        self.events += 1;
    }

    #[apply]
    fn pair(&mut self) {
        self.events += 1;
    }
}

pub fn add(n: u64) -> TallyCommand {
    TallyCommand::Add {
        tally: "t".into(),
        n,
    }
}

/// Counts reads and appends, and fails appends on demand.
#[derive(Clone, Default)]
pub struct Spy {
    pub inner: InMemoryEventStore,
    pub stream_reads: Arc<AtomicUsize>,
    pub appends: Arc<AtomicUsize>,
    pub fail_appends: Arc<AtomicBool>,
    /// Commit the append, then report a failure (an ambiguous outcome).
    pub fail_after_commit: Arc<AtomicBool>,
    /// Commit the append, then report no positions (a broken adapter).
    pub lose_positions: Arc<AtomicBool>,
}

impl Spy {
    pub fn reads(&self) -> usize {
        self.stream_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventStore for Spy {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if self.fail_appends.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("disk on fire".into()));
        }
        let mut out = self.inner.append(stream_id, expected, events).await?;
        if self.lose_positions.load(Ordering::SeqCst) {
            out.positions.clear();
        }
        if self.fail_after_commit.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("connection lost after commit".into()));
        }
        Ok(out)
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream(stream_id, from_version).await
    }

    async fn read_all(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(from, limit).await
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream_id).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
}
