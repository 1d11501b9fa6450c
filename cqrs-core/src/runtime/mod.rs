//! The command runtime: load → handle → append → apply, with an aggregate cache,
//! conflict retries, middleware and tracing.

mod error;
mod middleware;
mod retry;

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::Mutex;
use tracing::Instrument;

pub use error::{CommandError, ReadError};
pub use middleware::{BoxFuture, CommandRequest, Middleware, Next};
pub use retry::RetryPolicy;

use crate::aggregate::Aggregate;
use crate::codec::{Codec, CodecError, JsonCodec};
use crate::command::Command;
use crate::event::{DomainEvent, EventEnvelope, Metadata, NewEvent, RecordedEvent};
use crate::projection::Projection;
use crate::snapshot::{Snapshot, SnapshotPolicy, SnapshotRead};
use crate::store::{EventStore, ExpectedVersion, StoreError};
use middleware::Core;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a command returns: the committed events, or why nothing was committed.
pub type CommandResult<A> =
    Result<Committed<<A as Aggregate>::Event>, CommandError<<A as Aggregate>::Error>>;

/// What a command committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    /// The stream the events were appended to.
    pub stream_id: Arc<str>,
    /// The stream's version after the command (unchanged if it produced no event).
    pub stream_version: u64,
    /// The committed events in order, with their ids, versions and positions.
    pub events: Vec<EventEnvelope<E>>,
}

/// An aggregate loaded from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state: the fold of every event of the stream.
    pub state: A,
    /// The stream's last version (0: no stream).
    pub version: u64,
    /// The version of the snapshot the load started from (`None`: it replayed the
    /// stream from its first event); `version - from_snapshot` events were replayed.
    pub from_snapshot: Option<u64>,
}

/// Converts something into the shared event store the runtime holds.
pub trait IntoEventStore {
    /// Wraps it.
    fn into_event_store(self) -> Arc<dyn EventStore>;
}

impl<S: EventStore> IntoEventStore for S {
    fn into_event_store(self) -> Arc<dyn EventStore> {
        Arc::new(self)
    }
}

impl IntoEventStore for Arc<dyn EventStore> {
    fn into_event_store(self) -> Arc<dyn EventStore> {
        self
    }
}

/// The command runtime of one aggregate type.
///
/// Built once with a store and optional services, cache size, retry policy and
/// middleware; cheap to clone and share between tasks. A command on a cached (hot)
/// aggregate costs one `handle` and one append: the aggregate is not replayed from the
/// store. Commands on the same aggregate instance in one process run one after the
/// other; commands on different instances run in parallel.
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum DoorEvent { Opened, Closed }
///
/// #[derive(Debug, Clone, PartialEq, Command)]
/// enum DoorCommand { Open, Close }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// enum DoorError { #[error("the door is already open")] AlreadyOpen }
///
/// #[derive(Debug, Default, Clone, PartialEq, Aggregate)]
/// #[aggregate(command = DoorCommand, event = DoorEvent, error = DoorError)]
/// struct Door { open: bool }
///
/// #[aggregate_impl]
/// impl Door {
///     #[handle]
///     fn open(&self) -> Result<DoorEvent, DoorError> {
///         if self.open { Err(DoorError::AlreadyOpen) } else { Ok(DoorEvent::Opened) }
///     }
///     #[handle]
///     fn close(&self) -> Option<DoorEvent> {
///         self.open.then_some(DoorEvent::Closed)
///     }
///     #[apply]
///     fn opened(&mut self) { self.open = true; }
///     #[apply]
///     fn closed(&mut self) { self.open = false; }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let doors = Cqrs::<Door>::builder(store.clone()).build();
///
/// let committed = doors.execute("front", DoorCommand::Open).await.unwrap();
/// assert_eq!(committed.stream_id.as_ref(), "Door-front");
/// assert_eq!(committed.events[0].event, DoorEvent::Opened);
///
/// let err = doors.execute("front", DoorCommand::Open).await.unwrap_err();
/// assert_eq!(err.rejection(), Some(&DoorError::AlreadyOpen));
///
/// let loaded = doors.load("front").await.unwrap();
/// assert!(loaded.state.open);
/// assert_eq!(loaded.version, 1);
/// # });
/// ```
pub struct Cqrs<A: Aggregate, C: Codec = JsonCodec> {
    inner: Arc<Inner<A, C>>,
}

