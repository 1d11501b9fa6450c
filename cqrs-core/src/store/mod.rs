//! The storage contract every event store adapter implements, and the adapters.
//!
//! | adapter | module | feature |
//! |---|---|---|
//! | in-memory (tests, benchmarks) | [`memory`] | always |
//! | SQLite (embedded, one file) | `sqlite` | `sqlite` |
//! | PostgreSQL (shared server, gap-free global log) | `postgres` | `postgres` |

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use crate::event::{NewEvent, RecordedEvent};
use crate::projection::Projection;
use crate::snapshot::Snapshot;

pub use memory::InMemoryEventStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresEventStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteEventStore;

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
    /// stream, or mixed with new events, or out of its stored order. (Re-sending any run
    /// of committed events in their order, with the same content, is idempotent: part
    /// of a batch, or several batches as one, is deduplicated.)
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
    /// The stream was deleted: its id is kept by a tombstone and cannot be reused.
    #[error("stream `{stream_id}` was deleted; its id cannot be reused")]
    StreamDeleted {
        /// The stream.
        stream_id: String,
    },
    /// The stream's events before `first_version` were removed (truncation or
    /// time-to-live) and a read asked for one of them.
    #[error(
        "stream `{stream_id}` was truncated: its first event is now version {first_version} \
         (load it from a snapshot at or after version {})", first_version.saturating_sub(1)
    )]
    StreamTruncated {
        /// The stream.
        stream_id: String,
        /// Its first remaining version.
        first_version: u64,
    },
    /// The store does not support this operation.
    #[error("this event store does not support {operation}")]
    Unsupported {
        /// The operation, e.g. "snapshots".
        operation: &'static str,
    },
    /// The backend failed (I/O, connection, corruption).
    #[error("event store backend failed: {0}")]
    Backend(#[source] BoxError),
    /// An inline projection failed on an event of the batch; nothing was committed.
    #[error(
        "inline projection `{projection}` failed on event {event_id} of `{stream_id}`: {source}"
    )]
    Projection {
        /// The projection.
        projection: String,
        /// The stream appended to.
        stream_id: String,
        /// The event it failed on.
        event_id: uuid::Uuid,
        /// Why.
        #[source]
        source: Box<crate::projection::ProjectionError>,
    },
}

/// What a retention operation removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// How many events it removed.
    pub removed: u64,
    /// The global position of the [`RetentionEvent`] that tells log readers about it
    /// (`None` when nothing was removed and nothing recorded).
    pub marker_position: Option<u64>,
}

/// The stream every retention operation records a marker in, so that readers of the
/// global log are told what disappeared. Stream ids starting with `$` are reserved.
pub const RETENTION_STREAM: &str = "$retention";

/// What a retention marker in [`RETENTION_STREAM`] says; decode its events with
/// [`RecordedEvent::decode`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RetentionEvent {
    /// A stream was deleted (and tombstoned) at `version`.
    StreamDeleted {
        /// The stream.
        stream_id: String,
        /// Its last version when deleted.
        version: u64,
        /// How many of its events were still stored and are now gone.
        removed: u64,
    },
    /// A stream's events before `before_version` were removed.
    StreamTruncated {
        /// The stream.
        stream_id: String,
        /// Its first remaining version.
        before_version: u64,
        /// How many events were removed.
        removed: u64,
    },
    /// Every event recorded before `recorded_before_ms` (milliseconds since the Unix
    /// epoch) was removed, across all streams.
    EventsExpired {
        /// The cut-off time.
        recorded_before_ms: u64,
        /// How many events were removed.
        removed: u64,
    },
}

impl crate::event::DomainEvent for RetentionEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["StreamDeleted", "StreamTruncated", "EventsExpired"];

    fn event_type(&self) -> &'static str {
        match self {
            Self::StreamDeleted { .. } => "StreamDeleted",
            Self::StreamTruncated { .. } => "StreamTruncated",
            Self::EventsExpired { .. } => "EventsExpired",
        }
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn decode_payload<C: crate::Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: crate::upcast::Payload<'_>,
        sink: &mut F,
    ) -> Result<(), crate::DecodeReason> {
        let index = Self::EVENT_TYPES
            .iter()
            .position(|t| *t == event_type)
            .ok_or_else(|| crate::__private::unknown_event_type::<Self>("RetentionEvent"))?;
        if schema_version != 1 {
            return Err(crate::DecodeReason::UnsupportedSchemaVersion {
                found: schema_version,
                oldest: 1,
                current: 1,
            });
        }
        sink(payload.read_variant(codec, index as u32)?);
        Ok(())
    }
}

