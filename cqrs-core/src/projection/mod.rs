//! The read side: projections keep read models (views) up to date from the events.
//!
//! A [`Projection`] turns events into changes of *documents*: one JSON document per key
//! (by default the aggregate id), stored in the same backend as the events. Most users
//! never implement it by hand: `#[projection]` on the `impl` block of a view type
//! generates a [`View`], and [`ViewProjection`] runs it (see the book chapter "Read models
//! and projections").
//!
//! Two consistency modes, chosen per projection:
//!
//! * **inline** ([`CqrsBuilder::inline_projection`](crate::CqrsBuilder::inline_projection)):
//!   the documents change in the append's own transaction, so the caller of `execute`
//!   reads its own write, and a crash never separates events from their read model;
//! * **async** ([`ProjectionRunner`]): a catch-up subscription over the global log. The
//!   documents and the checkpoint are written in one transaction ([`ViewStore::commit_batch`]):
//!   delivery is at least once, the effect exactly once. The runner is woken by commits
//!   (in-process) and polls otherwise; [`RunnerHandle::wait_for`] gives read-your-writes
//!   on demand.
//!
//! Operations: rebuild into a new generation while the old one keeps serving
//! ([`RunnerHandle::rebuild`]), retries with backoff, a dead-letter store that keeps
//! per-stream order ([`DeadLetter`]), lag ([`RunnerHandle::lag`]), a tracing span per batch.
//!
//! A read model may instead write its own tables through the transaction it is given: a
//! [`SqlProjection`], run through [`Sql`] in either mode on SQLite and PostgreSQL.

mod runner;
mod saga;
mod sql;

pub use runner::{ProjectionRunner, RunnerHandle, RunnerOptions, WaitError};
pub use saga::{ProcessManager, SagaContext, SagaHandle, SagaRunner};
pub use sql::{Sql, SqlContext, SqlProjection};

use std::marker::PhantomData;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::codec::{Codec, JsonCodec};
use crate::event::{EventDecodeError, RecordedEvent};
use crate::store::StoreError;

/// What applying one event does to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocChange {
    /// Nothing changes.
    Unchanged,
    /// The document is created or replaced by these bytes (JSON).
    Put(Bytes),
    /// The document is removed.
    Delete,
}

/// Why a projection could not apply an event. The runner retries with backoff, then
/// parks the event in the dead-letter store with this reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The event could not be decoded (unknown type, no upcaster, corrupt payload).
    #[error(transparent)]
    Decode(#[from] EventDecodeError),
    /// The stored document could not be read or written as the view's type.
    #[error("document `{key}` of view `{view}`: {message}")]
    Document {
        /// The projection.
        view: String,
        /// The document key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A handler reported a failure.
    #[error("handler failed: {0}")]
    Handler(String),
    /// A handler panicked (caught; the message is the panic's).
    #[error("handler panicked: {0}")]
    Panicked(String),
    /// A [`SqlProjection`] met a store that gives it no SQL transaction (the in-memory
    /// store), or one whose backend method it does not implement.
    #[error("projection `{projection}` writes its own SQL, but {backend} cannot run it")]
    NoSql {
        /// The projection.
        projection: String,
        /// The backend ("SQLite", "PostgreSQL", "this store").
        backend: &'static str,
    },
}

/// A named read model updated from events: given the current document of the key an
/// event concerns, it returns the document's change. Pure and synchronous, so every
/// backend runs it inside its own transaction (inline in the append's, async in the
/// checkpoint's).
pub trait Projection: Send + Sync + 'static {
    /// Unique name: it names the view's documents, its checkpoint and its dead letters.
    /// Must match `^[a-z_][a-z0-9_]{0,62}$`.
    fn name(&self) -> &str;

    /// Whether `event` concerns this projection, decided on the envelope alone (stored
    /// type, stream): events it answers `false` for are skipped without being decoded.
    fn handles(&self, event: &RecordedEvent) -> bool;

    /// The key of the document `event` changes (by default the aggregate id: the part
    /// of the stream id after the first `-`).
    fn key(&self, event: &RecordedEvent) -> Result<String, ProjectionError> {
        Ok(aggregate_id(&event.stream_id).to_owned())
    }

    /// The change `event` makes to the document `current` (its JSON, `None` if absent).
    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError>;

    /// The projection's own SQL, if it writes tables instead of documents ([`Sql`]
    /// answers `Some`): SQL stores then run it in their transaction and never call
    /// [`apply`](Self::apply) or [`key`](Self::key).
    fn sql(&self) -> Option<std::sync::Arc<dyn SqlProjection>> {
        None
    }
}

/// The aggregate id of a stream id `<type>-<id>` (the whole id if there is no `-`).
pub fn aggregate_id(stream_id: &str) -> &str {
    stream_id.split_once('-').map_or(stream_id, |(_, id)| id)
}