impl<A: Aggregate, C: Codec> Clone for Cqrs<A, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<A: Aggregate, C> {
    store: Arc<dyn EventStore>,
    codec: C,
    services: A::Services,
    cache: Option<quick_cache::sync::Cache<String, Arc<Mutex<Slot<A>>>>>,
    retry: RetryPolicy,
    middleware: Vec<Arc<dyn Middleware<A>>>,
    enforce_invariants: bool,
    snapshots: Option<Snapshots<A, C>>,
    projections: Vec<Arc<dyn Projection>>,
}

/// The snapshot policy, with the encode and decode functions of a serialisable aggregate
/// (captured where the builder knows `A: Serialize + DeserializeOwned`).
struct Snapshots<A, C> {
    policy: SnapshotPolicy<A>,
    take: fn(Arc<str>, u64, &A, &C) -> Result<Snapshot, CodecError>,
    read: fn(&Snapshot, &C) -> SnapshotRead<A>,
}

/// One aggregate instance as the runtime holds it.
struct Slot<A> {
    stream_id: Arc<str>,
    state: A,
    version: u64,
    /// False until loaded, and after a failure that leaves the store's state unknown:
    /// the next command first reads the tail of the stream after `version`.
    fresh: bool,
    /// The stream version of the last snapshot taken or loaded.
    snapshot_version: u64,
}

/// Builds a [`Cqrs`].
pub struct CqrsBuilder<A: Aggregate, C: Codec = JsonCodec> {
    store: Arc<dyn EventStore>,
    codec: C,
    services: A::Services,
    cache_capacity: usize,
    retry: RetryPolicy,
    middleware: Vec<Arc<dyn Middleware<A>>>,
    enforce_invariants: bool,
    snapshots: Option<Snapshots<A, C>>,
    projections: Vec<Arc<dyn Projection>>,
}

impl<A: Aggregate> Cqrs<A>
where
    A::Services: Default,
{
    /// Starts building a runtime over `store`, with the aggregate's default services.
    pub fn builder(store: impl IntoEventStore) -> CqrsBuilder<A> {
        Self::builder_with_services(store, A::Services::default())
    }
}

impl<A: Aggregate> Cqrs<A> {
    /// Starts building a runtime over `store` whose handlers receive `services`.
    pub fn builder_with_services(
        store: impl IntoEventStore,
        services: A::Services,
    ) -> CqrsBuilder<A> {
        CqrsBuilder {
            store: store.into_event_store(),
            codec: JsonCodec,
            services,
            cache_capacity: 10_000,
            retry: RetryPolicy::default(),
            middleware: Vec::new(),
            enforce_invariants: A::ENFORCE_INVARIANTS,
            snapshots: None,
            projections: Vec::new(),
        }
    }
}

impl<A: Aggregate, C: Codec> CqrsBuilder<A, C> {
    /// How many aggregate instances to keep in memory (default 10,000); 0 turns the cache
    /// off, so every command replays its aggregate from the store.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The retry policy for concurrency conflicts (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Adds a middleware; the first added runs outermost.
    pub fn middleware(mut self, middleware: impl Middleware<A>) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Whether to refuse a command whose events would break one of the aggregate's
    /// invariants, before anything is appended (default:
    /// [`Aggregate::ENFORCE_INVARIANTS`], set by `#[aggregate(enforce_invariants)]`).
    /// Checking costs one predicate call per invariant and event; a refused command
    /// makes the next one reload the aggregate from the store.
    pub fn enforce_invariants(mut self, enforce: bool) -> Self {
        self.enforce_invariants = enforce;
        self
    }