impl RetentionEvent {
    /// The marker as a [`NewEvent`] (JSON payload), for adapters to append.
    pub fn to_new_event(&self) -> NewEvent {
        // Encoding three plain fields as JSON cannot fail.
        NewEvent::encode(self, &crate::JsonCodec, crate::Metadata::default())
            .expect("a retention marker encodes")
    }
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
    /// Re-sending events that are already committed, with the same content and in their
    /// stored order (the whole batch, part of it, or consecutive batches as one), succeeds
    /// with [`AppendOutcome::deduplicated`] set, the original positions, and writes
    /// nothing.
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
    /// in position order. Positions increase with commit order; where retention removed
    /// events they leave gaps, and a [`RetentionEvent`] marker in [`RETENTION_STREAM`]
    /// says what went.
    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last version of `stream_id`, or `None` if it does not exist.
    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError>;

    /// The position of the last committed event of the global log (0 when empty).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// Deletes `stream_id` if it matches `expected`: its events leave stream reads and the
    /// global log, its snapshot goes too, and a tombstone keeps its id, so that appending
    /// to it, reading it or asking its version gives [`StoreError::StreamDeleted`]. A
    /// [`RetentionEvent::StreamDeleted`] marker is recorded in [`RETENTION_STREAM`] in
    /// the same transaction. Deleting a stream that does not exist is a concurrency error
    /// unless `expected` is [`ExpectedVersion::Any`] (which tombstones the id anyway).
    async fn delete_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        let _ = (stream_id, expected);
        Err(StoreError::Unsupported {
            operation: "deleting streams",
        })
    }

    /// Removes the events of `stream_id` before version `before_version`. The stream
    /// keeps its version (the next append continues after it); reading from a removed
    /// version gives [`StoreError::StreamTruncated`]. Records a
    /// [`RetentionEvent::StreamTruncated`] marker when anything was removed.
    /// `before_version` may be at most the stream's version + 1 (which removes every
    /// event); beyond that is an [`StoreError::InvalidBatch`].
    async fn truncate_stream(
        &self,
        stream_id: &str,
        before_version: u64,
    ) -> Result<RetentionOutcome, StoreError> {
        let _ = (stream_id, before_version);
        Err(StoreError::Unsupported {
            operation: "truncating streams",
        })
    }

    /// Time to live: removes every event recorded before `recorded_before`, in every
    /// stream (the oldest of each, as a truncation would), and records one
    /// [`RetentionEvent::EventsExpired`] marker when anything was removed. Retention
    /// markers themselves are kept.
    async fn expire(&self, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        let _ = recorded_before;
        Err(StoreError::Unsupported {
            operation: "expiring events",
        })
    }

    /// Stores `snapshot`, replacing the stream's previous one unless that one reflects a
    /// later stream version (a late, older snapshot is ignored).
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let _ = snapshot;
        Err(StoreError::Unsupported {
            operation: "snapshots",
        })
    }

    /// The newest snapshot of `stream_id`, if any.
    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let _ = stream_id;
        Err(StoreError::Unsupported {
            operation: "snapshots",
        })
    }

    /// Appends like [`append`](Self::append) and, in the same transaction, applies the
    /// inline `projections` to the appended events (their documents in the active
    /// generation). Inline projections keep no checkpoint: they never lag, and taking
    /// one would serialise every append on one row. A
    /// projection failure commits nothing and is [`StoreError::Projection`]. A
    /// deduplicated re-send applies nothing (it was applied when first committed).
    async fn append_projected(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: &[Arc<dyn Projection>],
    ) -> Result<AppendOutcome, StoreError> {
        if projections.is_empty() {
            return self.append(stream_id, expected, events).await;
        }
        Err(StoreError::Unsupported {
            operation: "inline projections",
        })
    }

    /// A receiver of the head position, updated after every commit made through this
    /// store object (in this process), so that subscriptions wake on commits instead
    /// of polling; `None` if the store cannot tell (subscribers then poll).
    fn commit_notifier(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// The envelope `event` gets once stored at `version` and `position` (for adapters
/// running inline projections on a batch inside its transaction).
pub fn recorded_from_new(
    stream_id: &Arc<str>,
    event: &NewEvent,
    version: u64,
    position: u64,
    recorded_at: SystemTime,
) -> RecordedEvent {
    RecordedEvent {
        event_id: event.event_id,
        stream_id: stream_id.clone(),
        version,
        position,
        recorded_at,
        event_type: Arc::from(&*event.event_type),
        schema_version: event.schema_version,
        metadata: event.metadata.clone(),
        payload: event.payload.clone(),
    }
}

/// The shared preconditions of [`EventStore::truncate_stream`] on a stream at `version`
/// whose oldest kept event is `first_version` (`deleted`: tombstoned). `Ok(false)`: there
/// is nothing before `before_version` left to remove.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn check_truncate(
    stream_id: &str,
    before_version: u64,
    version: u64,
    first_version: u64,
    deleted: bool,
) -> Result<bool, StoreError> {
    if deleted {
        return Err(StoreError::StreamDeleted {
            stream_id: stream_id.to_owned(),
        });
    }
    if before_version > version + 1 {
        return Err(StoreError::InvalidBatch {
            stream_id: stream_id.to_owned(),
            reason: format!(
                "cannot truncate before version {before_version}: the stream is at version \
                 {version} (at most {} removes every event)",
                version + 1
            ),
        });
    }
    Ok(before_version > first_version)
}

