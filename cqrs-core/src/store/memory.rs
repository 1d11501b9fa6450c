//! The in-memory event store: complete storage semantics, nothing persisted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use super::{
    ActualVersion, AppendOutcome, EventStore, ExpectedVersion, StoreError, validate_batch,
};
use crate::event::{NewEvent, RecordedEvent};

/// An event store held in process memory.
///
/// It implements the whole storage contract (expected versions, atomic batches,
/// idempotent re-append, a gapless global log) and is what tests and the `mem` benchmark
/// backend use. Cloning it shares the same store.
///
/// ```
/// use cqrs_core::store::InMemoryEventStore;
/// let store = InMemoryEventStore::new();
/// let same = store.clone();
/// # let _ = same;
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryEventStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The global log; `log[i]` has position `i + 1`.
    log: Vec<RecordedEvent>,
    /// Per stream, the log indices of its events in version order.
    streams: HashMap<Arc<str>, Vec<usize>>,
    /// Event id → log index, for idempotent re-append.
    ids: HashMap<Uuid, usize>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn poisoned() -> StoreError {
        StoreError::Backend("in-memory store lock poisoned by a panicking writer".into())
    }
}

impl Inner {
    /// If the batch's first id is already stored, decides whether this is an exact
    /// re-send (returns the original outcome) or a conflicting one (error).
    fn replay_of(
        &self,
        stream_id: &str,
        events: &[NewEvent],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let Some((j, &first)) = events
            .iter()
            .enumerate()
            .find_map(|(j, e)| self.ids.get(&e.event_id).map(|i| (j, i)))
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
        let first_event = &self.log[first];
        if &*first_event.stream_id != stream_id {
            return Err(dup(
                first_event.event_id,
                format!("it is stored in stream `{}`", first_event.stream_id),
            ));
        }
        let indices = &self.streams[stream_id];
        let start = (first_event.version - 1) as usize;
        let mut positions = Vec::with_capacity(events.len());
        for (k, new) in events.iter().enumerate() {
            let stored = indices.get(start + k).map(|&i| &self.log[i]);
            match stored {
                Some(stored) if new.same_content_as(stored) => positions.push(stored.position),
                Some(stored) if stored.event_id == new.event_id => {
                    return Err(dup(new.event_id, "the stored content differs".into()));
                }
                _ => {
                    return Err(dup(
                        new.event_id,
                        "only part of an already-committed batch was re-sent, or in another \
                         order"
                            .into(),
                    ));
                }
            }
        }
        let last = &self.log[indices[start + events.len() - 1]];
        Ok(Some(AppendOutcome {
            stream_version: last.version,
            positions,
            recorded_at: last.recorded_at,
            deduplicated: true,
        }))
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
        validate_batch(stream_id, &events)?;
        let mut inner = self.inner.write().map_err(|_| Self::poisoned())?;
        if let Some(outcome) = inner.replay_of(stream_id, &events)? {
            return Ok(outcome);
        }
        let current = inner.streams.get(stream_id).map(|s| s.len() as u64);
        if !expected.matches(current) {
            return Err(StoreError::Concurrency {
                stream_id: stream_id.to_owned(),
                expected,
                actual: ActualVersion(current),
            });
        }
        let inner = &mut *inner;
        let stream_key: Arc<str> = match inner.streams.get_key_value(stream_id) {
            Some((k, _)) => k.clone(),
            None => Arc::from(stream_id),
        };
        let recorded_at = SystemTime::now();
        let base_version = current.unwrap_or(0);
        let mut positions = Vec::with_capacity(events.len());
        let indices = inner.streams.entry(stream_key.clone()).or_default();
        for (k, e) in events.into_iter().enumerate() {
            let index = inner.log.len();
            positions.push(index as u64 + 1);
            inner.ids.insert(e.event_id, index);
            indices.push(index);
            inner.log.push(RecordedEvent {
                event_id: e.event_id,
                stream_id: stream_key.clone(),
                version: base_version + k as u64 + 1,
                position: index as u64 + 1,
                recorded_at,
                event_type: Arc::from(e.event_type),
                schema_version: e.schema_version,
                metadata: e.metadata,
                payload: e.payload,
            });
        }
        Ok(AppendOutcome {
            stream_version: indices.len() as u64,
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
        let inner = self.inner.read().map_err(|_| Self::poisoned())?;
        let Some(indices) = inner.streams.get(stream_id) else {
            return Ok(Vec::new());
        };
        let skip = from_version.saturating_sub(1).min(indices.len() as u64) as usize;
        Ok(indices[skip..]
            .iter()
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = self.inner.read().map_err(|_| Self::poisoned())?;
        let start = from_position.saturating_sub(1).min(inner.log.len() as u64) as usize;
        let end = start.saturating_add(limit).min(inner.log.len());
        Ok(inner.log[start..end].to_vec())
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        let inner = self.inner.read().map_err(|_| Self::poisoned())?;
        Ok(inner.streams.get(stream_id).map(|s| s.len() as u64))
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let inner = self.inner.read().map_err(|_| Self::poisoned())?;
        Ok(inner.log.len() as u64)
    }
}