    /// Takes snapshots of the aggregate under `policy` and loads from the newest usable
    /// one: a load reads the snapshot and only the events after it. A snapshot of another
    /// [`SNAPSHOT_VERSION`](Aggregate::SNAPSHOT_VERSION) or codec, or one that no longer
    /// decodes, is ignored (with a warning) and the state rebuilt from the events. Saving
    /// a snapshot happens after the command's append; if it fails, the command still
    /// succeeds and a warning is logged.
    ///
    /// ```
    /// # use cqrs_core::prelude::*;
    /// # use cqrs_core::snapshot::SnapshotPolicy;
    /// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    /// # enum E { Ticked }
    /// # #[derive(Debug, Clone, PartialEq, Command)]
    /// # enum C { Tick }
    /// # #[derive(Debug, thiserror::Error)]
    /// # #[error("no")]
    /// # struct Er;
    /// #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    /// #[aggregate(command = C, event = E, error = Er)]
    /// struct Clock { ticks: u64 }
    /// # #[aggregate_impl]
    /// # impl Clock {
    /// #     #[handle] fn tick(&self) -> E { E::Ticked }
    /// #     #[apply] fn ticked(&mut self) { self.ticks += 1 }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = InMemoryEventStore::new();
    /// let clocks = Cqrs::<Clock>::builder(store.clone())
    ///     .snapshots(SnapshotPolicy::every(10))
    ///     .build();
    /// for _ in 0..25 {
    ///     clocks.execute("c", C::Tick).await.unwrap();
    /// }
    /// let snap = store.load_snapshot("Clock-c").await.unwrap().unwrap();
    /// assert_eq!(snap.stream_version, 20);
    /// let loaded = clocks.load("c").await.unwrap();
    /// assert_eq!(loaded.state.ticks, 25);
    /// assert_eq!(loaded.from_snapshot, Some(20), "5 events replayed after the snapshot");
    /// # });
    /// ```
    pub fn snapshots(mut self, policy: SnapshotPolicy<A>) -> Self
    where
        A: Serialize + DeserializeOwned,
    {
        self.snapshots = Some(Snapshots {
            policy,
            take: |stream_id, version, state, codec| {
                Snapshot::take(stream_id, version, state, codec)
            },
            read: |snapshot, codec| snapshot.read::<A, C>(codec),
        });
        self
    }

    /// Adds an *inline* projection: its documents change in the same transaction as each
    /// command's append, so when `execute` returns, the read model already shows the
    /// command's events, and a crash never leaves one without the other. A projection
    /// that fails refuses the command ([`CommandError::Store`] with
    /// [`StoreError::Projection`]); nothing is written. Each inline projection costs work
    /// inside every append's transaction: keep them few and cheap, and use a
    /// [`ProjectionRunner`](crate::projection::ProjectionRunner) for the rest.
    ///
    /// The store must keep views ([`ViewStore`](crate::projection::ViewStore)): the
    /// in-memory, SQLite and PostgreSQL stores do.
    pub fn inline_projection(mut self, projection: impl Projection) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Uses another payload codec (default JSON).
    ///
    /// # Panics
    /// If [`snapshots`](Self::snapshots) was called before: snapshots are encoded with
    /// the codec, so choose the codec first.
    pub fn codec<C2: Codec>(self, codec: C2) -> CqrsBuilder<A, C2> {
        assert!(
            self.snapshots.is_none(),
            "CqrsBuilder: call .codec(..) before .snapshots(..): snapshots are encoded with the codec"
        );
        CqrsBuilder {
            store: self.store,
            codec,
            services: self.services,
            cache_capacity: self.cache_capacity,
            retry: self.retry,
            middleware: self.middleware,
            enforce_invariants: self.enforce_invariants,
            snapshots: None,
            projections: self.projections,
        }
    }

    /// Builds the runtime.
    pub fn build(self) -> Cqrs<A, C> {
        let cache =
            (self.cache_capacity > 0).then(|| quick_cache::sync::Cache::new(self.cache_capacity));
        Cqrs {
            inner: Arc::new(Inner {
                store: self.store,
                codec: self.codec,
                services: self.services,
                cache,
                retry: self.retry,
                middleware: self.middleware,
                enforce_invariants: self.enforce_invariants,
                snapshots: self.snapshots,
                projections: self.projections,
            }),
        }
    }
}

impl<A: Aggregate, C: Codec> Cqrs<A, C> {
    /// Runs `command` against aggregate instance `id` and returns what it committed.
    pub async fn execute(&self, id: &str, command: A::Command) -> CommandResult<A> {
        self.execute_with(id, command, Metadata::default()).await
    }