/// The re-send rule, as every adapter applies it once an event id of `events` is found
/// stored: `first_found` is the index in the batch of the first stored one, and
/// `stored_stream` the stream it is stored in. A re-send must start with the batch's
/// first event, in the same stream; anything else is [`StoreError::DuplicateEvent`].
pub(crate) fn check_resend_start(
    stream_id: &str,
    events: &[NewEvent],
    first_found: usize,
    stored_stream: &str,
) -> Result<(), StoreError> {
    if first_found != 0 {
        return Err(StoreError::DuplicateEvent {
            event_id: events[first_found].event_id,
            stream_id: stream_id.to_owned(),
            reason: "it is already committed, but the batch's first event is not".into(),
        });
    }
    if stored_stream != stream_id {
        return Err(StoreError::DuplicateEvent {
            event_id: events[0].event_id,
            stream_id: stream_id.to_owned(),
            reason: format!("it is stored in stream `{stored_stream}`"),
        });
    }
    Ok(())
}

/// The re-send rule, second part: the stored run from the batch's first event on
/// (`stored(k)` is the `k`-th stored event after it, `None` past the stream's end)
/// must equal the batch, event for event. Then the outcome is the original one,
/// `deduplicated`; otherwise [`StoreError::DuplicateEvent`] says what differs.
pub(crate) fn match_resend<E: std::borrow::Borrow<RecordedEvent>>(
    stream_id: &str,
    events: &[NewEvent],
    mut stored: impl FnMut(usize) -> Result<Option<E>, StoreError>,
) -> Result<Option<AppendOutcome>, StoreError> {
    let dup = |event_id, reason: &str| StoreError::DuplicateEvent {
        event_id,
        stream_id: stream_id.to_owned(),
        reason: reason.to_owned(),
    };
    let mut positions = Vec::with_capacity(events.len());
    let mut last = None;
    for (k, new) in events.iter().enumerate() {
        let old = stored(k)?;
        match old.as_ref().map(|e| e.borrow()) {
            Some(old) if new.same_content_as(old) => {
                positions.push(old.position);
                last = Some((old.version, old.recorded_at));
            }
            Some(old) if old.event_id == new.event_id => {
                return Err(dup(new.event_id, "the stored content differs"));
            }
            _ => {
                return Err(dup(
                    new.event_id,
                    "only part of an already-committed batch was re-sent, or in another order",
                ));
            }
        }
    }
    Ok(last.map(|(stream_version, recorded_at)| AppendOutcome {
        stream_version,
        positions,
        recorded_at,
        deduplicated: true,
    }))
}

/// Checks a batch before it is written: not empty, no event id twice, not a reserved
/// (`$`-prefixed) stream.
pub fn validate_batch(stream_id: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    if stream_id.starts_with('$') {
        return Err(StoreError::InvalidBatch {
            stream_id: stream_id.to_owned(),
            reason: "stream ids starting with `$` are reserved for the store".into(),
        });
    }
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
