//! The in-memory event store: complete storage semantics, nothing persisted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use super::{
    ActualVersion, AppendOutcome, EventStore, EventVisitor, ExpectedVersion, RETENTION_STREAM,
    RetentionEvent, RetentionOutcome, StoreError, validate_batch,
};
use crate::event::{NewEvent, RecordedEvent};
use crate::projection::{
    ApplyFailure, BatchError, DeadLetter, Projection, ProjectionBatch, ProjectionState, ViewStore,
    apply_events,
};
use crate::snapshot::Snapshot;

/// An event store held in process memory.
///
/// It implements the whole storage contract (expected versions, atomic batches,
/// idempotent re-append, a global log in commit order, retention with tombstones and
/// markers, snapshots) and is what tests and the `mem` benchmark backend use. Cloning it
/// shares the same store.
///
/// Each stream keeps its events contiguously behind its own lock, so loading one
/// aggregate touches only its own events and never blocks writers of other streams.
///
/// ```
/// use cqrs_core::store::InMemoryEventStore;
/// let store = InMemoryEventStore::new();
/// let same = store.clone();
/// # let _ = same;
/// ```
#[derive(Debug, Clone)]
pub struct InMemoryEventStore {
    inner: Arc<RwLock<Global>>,
    snapshots: Arc<Mutex<HashMap<String, Snapshot>>>,
    views: Arc<Mutex<HashMap<String, Views>>>,
    head: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            snapshots: Arc::default(),
            views: Arc::default(),
            head: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

/// One projection's documents (per generation), checkpoint state and dead letters.
#[derive(Debug, Default)]
struct Views {
    state: ProjectionState,
    docs: HashMap<u32, BTreeMap<String, Bytes>>,
    dead: Vec<DeadLetter>,
}

impl Views {
    /// The checkpoint of `generation`, if it is written (active or rebuilding).
    fn checkpoint(&self, generation: u32) -> Option<u64> {
        if generation == self.state.active_generation {
            Some(self.state.position)
        } else {
            match self.state.rebuilding {
                Some((g, p)) if g == generation => Some(p),
                _ => None,
            }
        }
    }

    fn set_checkpoint(&mut self, generation: u32, position: u64) {
        if generation == self.state.active_generation {
            self.state.position = position;
        } else if let Some((g, p)) = &mut self.state.rebuilding
            && *g == generation
        {
            *p = position;
        }
    }

    /// Writes the documents `changed` (from `docs`) into `generation`.
    fn write(
        &mut self,
        generation: u32,
        changed: Vec<String>,
        docs: &mut HashMap<String, Option<Bytes>>,
    ) {
        let target = self.docs.entry(generation).or_default();
        for key in changed {
            match docs.remove(&key).flatten() {
                Some(doc) => {
                    target.insert(key, doc);
                }
                None => {
                    target.remove(&key);
                }
            }
        }
    }
}

type Stream = Arc<RwLock<StreamData>>;

#[derive(Debug)]
struct StreamData {
    id: Arc<str>,
    /// The version of `events[0]`: 1 unless the stream was truncated.
    first_version: u64,
    /// The last version ever appended (kept by truncation and deletion).
    version: u64,
    events: VecDeque<RecordedEvent>,
    deleted: bool,
}

impl StreamData {
    fn new(id: Arc<str>) -> Self {
        Self {
            id,
            first_version: 1,
            version: 0,
            events: VecDeque::new(),
            deleted: false,
        }
    }

    fn get(&self, version: u64) -> Option<&RecordedEvent> {
        let index = version.checked_sub(self.first_version)?;
        self.events.get(usize::try_from(index).ok()?)
    }

    /// The events from `from_version` on, or why they cannot be read.
    fn range(&self, from_version: u64) -> Result<impl Iterator<Item = &RecordedEvent>, StoreError> {
        if self.deleted {
            return Err(StoreError::StreamDeleted {
                stream_id: self.id.to_string(),
            });
        }
        let from = from_version.max(1);
        if from < self.first_version && from <= self.version {
            return Err(StoreError::StreamTruncated {
                stream_id: self.id.to_string(),
                first_version: self.first_version,
            });
        }
        let skip = (from - self.first_version.min(from)).min(self.events.len() as u64);
        Ok(self.events.range(skip as usize..))
    }

    fn current(&self) -> Option<u64> {
        (self.version > 0).then_some(self.version)
    }