    /// Runs `command` with `metadata`, which every produced event carries.
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        metadata: Metadata,
    ) -> CommandResult<A> {
        let span = tracing::info_span!(
            "cqrs.command",
            aggregate = A::TYPE_NAME,
            aggregate_id = id,
            command = command.command_name(),
        );
        let inner = &*self.inner;
        let run = async move {
            let result = if inner.middleware.is_empty() {
                inner.run_command(id, command, metadata).await
            } else {
                let request = CommandRequest {
                    aggregate_id: id.to_owned(),
                    command,
                    metadata,
                };
                Next {
                    rest: &inner.middleware,
                    core: inner,
                }
                .run(request)
                .await
            };
            match &result {
                Ok(c) => tracing::debug!(
                    events = c.events.len(),
                    version = c.stream_version,
                    "committed"
                ),
                Err(e) => tracing::debug!(error = %e, "not committed"),
            }
            result
        };
        run.instrument(span).await
    }

    /// Appends facts that come from outside (another system's notifications, sensor
    /// readings) to aggregate `id` without a command: no handler decides, the events are
    /// appended at the end of the stream whatever its version (conflicts with concurrent
    /// writers are retried), applied to the cached state, projected by the inline
    /// projections, and checked against the invariants when they are enforced. For
    /// producers that cannot guarantee order, keep only the newest by timestamp in the
    /// aggregate's apply (`#[apply]` can ignore an event older than the state's).
    pub async fn ingest(
        &self,
        id: &str,
        events: Vec<A::Event>,
        metadata: Metadata,
    ) -> CommandResult<A> {
        let span = tracing::info_span!(
            "cqrs.ingest",
            aggregate = A::TYPE_NAME,
            aggregate_id = id,
            events = events.len()
        );
        self.inner
            .append_facts(id, events, metadata)
            .instrument(span)
            .await
    }

    /// [`ingest`](Self::ingest) of one external event given as JSON, its type name and
    /// schema version: it is validated by decoding it as the aggregate's event type
    /// (through the upcast chain, so an older producer's shape is lifted), and a payload
    /// that does not decode is [`CommandError::InvalidExternal`] naming the type and the
    /// reason; nothing is written, so the store is never polluted.
    pub async fn ingest_json(
        &self,
        id: &str,
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
        metadata: Metadata,
    ) -> CommandResult<A> {
        let events =
            A::Event::decode_json(event_type, schema_version, payload).map_err(|reason| {
                CommandError::InvalidExternal {
                    event_type: event_type.to_owned(),
                    reason,
                }
            })?;
        self.ingest(id, events, metadata).await
    }

    /// Runs a command on the aggregate its `#[command(id)]` field names.
    pub async fn execute_routed(&self, command: A::Command) -> CommandResult<A> {
        match command.aggregate_id() {
            Some(id) => self.execute(&id, command).await,
            None => Err(CommandError::Unrouted {
                command: command.command_name(),
            }),
        }
    }

    /// Loads aggregate instance `id` from the store (bypassing the cache): every event of
    /// its stream, decoded and applied in order.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, CommandError<A::Error>> {
        let mut slot = Slot::new(A::stream_id(id).into());
        self.inner.catch_up(&mut slot).await?;
        Ok(Loaded {
            state: slot.state,
            version: slot.version,
            from_snapshot: (slot.snapshot_version > 0).then_some(slot.snapshot_version),
        })
    }

    /// Reads up to `limit` events of the global log from `from_position` on (events of
    /// every aggregate count towards `limit`) and returns this aggregate's among them,
    /// each decoded through its upcast chain, with the position to read from next.
    ///
    /// A stored event of this aggregate that cannot be decoded stops the read with a
    /// [`ReadError::Decode`] naming it: it is never skipped silently.
    ///
    /// ```
    /// # use cqrs_core::prelude::*;
    /// # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
    /// # enum E { Happened { n: u32 } }
    /// # #[derive(Debug, Clone, PartialEq, Command)]
    /// # enum C { Do { n: u32 } }
    /// # #[derive(Debug, thiserror::Error)]
    /// # #[error("no")]
    /// # struct Er;
    /// # #[derive(Debug, Default, Aggregate)]
    /// # #[aggregate(command = C, event = E, error = Er)]
    /// # struct Thing;
    /// # #[aggregate_impl]
    /// # impl Thing {
    /// #     #[handle] fn r#do(&self, n: u32) -> E { E::Happened { n } }
    /// #     #[apply] fn happened(&mut self, n: &u32) { let _ = n; }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let things = Cqrs::<Thing>::builder(InMemoryEventStore::new()).build();
    /// things.execute("a", C::Do { n: 1 }).await.unwrap();
    /// things.execute("b", C::Do { n: 2 }).await.unwrap();
    ///
    /// let page = things.read_log(1, 100).await.unwrap();
    /// let ns: Vec<u32> = page.events.iter().map(|e| match e.event { E::Happened { n } => n }).collect();
    /// assert_eq!(ns, [1, 2]);
    /// assert_eq!(page.next_position, 3);
    /// # });
    /// ```
    pub async fn read_log(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<LogPage<A::Event>, ReadError> {
        let recorded = self.inner.store.read_all(from_position, limit).await?;
        let next_position = recorded.last().map_or(from_position, |e| e.position + 1);
        let mut events = Vec::with_capacity(recorded.len());
        for e in &recorded {
            let ours = e
                .stream_id
                .strip_prefix(A::TYPE_NAME)
                .is_some_and(|rest| rest.starts_with('-'));
            if ours {
                events.extend(e.decode_envelopes::<A::Event, C>(&self.inner.codec)?);
            }
        }
        Ok(LogPage {
            events,
            next_position,
        })
    }

    /// Takes and saves a snapshot of aggregate instance `id` now, whatever the policy
    /// (after a bulk import, say), and returns the stream version it reflects (0, and no
    /// snapshot, for an aggregate with no events). Needs [`CqrsBuilder::snapshots`]; without
    /// it the result is [`StoreError::Unsupported`].
    pub async fn snapshot(&self, id: &str) -> Result<u64, CommandError<A::Error>> {
        let inner = &*self.inner;
        let Some(snapshots) = &inner.snapshots else {
            return Err(CommandError::Store(StoreError::Unsupported {
                operation: "snapshots without a snapshot policy on the runtime",
            }));
        };
        let slot = inner.slot(id);
        let mut slot = slot.lock().await;
        let slot = &mut *slot;
        inner.catch_up(slot).await?;
        if slot.version == 0 {
            return Ok(0);
        }
        let snapshot = (snapshots.take)(
            slot.stream_id.clone(),
            slot.version,
            &slot.state,
            &inner.codec,
        )
        .map_err(|source| CommandError::Encode {
            event_type: "snapshot",
            source,
        })?;
        inner
            .store
            .save_snapshot(&snapshot)
            .await
            .map_err(CommandError::Store)?;
        slot.snapshot_version = slot.version;
        Ok(slot.version)
    }

    /// The payload codec events and snapshots are encoded with.
    pub fn codec(&self) -> &C {
        &self.inner.codec
    }

    /// The event store this runtime writes to.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.inner.store
    }

    /// The services handlers receive.
    pub fn services(&self) -> &A::Services {
        &self.inner.services
    }
}