/// A typed read model: one value of this type per key, stored as JSON. Generated by
/// `#[projection]` on the view type's `impl` block; run by [`ViewProjection`].
pub trait View: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// The projection's name (`#[projection(name = "...")]`).
    const NAME: &'static str;

    /// Whether the view handles events stored under this type name (current names,
    /// aliases and removed names of the handled variants).
    fn handles_type(event_type: &str) -> bool;

    /// The document key of `event` (default: the aggregate id).
    fn key(event: &RecordedEvent) -> Result<String, ProjectionError> {
        Ok(aggregate_id(&event.stream_id).to_owned())
    }

    /// Decodes `event` and runs its handlers on `view` (`None`: no document yet; a
    /// handler creates it from `Default`; a delete handler sets it back to `None`).
    fn apply_event<C: Codec>(
        view: &mut Option<Self>,
        event: &RecordedEvent,
        codec: &C,
    ) -> Result<(), ProjectionError>;
}

/// Runs a [`View`] as a [`Projection`]: reads the document as JSON, applies the event,
/// writes it back.
pub struct ViewProjection<V: View, C: Codec = JsonCodec> {
    codec: C,
    _view: PhantomData<fn() -> V>,
}

impl<V: View> ViewProjection<V> {
    /// The projection of `V`, decoding events with the JSON codec.
    pub fn new() -> Self {
        Self {
            codec: JsonCodec,
            _view: PhantomData,
        }
    }
}

impl<V: View> Default for ViewProjection<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: View, C: Codec> ViewProjection<V, C> {
    /// The projection of `V`, decoding events with `codec`.
    pub fn with_codec(codec: C) -> Self {
        Self {
            codec,
            _view: PhantomData,
        }
    }

    /// Decodes a stored document of this view.
    pub fn decode_doc(key: &str, doc: &[u8]) -> Result<V, ProjectionError> {
        serde_json::from_slice(doc).map_err(|e| ProjectionError::Document {
            view: V::NAME.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })
    }
}

impl<V: View, C: Codec> Projection for ViewProjection<V, C> {
    fn name(&self) -> &str {
        V::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        V::handles_type(&event.event_type)
    }

    fn key(&self, event: &RecordedEvent) -> Result<String, ProjectionError> {
        V::key(event)
    }

    fn apply(
        &self,
        current: Option<&[u8]>,
        event: &RecordedEvent,
    ) -> Result<DocChange, ProjectionError> {
        let key = || V::key(event).unwrap_or_default();
        let mut view = match current {
            Some(doc) => Some(Self::decode_doc(&key(), doc)?),
            None => None,
        };
        let existed = view.is_some();
        V::apply_event(&mut view, event, &self.codec)?;
        match view {
            Some(view) => serde_json::to_vec(&view)
                .map(|doc| DocChange::Put(Bytes::from(doc)))
                .map_err(|e| ProjectionError::Document {
                    view: V::NAME.to_owned(),
                    key: key(),
                    message: e.to_string(),
                }),
            None if existed => Ok(DocChange::Delete),
            None => Ok(DocChange::Unchanged),
        }
    }
}

/// An event a projection kept failing on, parked with its reason; later events of the
/// same stream wait behind it (parked too, with `blocked_by` set) until it is retried
/// or skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// The generation that parked it.
    pub generation: u32,
    /// The parked event's position in the global log.
    pub position: u64,
    /// Its event id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream_id: String,
    /// Its version in the stream.
    pub version: u64,
    /// Why it was parked (the last error), or for an event waiting behind another one
    /// of its stream, `waiting behind position N`.
    pub reason: String,
    /// How often it was tried.
    pub attempts: u32,
    /// The position of the failing event it waits behind (`None`: it failed itself).
    pub blocked_by: Option<u64>,
}

/// Where a projection stands in a [`ViewStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionState {
    /// The generation reads are served from (0 before the first batch).
    pub active_generation: u32,
    /// The last global position the active generation has processed (0: none).
    pub position: u64,
    /// A generation being rebuilt, and its position; it replaces the active one once it
    /// has caught up.
    pub rebuilding: Option<(u32, u64)>,
}

/// One atomic step of an async projection: apply `events` (in order; the store skips
/// those the projection does not handle), record `park` as dead letters, remove the
/// dead letters `resolved`, and move the generation's checkpoint to `checkpoint`, all in
/// one transaction.
pub struct ProjectionBatch<'a> {
    /// The projection.
    pub projection: &'a dyn Projection,
    /// The generation written (the active one, or the one being rebuilt).
    pub generation: u32,
    /// The generation's checkpoint this batch continues from: if the stored one differs
    /// (another runner of the same projection moved it), nothing is committed and the
    /// result is [`BatchError::Stale`].
    pub from: u64,
    /// Events to apply, in position order.
    pub events: &'a [RecordedEvent],
    /// Events to park instead of applying (not in `events`).
    pub park: &'a [DeadLetter],
    /// Dead letters (by event id) this batch resolves: applied from `events`, or skipped.
    pub resolved: &'a [Uuid],
    /// The new checkpoint: the last global position processed.
    pub checkpoint: u64,
}