    /// Removes the events before `before_version`, returning their ids.
    fn remove_before(&mut self, before_version: u64) -> Vec<Uuid> {
        let mut removed = Vec::new();
        while self.first_version < before_version {
            if let Some(e) = self.events.pop_front() {
                removed.push(e.event_id);
            }
            self.first_version += 1;
        }
        removed
    }
}

#[derive(Debug, Default)]
struct Global {
    streams: HashMap<Arc<str>, Stream>,
    /// The global log: `log[p - 1]` locates the event at position `p` by stream and
    /// version; entries of removed events stay, and readers skip them.
    log: Vec<(Stream, u64)>,
    /// Event id → (stream, version), for idempotent re-append.
    ids: HashMap<Uuid, (Stream, u64)>,
}

fn poisoned() -> StoreError {
    StoreError::Backend("in-memory store lock poisoned by a panicking writer".into())
}

/// A projection that writes its own SQL ([`Projection::sql`]) has nothing to write to here.
fn no_sql() -> StoreError {
    StoreError::Unsupported {
        operation: "projections that write their own SQL (use the SQLite or PostgreSQL store)",
    }
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn stream(&self, stream_id: &str) -> Result<Option<Stream>, StoreError> {
        let global = self.inner.read().map_err(|_| poisoned())?;
        Ok(global.streams.get(stream_id).cloned())
    }

    /// The stream `stream_id`, created empty if it does not exist.
    fn stream_or_new(&self, stream_id: &str) -> Result<Stream, StoreError> {
        if let Some(stream) = self.stream(stream_id)? {
            return Ok(stream);
        }
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        let key: Arc<str> = Arc::from(stream_id);
        Ok(global
            .streams
            .entry(key.clone())
            .or_insert_with(|| Arc::new(RwLock::new(StreamData::new(key))))
            .clone())
    }

    /// Appends a retention marker to [`RETENTION_STREAM`]; `global` is already locked,
    /// and so is the stream the retention touched. Only retention writes the retention
    /// stream, always under the global lock, and readers never hold the global lock while
    /// they wait for a stream: taking it last cannot deadlock.
    fn record_marker(
        &self,
        global: &mut Global,
        marker: &RetentionEvent,
    ) -> Result<u64, StoreError> {
        let retention = match global.streams.get(RETENTION_STREAM) {
            Some(s) => s.clone(),
            None => {
                let key: Arc<str> = Arc::from(RETENTION_STREAM);
                let s = Arc::new(RwLock::new(StreamData::new(key.clone())));
                global.streams.insert(key, s.clone());
                s
            }
        };
        let mut stored = retention.write().map_err(|_| poisoned())?;
        let outcome = write_batch(
            global,
            &retention,
            &mut stored,
            vec![marker.to_new_event()],
            SystemTime::now(),
        );
        Ok(outcome.positions[0])
    }
}

/// Appends `events` to `stored` (locked, known to accept them) and to the global log.
fn write_batch(
    global: &mut Global,
    stream: &Stream,
    stored: &mut StreamData,
    events: Vec<NewEvent>,
    recorded_at: SystemTime,
) -> AppendOutcome {
    let mut positions = Vec::with_capacity(events.len());
    stored.events.reserve(events.len());
    for e in events {
        let version = stored.version + 1;
        let position = global.log.len() as u64 + 1;
        positions.push(position);
        global.ids.insert(e.event_id, (stream.clone(), version));
        global.log.push((stream.clone(), version));
        stored.events.push_back(RecordedEvent {
            event_id: e.event_id,
            stream_id: stored.id.clone(),
            version,
            position,
            recorded_at,
            event_type: Arc::from(e.event_type),
            schema_version: e.schema_version,
            metadata: e.metadata,
            payload: e.payload,
        });
        stored.version = version;
    }
    AppendOutcome {
        stream_version: stored.version,
        positions,
        recorded_at,
        deduplicated: false,
    }
}

/// If the batch's first id is already stored, decides whether this is an exact re-send
/// (returns the original outcome) or a conflicting one (error). `ours` is the stream being
/// appended to, already locked by the caller.
fn replay_of(
    global: &Global,
    ours: (&Stream, &StreamData),
    stream_id: &str,
    events: &[NewEvent],
) -> Result<Option<AppendOutcome>, StoreError> {
    let Some((j, (stream, first))) = events
        .iter()
        .enumerate()
        .find_map(|(j, e)| global.ids.get(&e.event_id).map(|found| (j, found)))
    else {
        return Ok(None);
    };
    if Arc::ptr_eq(stream, ours.0) {
        super::check_resend_start(stream_id, events, j, stream_id)?;
    } else {
        let other = stream.read().map_err(|_| poisoned())?;
        super::check_resend_start(stream_id, events, j, &other.id)?;
    }
    let stored = ours.1;
    super::match_resend(stream_id, events, |k| Ok(stored.get(first + k as u64)))
}

fn forget_ids(global: &mut Global, ids: &[Uuid]) {
    for id in ids {
        global.ids.remove(id);
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_projected(stream_id, expected, events, &[])
            .await
    }

    async fn append_projected(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        projections: &[Arc<dyn Projection>],
    ) -> Result<AppendOutcome, StoreError> {
        validate_batch(stream_id, &events)?;
        if projections.iter().any(|p| p.sql().is_some()) {
            return Err(no_sql());
        }
        // Lock order for writers: the stream, then the global state. Readers never hold
        // the global lock while they wait for a stream, so a slow reader of one stream
        // delays only writers of that stream.
        let stream = self.stream_or_new(stream_id)?;
        let mut stored = stream.write().map_err(|_| poisoned())?;
        if stored.deleted {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        if let Some(outcome) = replay_of(&global, (&stream, &stored), stream_id, &events)? {
            return Ok(outcome);
        }
        let current = stored.current();
        if !expected.matches(current) {
            return Err(StoreError::Concurrency {
                stream_id: stream_id.to_owned(),
                expected,
                actual: ActualVersion(current),
            });
        }
        let recorded_at = SystemTime::now();
        if !projections.is_empty() {
            // Run the projections on the envelopes the batch is about to get, before
            // anything is written: a failure leaves events and views untouched.
            let first_position = global.log.len() as u64 + 1;
            let recorded: Vec<RecordedEvent> = events
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    super::recorded_from_new(
                        &stored.id,
                        e,
                        stored.version + 1 + k as u64,
                        first_position + k as u64,
                        recorded_at,
                    )
                })
                .collect();
            let mut views = self.views.lock().map_err(|_| poisoned())?;
            let mut writes = Vec::with_capacity(projections.len());
            for projection in projections {
                let name = projection.name();
                let view = views.get(name);
                let generation = view.map_or(0, |v| v.state.active_generation);
                let generation_docs = view.and_then(|v| v.docs.get(&generation));
                let mut docs = HashMap::new();
                let changed = apply_events(&**projection, &recorded, &mut docs, |key| {
                    Ok::<_, StoreError>(generation_docs.and_then(|d| d.get(key).cloned()))
                })
                .map_err(|failure| match failure {
                    ApplyFailure::Load(e) => e,
                    ApplyFailure::Projection { index, error } => StoreError::Projection {
                        projection: name.to_owned(),
                        stream_id: stream_id.to_owned(),
                        event_id: recorded[index].event_id,
                        source: error,
                    },
                })?;
                writes.push((name.to_owned(), generation, changed, docs));
            }
            for (name, generation, changed, mut docs) in writes {
                let view = views.entry(name).or_default();
                view.write(generation, changed, &mut docs);
            }
        }
        let outcome = write_batch(&mut global, &stream, &mut stored, events, recorded_at);
        if let Some(last) = outcome.positions.last() {
            self.head.send_replace(*last);
        }
        Ok(outcome)
    }