/// A page of the global log, typed: see [`Cqrs::read_log`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage<E> {
    /// The aggregate's events in position order; an event an upcast split appears once
    /// per resulting event, all with its position.
    pub events: Vec<EventEnvelope<E>>,
    /// The position to read from next (past every stored event read, ours or not).
    pub next_position: u64,
}

impl<A: Aggregate> Slot<A> {
    fn new(stream_id: Arc<str>) -> Self {
        Self {
            stream_id,
            state: A::default(),
            version: 0,
            fresh: false,
            snapshot_version: 0,
        }
    }

    /// Forgets the state: the next use replays the stream from the start.
    fn reset(&mut self) {
        self.state = A::default();
        self.version = 0;
        self.fresh = false;
        self.snapshot_version = 0;
    }

    /// After a failed or doubtful append: read the stream's tail before the next command,
    /// or the whole stream if events were already applied to the state.
    fn invalidate(&mut self, applied: bool) {
        if applied {
            self.reset();
        } else {
            self.fresh = false;
        }
    }
}

impl<A: Aggregate, C: Codec> Core<A> for Inner<A, C> {
    fn run(&self, request: CommandRequest<A>) -> BoxFuture<'_, CommandResult<A>> {
        Box::pin(async move {
            self.run_command(&request.aggregate_id, request.command, request.metadata)
                .await
        })
    }
}

