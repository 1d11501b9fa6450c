//! The in-memory event store: complete storage semantics, nothing persisted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use super::{
    ActualVersion, AppendOutcome, EventStore, EventVisitor, ExpectedVersion, StoreError,
    validate_batch,
};
use crate::event::{NewEvent, RecordedEvent};

/// An event store held in process memory.
///
/// It implements the whole storage contract (expected versions, atomic batches,
/// idempotent re-append, a gapless global log) and is what tests and the `mem` benchmark
/// backend use. Cloning it shares the same store.
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
#[derive(Debug, Clone, Default)]
pub struct InMemoryEventStore {
    inner: Arc<RwLock<Global>>,
}

type Stream = Arc<RwLock<Vec<RecordedEvent>>>;

#[derive(Debug, Default)]
struct Global {
    streams: HashMap<Arc<str>, Stream>,
    /// The global log: `log[p - 1]` locates the event at position `p`.
    log: Vec<(Stream, u32)>,
    /// Event id → (stream, index in it), for idempotent re-append.
    ids: HashMap<Uuid, (Stream, u32)>,
}

fn poisoned() -> StoreError {
    StoreError::Backend("in-memory store lock poisoned by a panicking writer".into())
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
}

/// If the batch's first id is already stored, decides whether this is an exact re-send
/// (returns the original outcome) or a conflicting one (error). `ours` is the stream being
/// appended to, already locked by the caller.
fn replay_of(
    global: &Global,
    ours: (&Stream, &[RecordedEvent]),
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
    let dup = |event_id: Uuid, reason: String| StoreError::DuplicateEvent {
        event_id,
        stream_id: stream_id.to_owned(),
        reason,
    };
    if j != 0 {
        return Err(dup(
            events[j].event_id,
            "it is already committed, but the batch's first event is not".into(),
        ));
    }
    if !Arc::ptr_eq(stream, ours.0) {
        let other = stream.read().map_err(|_| poisoned())?;
        let first_event = &other[*first as usize];
        return Err(dup(
            first_event.event_id,
            format!("it is stored in stream `{}`", first_event.stream_id),
        ));
    }
    let stored = ours.1;
    let start = *first as usize;
    let mut positions = Vec::with_capacity(events.len());
    for (k, new) in events.iter().enumerate() {
        match stored.get(start + k) {
            Some(old) if new.same_content_as(old) => positions.push(old.position),
            Some(old) if old.event_id == new.event_id => {
                return Err(dup(new.event_id, "the stored content differs".into()));
            }
            _ => {
                return Err(dup(
                    new.event_id,
                    "only part of an already-committed batch was re-sent, or in another order"
                        .into(),
                ));
            }
        }
    }
    let last = &stored[start + events.len() - 1];
    Ok(Some(AppendOutcome {
        stream_version: last.version,
        positions,
        recorded_at: last.recorded_at,
        deduplicated: true,
    }))
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        validate_batch(stream_id, &events)?;
        // Lock order for writers: the stream, then the global state. Readers never hold
        // the global lock while they wait for a stream, so a slow reader of one stream
        // delays only writers of that stream.
        let (key, stream) = {
            let found = {
                let global = self.inner.read().map_err(|_| poisoned())?;
                global
                    .streams
                    .get_key_value(stream_id)
                    .map(|(k, s)| (k.clone(), s.clone()))
            };
            match found {
                Some(found) => found,
                None => {
                    let mut global = self.inner.write().map_err(|_| poisoned())?;
                    let key: Arc<str> = Arc::from(stream_id);
                    let stream = global.streams.entry(key.clone()).or_default().clone();
                    let key = global
                        .streams
                        .get_key_value(stream_id)
                        .map_or(key, |(k, _)| k.clone());
                    (key, stream)
                }
            }
        };
        let mut stored = stream.write().map_err(|_| poisoned())?;
        let mut global = self.inner.write().map_err(|_| poisoned())?;
        if let Some(outcome) = replay_of(&global, (&stream, &stored), stream_id, &events)? {
            return Ok(outcome);
        }
        let current = (!stored.is_empty()).then_some(stored.len() as u64);
        if !expected.matches(current) {
            return Err(StoreError::Concurrency {
                stream_id: stream_id.to_owned(),
                expected,
                actual: ActualVersion(current),
            });
        }
        let recorded_at = SystemTime::now();
        let mut positions = Vec::with_capacity(events.len());
        stored.reserve(events.len());
        for e in events {
            let index = stored.len() as u32;
            let position = global.log.len() as u64 + 1;
            positions.push(position);
            global.ids.insert(e.event_id, (stream.clone(), index));
            global.log.push((stream.clone(), index));
            stored.push(RecordedEvent {
                event_id: e.event_id,
                stream_id: key.clone(),
                version: u64::from(index) + 1,
                position,
                recorded_at,
                event_type: Arc::from(e.event_type),
                schema_version: e.schema_version,
                metadata: e.metadata,
                payload: e.payload,
            });
        }
        Ok(AppendOutcome {
            stream_version: stored.len() as u64,
            positions,
            recorded_at,
            deduplicated: false,
        })
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
        let skip = from_version.saturating_sub(1).min(stored.len() as u64) as usize;
        Ok(stored[skip..].to_vec())
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
        let skip = from_version.saturating_sub(1).min(stored.len() as u64) as usize;
        for event in &stored[skip..] {
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
        let located: Vec<(Stream, u32)> = {
            let global = self.inner.read().map_err(|_| poisoned())?;
            let start = from_position.saturating_sub(1).min(global.log.len() as u64) as usize;
            let end = start.saturating_add(limit).min(global.log.len());
            global.log[start..end].to_vec()
        };
        let mut out = Vec::with_capacity(located.len());
        for (stream, index) in located {
            let stored = stream.read().map_err(|_| poisoned())?;
            out.push(stored[index as usize].clone());
        }
        Ok(out)
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        let Some(stream) = self.stream(stream_id)? else {
            return Ok(None);
        };
        let stored = stream.read().map_err(|_| poisoned())?;
        Ok((!stored.is_empty()).then_some(stored.len() as u64))
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let global = self.inner.read().map_err(|_| poisoned())?;
        Ok(global.log.len() as u64)
    }
}
