//! The storage contract every event store adapter implements, and the adapters.
//!
//! | adapter | module | feature |
//! |---|---|---|
//! | in-memory (tests, benchmarks) | [`memory`] | always |

pub mod memory;

use std::fmt;
use std::ops::ControlFlow;
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use crate::event::{NewEvent, RecordedEvent};

pub use memory::InMemoryEventStore;

/// What the writer believes about the stream before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream's last version must be exactly this (0 means "no stream").
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose current last version is `actual` (`None`: no stream)
    /// satisfies this expectation.
    ///
    /// ```
    /// use cqrs_core::ExpectedVersion::*;
    /// assert!(NoStream.matches(None));
    /// assert!(!NoStream.matches(Some(1)));
    /// assert!(StreamExists.matches(Some(1)));
    /// assert!(Exact(0).matches(None));
    /// assert!(Exact(2).matches(Some(2)));
    /// assert!(Any.matches(Some(7)));
    /// ```
    pub fn matches(self, actual: Option<u64>) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual.is_none(),
            Self::StreamExists => actual.is_some(),
            Self::Exact(v) => actual.unwrap_or(0) == v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// The actual state of a stream, as named in a concurrency error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActualVersion(pub Option<u64>);

impl fmt::Display for ActualVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("no stream"),
            Some(v) => write!(f, "version {v}"),
        }
    }
}

/// What an append committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's last version after the append.
    pub stream_version: u64,
    /// The global positions of the appended events, in batch order.
    pub positions: Vec<u64>,
    /// When the batch was recorded.
    pub recorded_at: SystemTime,
    /// True when the batch had already been committed (same event ids) and nothing was
    /// written this time.
    pub deduplicated: bool,
}

impl AppendOutcome {
    /// The version of the first event of the batch.
    pub fn first_version(&self) -> u64 {
        self.stream_version + 1 - self.positions.len() as u64
    }
}

/// A boxed error from a store's backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream is not at the expected version: someone else appended first.
    #[error("concurrency conflict on stream `{stream_id}`: expected {expected}, found {actual}")]
    Concurrency {
        /// The stream.
        stream_id: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// What the stream holds.
        actual: ActualVersion,
    },
    /// An event id that is already stored came back with other content, or in another
    /// stream, or only part of an already-committed batch was re-sent.
    #[error("event {event_id} in stream `{stream_id}` was already committed differently: {reason}")]
    DuplicateEvent {
        /// The event id.
        event_id: Uuid,
        /// The stream of the rejected batch.
        stream_id: String,
        /// What differs.
        reason: String,
    },
    /// The batch cannot be appended as given (empty, too large, ids repeated).
    #[error("invalid batch for stream `{stream_id}`: {reason}")]
    InvalidBatch {
        /// The stream.
        stream_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed (I/O, connection, corruption).
    #[error("event store backend failed: {0}")]
    Backend(#[source] BoxError),
}

/// What [`EventStore::read_stream_with`] calls for each event; `Break` stops the read.
pub type EventVisitor<'a> = dyn for<'e> FnMut(&'e RecordedEvent) -> ControlFlow<()> + Send + 'a;

/// Reads and appends events. Every adapter has the same semantics (see the storage
/// chapter of the book); `dyn EventStore` is how the runtime holds one.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::store::{EventStore, ExpectedVersion, InMemoryEventStore};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// enum Ping { Pinged { n: u32 } }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let e = NewEvent::encode(&Ping::Pinged { n: 1 }, &JsonCodec, Metadata::default()).unwrap();
/// let out = store.append("Ping-1", ExpectedVersion::NoStream, vec![e.clone()]).await.unwrap();
/// assert_eq!(out.stream_version, 1);
///
/// // Re-sending the same batch (same event ids) is idempotent.
/// let again = store.append("Ping-1", ExpectedVersion::NoStream, vec![e]).await.unwrap();
/// assert!(again.deduplicated);
///
/// let events = store.read_stream("Ping-1", 1).await.unwrap();
/// assert_eq!(events.len(), 1);
/// let decoded: Vec<Ping> = events[0].decode(&JsonCodec).unwrap();
/// # });
/// ```
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream_id` atomically if the stream matches `expected`.
    ///
    /// Re-sending a batch whose event ids are already committed, with the same content,
    /// succeeds with [`AppendOutcome::deduplicated`] set and writes nothing.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// The events of `stream_id` from version `from_version` (1-based, inclusive) to its
    /// end; empty if the stream does not exist.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Calls `visit` with each event of `stream_id` from version `from_version` on, in
    /// order, without collecting them; stops early when `visit` breaks. This is the load
    /// path of the runtime: an adapter that can lend its events (or decode rows as they
    /// arrive) should override it; the default reads the stream with
    /// [`read_stream`](Self::read_stream).
    async fn read_stream_with(
        &self,
        stream_id: &str,
        from_version: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        for event in &self.read_stream(stream_id, from_version).await? {
            if visit(event).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Up to `limit` events of the global log from position `from_position` (inclusive),
    /// in position order.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last version of `stream_id`, or `None` if it does not exist.
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError>;

    /// The position of the last committed event of the global log (0 when empty).
    async fn head_position(&self) -> Result<u64, StoreError>;
}

/// Checks a batch before it is written: not empty, no event id twice.
pub fn validate_batch(stream_id: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::InvalidBatch {
            stream_id: stream_id.to_owned(),
            reason: "a batch must hold at least one event".into(),
        });
    }
    // Small batches (the usual command) compare pairwise; large ones use a set, so a
    // big import stays linear.
    let repeated = if events.len() <= 16 {
        events
            .iter()
            .enumerate()
            .find(|(i, e)| events[..*i].iter().any(|o| o.event_id == e.event_id))
            .map(|(_, e)| e.event_id)
    } else {
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        events
            .iter()
            .map(|e| e.event_id)
            .find(|id| !seen.insert(*id))
    };
    match repeated {
        Some(id) => Err(StoreError::InvalidBatch {
            stream_id: stream_id.to_owned(),
            reason: format!("event id {id} appears twice in the batch"),
        }),
        None => Ok(()),
    }
}