impl<A: Aggregate, C: Codec> Inner<A, C> {
    fn slot(&self, id: &str) -> Arc<Mutex<Slot<A>>> {
        let new = || Arc::new(Mutex::new(Slot::new(A::stream_id(id).into())));
        match &self.cache {
            Some(cache) => {
                match cache.get_or_insert_with(id, || Ok::<_, std::convert::Infallible>(new())) {
                    Ok(slot) => slot,
                    Err(never) => match never {},
                }
            }
            None => new(),
        }
    }

    /// Reads the events after `slot.version` and applies them, decoding each in place as
    /// the store lends it (no copy of the stream is made).
    async fn catch_up(&self, slot: &mut Slot<A>) -> Result<(), CommandError<A::Error>> {
        slot.fresh = false;
        if slot.version == 0 {
            self.restore_snapshot(slot).await?;
        }
        let mut failure = None;
        let from = slot.version + 1;
        let (state, version, stream_id) = (&mut slot.state, &mut slot.version, &slot.stream_id);
        let mut visit = |recorded: &RecordedEvent| {
            if recorded.version != *version + 1 {
                failure = Some(CommandError::Store(StoreError::Backend(
                    format!(
                        "stream `{stream_id}` jumps from version {} to {}",
                        *version, recorded.version
                    )
                    .into(),
                )));
                return ControlFlow::Break(());
            }
            // An upcast may turn one stored event into several or none; the stream
            // version is the stored one either way.
            match recorded
                .decode_with::<A::Event, C, _>(&self.codec, &mut |event| state.apply(&event))
            {
                Ok(()) => {
                    *version = recorded.version;
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(CommandError::Decode(e));
                    ControlFlow::Break(())
                }
            }
        };
        self.store
            .read_stream_with(stream_id, from, &mut visit)
            .await
            .map_err(CommandError::Store)?;
        match failure {
            Some(e) => Err(e),
            None => {
                slot.fresh = true;
                Ok(())
            }
        }
    }

    /// Starts an empty slot from the stream's snapshot, if there is a usable one.
    async fn restore_snapshot(&self, slot: &mut Slot<A>) -> Result<(), CommandError<A::Error>> {
        let Some(snapshots) = &self.snapshots else {
            return Ok(());
        };
        let Some(snapshot) = self
            .store
            .load_snapshot(&slot.stream_id)
            .await
            .map_err(CommandError::Store)?
        else {
            return Ok(());
        };
        match (snapshots.read)(&snapshot, &self.codec) {
            SnapshotRead::Usable(state) => {
                slot.state = state;
                slot.version = snapshot.stream_version;
                slot.snapshot_version = snapshot.stream_version;
            }
            SnapshotRead::OtherVersion { found, current } => tracing::warn!(
                stream_id = %slot.stream_id, found, current,
                "snapshot of another snapshot version ignored; rebuilding from events"
            ),
            SnapshotRead::OtherCodec { found, current } => tracing::warn!(
                stream_id = %slot.stream_id, %found, current,
                "snapshot written by another codec ignored; rebuilding from events"
            ),
            SnapshotRead::Corrupt(error) => tracing::warn!(
                stream_id = %slot.stream_id, %error,
                "snapshot does not decode; ignored, rebuilding from events \
                 (did the state's shape change without a new snapshot_version?)"
            ),
        }
        Ok(())
    }