    fn commit_notifier(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.head.subscribe())
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Some(stream) = self.stream(stream_id)? else {
            return Ok(Vec::new());
        };
        let stored = stream.read().map_err(|_| poisoned())?;
        Ok(stored.range(from_version)?.cloned().collect())
    }

    async fn read_stream_with(
        &self,
        stream_id: &str,
        from_version: u64,
        visit: &mut EventVisitor<'_>,
    ) -> Result<(), StoreError> {
        let Some(stream) = self.stream(stream_id)? else {
            return Ok(());
        };
        let stored = stream.read().map_err(|_| poisoned())?;
        for event in stored.range(from_version)? {
            if visit(event).is_break() {
                break;
            }
        }
        Ok(())
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut next = from_position.max(1);
        // Removed events leave entries in the log: keep scanning past them, a chunk of
        // locations at a time, until `limit` events are found or the log ends.
        while out.len() < limit {
            let chunk: Vec<(Stream, u64)> = {
                let global = self.inner.read().map_err(|_| poisoned())?;
                let start = (next - 1).min(global.log.len() as u64) as usize;
                let end = start
                    .saturating_add(limit - out.len())
                    .min(global.log.len());
                global.log[start..end].to_vec()
            };
            if chunk.is_empty() {
                break;
            }
            next += chunk.len() as u64;
            for (stream, version) in chunk {
                let stored = stream.read().map_err(|_| poisoned())?;
                if !stored.deleted
                    && let Some(event) = stored.get(version)
                {
                    out.push(event.clone());
                }
            }
        }
        Ok(out)
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        let Some(stream) = self.stream(stream_id)? else {
            return Ok(None);
        };
        let stored = stream.read().map_err(|_| poisoned())?;
        if stored.deleted {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        Ok(stored.current())
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let global = self.inner.read().map_err(|_| poisoned())?;
        Ok(global.log.len() as u64)
    }

    async fn delete_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        if stream_id.starts_with('$') {
            return Err(StoreError::InvalidBatch {
                stream_id: stream_id.to_owned(),
                reason: "stream ids starting with `$` are reserved for the store".into(),
            });
        }
        let stream = self.stream_or_new(stream_id)?;
        let mut stored = stream.write().map_err(|_| poisoned())?;
        if stored.deleted {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        let current = stored.current();
        let exists_or_any = current.is_some() || expected == ExpectedVersion::Any;
        if !expected.matches(current) || !exists_or_any {
            return Err(StoreError::Concurrency {
                stream_id: stream_id.to_owned(),
                expected,
                actual: ActualVersion(current),
            });
        }
        let removed: Vec<Uuid> = stored.events.drain(..).map(|e| e.event_id).collect();
        stored.first_version = stored.version + 1;
        stored.deleted = true;
        self.snapshots
            .lock()
            .map_err(|_| poisoned())?
            .remove(stream_id);
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        forget_ids(&mut global, &removed);
        let marker = RetentionEvent::StreamDeleted {
            stream_id: stream_id.to_owned(),
            version: stored.version,
            removed: removed.len() as u64,
        };
        let position = self.record_marker(&mut global, &marker)?;
        Ok(RetentionOutcome {
            removed: removed.len() as u64,
            marker_position: Some(position),
        })
    }

    async fn truncate_stream(
        &self,
        stream_id: &str,
        before_version: u64,
    ) -> Result<RetentionOutcome, StoreError> {
        let Some(stream) = self.stream(stream_id)? else {
            return Ok(RetentionOutcome {
                removed: 0,
                marker_position: None,
            });
        };
        let mut stored = stream.write().map_err(|_| poisoned())?;
        if stored.deleted {
            return Err(StoreError::StreamDeleted {
                stream_id: stream_id.to_owned(),
            });
        }
        if before_version > stored.version + 1 {
            return Err(StoreError::InvalidBatch {
                stream_id: stream_id.to_owned(),
                reason: format!(
                    "cannot truncate before version {before_version}: the stream's version is {}",
                    stored.version
                ),
            });
        }
        let removed = stored.remove_before(before_version);
        if removed.is_empty() {
            return Ok(RetentionOutcome {
                removed: 0,
                marker_position: None,
            });
        }
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        forget_ids(&mut global, &removed);
        let marker = RetentionEvent::StreamTruncated {
            stream_id: stream_id.to_owned(),
            before_version,
            removed: removed.len() as u64,
        };
        let position = self.record_marker(&mut global, &marker)?;
        Ok(RetentionOutcome {
            removed: removed.len() as u64,
            marker_position: Some(position),
        })
    }

    async fn expire(&self, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        let streams: Vec<Stream> = {
            let global = self.inner.read().map_err(|_| poisoned())?;
            global
                .streams
                .iter()
                .filter(|(id, _)| !id.starts_with('$'))
                .map(|(_, s)| s.clone())
                .collect()
        };
        let mut removed = 0u64;
        for stream in streams {
            let mut stored = stream.write().map_err(|_| poisoned())?;
            // Recorded-at times grow along a stream: its expired events are a prefix.
            let keep_from = stored
                .events
                .iter()
                .find(|e| e.recorded_at >= recorded_before)
                .map_or(stored.version + 1, |e| e.version);
            let ids = stored.remove_before(keep_from);
            if !ids.is_empty() {
                removed += ids.len() as u64;
                let mut global = self.inner.write().map_err(|_| poisoned())?;
                forget_ids(&mut global, &ids);
            }
        }
        if removed == 0 {
            return Ok(RetentionOutcome {
                removed,
                marker_position: None,
            });
        }
        let millis = recorded_before
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        let marker = RetentionEvent::EventsExpired {
            recorded_before_ms: millis,
            removed,
        };
        let position = self.record_marker(&mut global, &marker)?;
        Ok(RetentionOutcome {
            removed,
            marker_position: Some(position),
        })
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        if let Some(stream) = self.stream(&snapshot.stream_id)?
            && stream.read().map_err(|_| poisoned())?.deleted
        {
            return Err(StoreError::StreamDeleted {
                stream_id: snapshot.stream_id.to_string(),
            });
        }
        let mut snapshots = self.snapshots.lock().map_err(|_| poisoned())?;
        match snapshots.get(&*snapshot.stream_id) {
            Some(newer) if newer.stream_version > snapshot.stream_version => {}
            _ => {
                snapshots.insert(snapshot.stream_id.to_string(), snapshot.clone());
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let snapshots = self.snapshots.lock().map_err(|_| poisoned())?;
        Ok(snapshots.get(stream_id).cloned())
    }
}

#[async_trait]
impl ViewStore for InMemoryEventStore {
    async fn load_doc(&self, projection: &str, key: &str) -> Result<Option<Bytes>, StoreError> {
        let views = self.views.lock().map_err(|_| poisoned())?;
        Ok(views.get(projection).and_then(|v| {
            v.docs
                .get(&v.state.active_generation)
                .and_then(|d| d.get(key).cloned())
        }))
    }

    async fn load_docs(&self, projection: &str) -> Result<Vec<(String, Bytes)>, StoreError> {
        let views = self.views.lock().map_err(|_| poisoned())?;
        Ok(views
            .get(projection)
            .and_then(|v| v.docs.get(&v.state.active_generation))
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn projection_state(&self, projection: &str) -> Result<ProjectionState, StoreError> {
        let views = self.views.lock().map_err(|_| poisoned())?;
        Ok(views.get(projection).map(|v| v.state).unwrap_or_default())
    }

    async fn commit_batch(&self, batch: ProjectionBatch<'_>) -> Result<(), BatchError> {
        if batch.projection.sql().is_some() {
            return Err(no_sql().into());
        }
        let name = batch.projection.name();
        let mut views = self.views.lock().map_err(|_| poisoned())?;
        let view = views.entry(name.to_owned()).or_default();
        let stored = view.checkpoint(batch.generation);
        if stored != Some(batch.from) {
            return Err(BatchError::Stale {
                stored,
                from: batch.from,
            });
        }
        let generation_docs = view.docs.get(&batch.generation);
        let mut docs = HashMap::new();
        let changed = apply_events(batch.projection, batch.events, &mut docs, |key| {
            Ok::<_, StoreError>(generation_docs.and_then(|d| d.get(key).cloned()))
        })
        .map_err(|failure| match failure {
            ApplyFailure::Load(e) => BatchError::Store(e),
            ApplyFailure::Projection { index, error } => BatchError::Apply {
                index,
                error: *error,
            },
        })?;
        view.write(batch.generation, changed, &mut docs);
        view.dead.retain(|d| {
            !(d.generation == batch.generation && batch.resolved.contains(&d.event_id))
        });
        for letter in batch.park {
            view.dead
                .retain(|d| !(d.generation == letter.generation && d.event_id == letter.event_id));
            view.dead.push(letter.clone());
        }
        view.dead.sort_by_key(|d| (d.position, d.generation));
        view.set_checkpoint(batch.generation, batch.checkpoint);
        Ok(())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let views = self.views.lock().map_err(|_| poisoned())?;
        Ok(views
            .get(projection)
            .map(|v| v.dead.clone())
            .unwrap_or_default())
    }

    async fn start_rebuild(&self, projection: &str) -> Result<u32, StoreError> {
        let mut views = self.views.lock().map_err(|_| poisoned())?;
        let view = views.entry(projection.to_owned()).or_default();
        let previous = view.state.rebuilding.map(|(g, _)| g);
        let generation = view.state.active_generation.max(previous.unwrap_or(0)) + 1;
        if let Some(old) = previous {
            view.docs.remove(&old);
            view.dead.retain(|d| d.generation != old);
        }
        view.state.rebuilding = Some((generation, 0));
        Ok(generation)
    }

    async fn activate(&self, projection: &str, generation: u32) -> Result<(), StoreError> {
        let mut views = self.views.lock().map_err(|_| poisoned())?;
        let view = views.entry(projection.to_owned()).or_default();
        let Some((rebuilding, position)) = view.state.rebuilding else {
            return Err(StoreError::Backend(
                format!("projection `{projection}` has no rebuild under way to activate").into(),
            ));
        };
        if rebuilding != generation {
            return Err(StoreError::Backend(
                format!(
                    "projection `{projection}` is rebuilding generation {rebuilding}, \
                     not {generation}"
                )
                .into(),
            ));
        }
        let old = view.state.active_generation;
        view.docs.remove(&old);
        view.dead.retain(|d| d.generation != old);
        view.state = ProjectionState {
            active_generation: generation,
            position,
            rebuilding: None,
        };
        Ok(())
    }
}