/// Why [`ViewStore::commit_batch`] committed nothing.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The generation's stored checkpoint is not [`ProjectionBatch::from`], or the
    /// generation is neither active nor being rebuilt.
    #[error("stale batch: the stored checkpoint is {stored:?}, the batch continues from {from}")]
    Stale {
        /// The stored checkpoint (`None`: the generation is no longer written).
        stored: Option<u64>,
        /// The batch's [`ProjectionBatch::from`].
        from: u64,
    },
    /// The projection failed on `events[index]`.
    #[error("projection failed on event {index} of the batch: {error}")]
    Apply {
        /// Index into [`ProjectionBatch::events`].
        index: usize,
        /// The projection's error.
        error: ProjectionError,
    },
}

/// Documents, checkpoints and dead letters of projections, kept by the event store's own
/// backend (in-memory, SQLite, PostgreSQL), so that a batch of documents and its
/// checkpoint commit together.
#[async_trait]
pub trait ViewStore: Send + Sync + 'static {
    /// The document `key` of `projection`'s active generation.
    async fn load_doc(&self, projection: &str, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Every document of `projection`'s active generation, sorted by key.
    async fn load_docs(&self, projection: &str) -> Result<Vec<(String, Bytes)>, StoreError>;

    /// Where `projection` stands (all zero if it never ran).
    async fn projection_state(&self, projection: &str) -> Result<ProjectionState, StoreError>;

    /// Applies a batch and moves the checkpoint, atomically (see [`ProjectionBatch`]).
    /// A projection failure commits nothing and names the failing event.
    async fn commit_batch(&self, batch: ProjectionBatch<'_>) -> Result<(), BatchError>;

    /// The dead letters of `projection` (every generation), in position order.
    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError>;

    /// Starts rebuilding `projection` into a new, empty generation at position 0 and
    /// returns its number; the active generation keeps serving reads. A rebuild already
    /// under way is restarted.
    async fn start_rebuild(&self, projection: &str) -> Result<u32, StoreError>;

    /// Makes the rebuilt `generation` the active one and drops the old one's documents,
    /// in one transaction.
    async fn activate(&self, projection: &str, generation: u32) -> Result<(), StoreError>;
}

/// A [`ViewStore`] reading typed documents: `views.get::<AccountSummary>("acct-1")`.
#[async_trait]
pub trait ViewStoreExt: ViewStore {
    /// The document `key` of view `V`, decoded.
    async fn get<V: View>(&self, key: &str) -> Result<Option<V>, StoreError> {
        match self.load_doc(V::NAME, key).await? {
            Some(doc) => ViewProjection::<V>::decode_doc(key, &doc)
                .map(Some)
                .map_err(|e| StoreError::Backend(e.to_string().into())),
            None => Ok(None),
        }
    }

    /// Every document of view `V`, decoded, sorted by key.
    async fn all<V: View>(&self) -> Result<Vec<(String, V)>, StoreError> {
        self.load_docs(V::NAME)
            .await?
            .into_iter()
            .map(|(key, doc)| {
                ViewProjection::<V>::decode_doc(&key, &doc)
                    .map(|v| (key, v))
                    .map_err(|e| StoreError::Backend(e.to_string().into()))
            })
            .collect()
    }
}

impl<S: ViewStore + ?Sized> ViewStoreExt for S {}

/// Applies `events` to the documents held in `docs` (a batch-local cache loaded through
/// `load`), the way every backend does it: events the projection does not handle are
/// skipped undecoded; a failure names the event's index. Returns the changed keys in
/// first-change order. Adapters call this inside their transaction and then write
/// `docs[key]` for each returned key (`None`: delete).
pub fn apply_events<E>(
    projection: &dyn Projection,
    events: &[RecordedEvent],
    docs: &mut std::collections::HashMap<String, Option<Bytes>>,
    mut load: impl FnMut(&str) -> Result<Option<Bytes>, E>,
) -> Result<Vec<String>, ApplyFailure<E>> {
    let mut changed: Vec<String> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if !projection.handles(event) {
            continue;
        }
        let key = projection
            .key(event)
            .map_err(|error| ApplyFailure::Projection {
                index,
                error: Box::new(error),
            })?;
        if !docs.contains_key(&key) {
            let doc = load(&key).map_err(ApplyFailure::Load)?;
            docs.insert(key.clone(), doc);
        }
        let current = docs.get(&key).and_then(|d| d.as_deref());
        let change = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            projection.apply(current, event)
        }))
        .unwrap_or_else(|panic| Err(ProjectionError::Panicked(panic_message(&*panic))))
        .map_err(|error| ApplyFailure::Projection {
            index,
            error: Box::new(error),
        })?;
        let new = match change {
            DocChange::Unchanged => continue,
            DocChange::Put(doc) => Some(doc),
            DocChange::Delete => None,
        };
        if !changed.contains(&key) {
            changed.push(key.clone());
        }
        docs.insert(key, new);
    }
    Ok(changed)
}

/// Why [`apply_events`] stopped.
#[derive(Debug)]
pub enum ApplyFailure<E> {
    /// Loading a document failed.
    Load(E),
    /// The projection failed on `events[index]`.
    Projection {
        /// The index of the failing event.
        index: usize,
        /// The projection's error (boxed: the error path is rare, the `Ok` path hot).
        error: Box<ProjectionError>,
    },
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