    /// After a commit from `before` to the slot's version: takes and saves a snapshot if
    /// the policy says so. A failure is logged, never returned: the events are committed.
    async fn maybe_snapshot(&self, slot: &mut Slot<A>, before: u64) {
        let Some(snapshots) = &self.snapshots else {
            return;
        };
        if !snapshots
            .policy
            .due(&slot.state, before, slot.version, slot.snapshot_version)
        {
            return;
        }
        let taken = (snapshots.take)(
            slot.stream_id.clone(),
            slot.version,
            &slot.state,
            &self.codec,
        );
        let saved = match taken {
            Ok(snapshot) => self
                .store
                .save_snapshot(&snapshot)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match saved {
            Ok(()) => slot.snapshot_version = slot.version,
            Err(error) => tracing::warn!(
                stream_id = %slot.stream_id, version = slot.version, %error,
                "snapshot not saved"
            ),
        }
    }

    /// Checks the invariants (when enforced: the events are applied to the slot's
    /// state, so a failure resets the slot) and encodes `events` for an append at the
    /// slot's version: the batch, the expected version, the event ids.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        slot: &mut Slot<A>,
        events: &[A::Event],
        metadata: &Metadata,
    ) -> Result<(Vec<NewEvent>, ExpectedVersion, Vec<uuid::Uuid>), CommandError<A::Error>> {
        let applied = self.enforce_invariants;
        if applied {
            for event in events {
                if let Err(violation) = slot.state.apply_checked(event) {
                    slot.reset();
                    return Err(CommandError::Invariant { violation });
                }
            }
        }
        let mut batch = Vec::with_capacity(events.len());
        for event in events {
            let encoded = NewEvent::encode(event, &self.codec, metadata.clone());
            batch.push(encoded.map_err(|source| {
                if applied {
                    slot.reset();
                }
                CommandError::Encode {
                    event_type: event.event_type(),
                    source,
                }
            })?);
        }
        let expected = match slot.version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        let ids = batch.iter().map(|e| e.event_id).collect();
        Ok((batch, expected, ids))
    }

    /// Appends facts from outside (no command): at the end of the stream, whatever its
    /// version; conflicts with concurrent writers are retried on the new state.
    async fn append_facts(
        &self,
        id: &str,
        events: Vec<A::Event>,
        metadata: Metadata,
    ) -> CommandResult<A> {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        let slot = &mut *slot;
        if !slot.fresh {
            self.catch_up(slot).await?;
        }
        if events.is_empty() {
            return Ok(Committed {
                stream_id: slot.stream_id.clone(),
                stream_version: slot.version,
                events: Vec::new(),
            });
        }
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let applied = self.enforce_invariants;
            let (batch, expected, ids) = self.prepare(slot, &events, &metadata)?;
            match self
                .store
                .append_projected(&slot.stream_id, expected, batch, &self.projections)
                .await
            {
                Ok(outcome) if outcome.positions.len() == events.len() => {
                    let committed =
                        committed_envelopes(slot, events, &ids, &outcome, metadata, applied);
                    let before = slot.version;
                    slot.version = outcome.stream_version;
                    self.maybe_snapshot(slot, before).await;
                    return Ok(Committed {
                        stream_id: slot.stream_id.clone(),
                        stream_version: slot.version,
                        events: committed,
                    });
                }
                Ok(outcome) => {
                    slot.invalidate(applied);
                    return Err(CommandError::Store(StoreError::Backend(
                        format!(
                            "the store reported {} positions for a batch of {} events on `{}`",
                            outcome.positions.len(),
                            events.len(),
                            slot.stream_id
                        )
                        .into(),
                    )));
                }
                Err(StoreError::Concurrency {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    slot.invalidate(applied);
                    if attempts > self.retry.max_retries().max(FACT_ATTEMPTS) {
                        return Err(CommandError::Concurrency {
                            stream_id,
                            expected,
                            actual,
                            attempts,
                        });
                    }
                    self.catch_up(slot).await?;
                }
                Err(other) => {
                    slot.invalidate(applied);
                    return Err(CommandError::Store(other));
                }
            }
        }
    }

    async fn run_command(
        &self,
        id: &str,
        mut command: A::Command,
        metadata: Metadata,
    ) -> CommandResult<A> {
        let slot = self.slot(id);
        let mut slot = slot.lock().await;
        let slot = &mut *slot;
        // Whether the state was read from the store during this command; a state served
        // from the cache may miss another process's appends.
        let mut read_now = !slot.fresh;
        if read_now {
            self.catch_up(slot).await?;
        }
        let mut attempts = 0u32;
        let mut delays = None;
        loop {
            attempts += 1;
            // The command is consumed by `handle`; keep a copy only if a retry may need it.
            let retry_copy = (attempts <= self.retry.max_retries()).then(|| command.clone());
            let events = match slot.state.handle(command, &self.services).await {
                Ok(events) => events,
                Err(rejection) => {
                    // A rejection decided on a cached state is confirmed against the
                    // store (one version lookup, only on rejections): if another writer
                    // moved the stream, the command is decided again on the new state.
                    if !read_now && let Some(copy) = retry_copy {
                        let stored = self
                            .store
                            .stream_version(&slot.stream_id)
                            .await
                            .map_err(CommandError::Store)?;
                        if stored.unwrap_or(0) != slot.version {
                            read_now = true;
                            self.catch_up(slot).await?;
                            command = copy;
                            continue;
                        }
                    }
                    return Err(CommandError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                return Ok(Committed {
                    stream_id: slot.stream_id.clone(),
                    stream_version: slot.version,
                    events: Vec::new(),
                });
            }
            // Enforcing invariants applies the events before the append (no copy of the
            // state is made); any failure from here on leaves the slot to be rebuilt.
            let applied = self.enforce_invariants;
            let (batch, expected, ids) = self.prepare(slot, &events, &metadata)?;
            match self
                .store
                .append_projected(&slot.stream_id, expected, batch, &self.projections)
                .await
            {
                Ok(outcome) if outcome.positions.len() != events.len() => {
                    // A store must report one position per event; do not guess.
                    slot.invalidate(applied);
                    return Err(CommandError::Store(StoreError::Backend(
                        format!(
                            "the store reported {} positions for a batch of {} events on `{}`",
                            outcome.positions.len(),
                            events.len(),
                            slot.stream_id
                        )
                        .into(),
                    )));
                }
                Ok(outcome) => {
                    let committed =
                        committed_envelopes(slot, events, &ids, &outcome, metadata, applied);
                    let before = slot.version;
                    slot.version = outcome.stream_version;
                    self.maybe_snapshot(slot, before).await;
                    return Ok(Committed {
                        stream_id: slot.stream_id.clone(),
                        stream_version: slot.version,
                        events: committed,
                    });
                }
                Err(StoreError::Concurrency {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    slot.invalidate(applied);
                    let Some(copy) = retry_copy else {
                        return Err(CommandError::Concurrency {
                            stream_id,
                            expected,
                            actual,
                            attempts,
                        });
                    };
                    tracing::debug!(%stream_id, %expected, %actual, attempts, "conflict, retrying");
                    let delay = delays.get_or_insert_with(|| self.retry.delays()).next();
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    self.catch_up(slot).await?;
                    read_now = true;
                    command = copy;
                }
                Err(other) => {
                    // The append may or may not have committed: reload before the next command.
                    slot.invalidate(applied);
                    return Err(CommandError::Store(other));
                }
            }
        }
    }
}

/// How often appending external facts is tried against concurrent writers, at least.
const FACT_ATTEMPTS: u32 = 20;

/// The envelopes of `events` just committed by `outcome`, applying them to the slot's
/// state unless `applied` (invariant enforcement applied them before the append).
fn committed_envelopes<A: Aggregate>(
    slot: &mut Slot<A>,
    events: Vec<A::Event>,
    ids: &[uuid::Uuid],
    outcome: &crate::store::AppendOutcome,
    mut metadata: Metadata,
    applied: bool,
) -> Vec<EventEnvelope<A::Event>> {
    let first_version = slot.version + 1;
    let last = events.len().saturating_sub(1);
    let mut committed = Vec::with_capacity(events.len());
    for (k, event) in events.into_iter().enumerate() {
        if !applied {
            slot.state.apply(&event);
        }
        // This is the metadata's last use: the last envelope takes it.
        let metadata = if k == last {
            std::mem::take(&mut metadata)
        } else {
            metadata.clone()
        };
        committed.push(EventEnvelope {
            event_id: ids[k],
            stream_id: slot.stream_id.clone(),
            version: first_version + k as u64,
            position: outcome.positions[k],
            recorded_at: outcome.recorded_at,
            event_type: Cow::Borrowed(event.event_type()),
            schema_version: event.schema_version(),
            metadata,
            event,
        });
    }
    committed
}
