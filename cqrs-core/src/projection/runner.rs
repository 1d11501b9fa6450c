//! The async projection runner: a catch-up subscription over the global log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use super::{BatchError, DeadLetter, Projection, ProjectionBatch, ProjectionState, ViewStore};
use crate::event::RecordedEvent;
use crate::store::{EventStore, StoreError};

/// How a [`ProjectionRunner`] reads, retries and waits.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events read from the log per batch (default 500); one transaction per batch.
    pub batch_size: usize,
    /// How often to look for new events when no commit notification arrives (default
    /// 500 ms): commits through the same store object wake the runner at once; commits
    /// by other processes are seen within this interval.
    pub poll_interval: Duration,
    /// How often a failing batch is tried before its failing event is parked (default 5).
    pub max_attempts: u32,
    /// The first retry delay, doubled after each failure (default 10 ms, at most 1 s).
    pub backoff: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            max_attempts: 5,
            backoff: Duration::from_millis(10),
        }
    }
}

/// Why [`RunnerHandle::wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The projection did not reach the position in time.
    #[error(
        "projection `{projection}` did not reach position {position} within {timeout:?} \
         (it is at {reached})"
    )]
    Timeout {
        /// The projection waited on.
        projection: String,
        /// The position waited for.
        position: u64,
        /// Where the projection got to.
        reached: u64,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The runner stopped (or failed) before reaching the position.
    #[error("projection `{projection}` stopped at position {reached} before reaching {position}")]
    Stopped {
        /// The projection waited on.
        projection: String,
        /// The position waited for.
        position: u64,
        /// Where the projection got to.
        reached: u64,
    },
}

/// A catch-up subscription that keeps one [`Projection`] up to date from the global
/// log: it reads batches after its checkpoint and commits each batch's document changes
/// together with the new checkpoint ([`ViewStore::commit_batch`]), so a crash at any
/// point repeats at most the uncommitted batch and never applies an event twice.
///
/// A batch that fails is retried with exponential backoff; after
/// [`RunnerOptions::max_attempts`] the failing event is parked in the dead-letter store
/// with its reason, and the later events of its stream are parked behind it (per-stream
/// order is kept) until [`RunnerHandle::retry`] or [`RunnerHandle::skip`]. Other streams
/// go on.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    projection: Arc<dyn Projection>,
    options: RunnerOptions,
}

impl ProjectionRunner {
    /// A runner of `projection` over `store`, which also keeps the views.
    pub fn new<S>(store: S, projection: impl Projection) -> Self
    where
        S: EventStore + ViewStore + Clone,
    {
        Self::from_parts(
            Arc::new(store.clone()),
            Arc::new(store),
            Arc::new(projection),
        )
    }

    /// A runner from shared parts (the event store and the view store must be the same
    /// backend for the checkpoint to be meaningful).
    pub fn from_parts(
        store: Arc<dyn EventStore>,
        views: Arc<dyn ViewStore>,
        projection: Arc<dyn Projection>,
    ) -> Self {
        Self {
            store,
            views,
            projection,
            options: RunnerOptions::default(),
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Starts the runner on the current tokio runtime.
    pub fn spawn(self) -> RunnerHandle {
        let name = self.projection.name().to_owned();
        let (position_tx, position_rx) = watch::channel(0u64);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (rebuild_tx, rebuild_rx) = watch::channel(0u64);
        let core = Arc::new(Core {
            store: self.store,
            views: self.views,
            projection: self.projection,
            options: self.options,
            position: position_tx,
            lock: Mutex::new(()),
        });
        let task = tokio::spawn(core.clone().run(stop_rx, rebuild_rx));
        RunnerHandle {
            name,
            core,
            position: position_rx,
            rebuild: rebuild_tx,
            task: Task::new(stop_tx, task),
        }
    }

    /// Catches the projection up with the head of the log once, in this task, and
    /// returns how many events it read (for tools and tests; a running
    /// [`RunnerHandle`] does this continuously).
    pub async fn catch_up(&self) -> Result<u64, StoreError> {
        let (position, _) = watch::channel(0);
        let core = Core {
            store: self.store.clone(),
            views: self.views.clone(),
            projection: self.projection.clone(),
            options: self.options.clone(),
            position,
            lock: Mutex::new(()),
        };
        let state = core.views.projection_state(core.projection.name()).await?;
        let mut read = 0;
        loop {
            let n = core.step(state.active_generation).await?;
            if n == 0 {
                return Ok(read);
            }
            read += n;
        }
    }
}

/// Controls a running [`ProjectionRunner`]; dropping it stops the runner.
pub struct RunnerHandle {
    name: String,
    core: Arc<Core>,
    position: watch::Receiver<u64>,
    rebuild: watch::Sender<u64>,
    task: Task,
}

/// A spawned runner's task and its stop signal (of a [`RunnerHandle`] or a
/// [`SagaHandle`](super::SagaHandle)): dropped, it tells the task to stop.
pub(super) struct Task {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Task {
    pub(super) fn new(stop: watch::Sender<bool>, task: JoinHandle<Result<(), StoreError>>) -> Self {
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Kills the task at once.
    pub(super) fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Tells the task to stop and waits for it; its error if it failed.
    pub(super) async fn stop(&mut self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string().into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl RunnerHandle {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last global position the active generation has processed.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the projection has processed the global log up to `position` (e.g.
    /// the position `execute` returned), so that a read of the view sees that write.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.position.clone();
        let reached = |rx: &watch::Receiver<u64>| *rx.borrow();
        let wait = async {
            loop {
                if *rx.borrow_and_update() >= position {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(());
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(WaitError::Stopped {
                projection: self.name.clone(),
                position,
                reached: reached(&self.position),
            }),
            Err(_) => Err(WaitError::Timeout {
                projection: self.name.clone(),
                position,
                reached: reached(&self.position),
                timeout,
            }),
        }
    }

    /// How many positions the projection is behind the head of the log.
    pub async fn lag(&self) -> Result<u64, StoreError> {
        let head = self.core.store.head_position().await?;
        let state = self
            .core
            .views
            .projection_state(self.core.projection.name())
            .await?;
        Ok(head.saturating_sub(state.position))
    }

    /// Where the projection stands (generations, checkpoints).
    pub async fn state(&self) -> Result<ProjectionState, StoreError> {
        self.core
            .views
            .projection_state(self.core.projection.name())
            .await
    }

    /// Rebuilds the projection from position 0 into a new generation; the current one
    /// keeps serving reads (and keeps being updated) until the new one has caught up,
    /// then the new one replaces it in one transaction.
    pub async fn rebuild(&self) -> Result<u32, StoreError> {
        let generation = {
            let _guard = self.core.lock.lock().await;
            self.core
                .views
                .start_rebuild(self.core.projection.name())
                .await?
        };
        self.rebuild.send_modify(|n| *n += 1);
        Ok(generation)
    }

    /// The parked events of this projection (the active generation's and a rebuild's).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.core
            .views
            .dead_letters(self.core.projection.name())
            .await
    }

    /// Applies the parked event `event_id` again, and after it the events of its stream
    /// parked behind it, in order. If one fails again it stays parked (with the new
    /// reason) and the error is returned.
    pub async fn retry(&self, event_id: Uuid) -> Result<(), StoreError> {
        self.core.resolve(event_id, false).await
    }

    /// Drops the parked event `event_id` without applying it, then applies the events
    /// of its stream parked behind it, in order.
    pub async fn skip(&self, event_id: Uuid) -> Result<(), StoreError> {
        self.core.resolve(event_id, true).await
    }

    /// Kills the runner at once, wherever it is (what a crash does): a batch being
    /// committed either commits whole or not at all; the next runner resumes from the
    /// stored checkpoint.
    pub fn abort(mut self) {
        self.task.abort();
    }

    /// Stops the runner and waits for it; returns its error if it failed.
    pub async fn stop(mut self) -> Result<(), StoreError> {
        self.task.stop().await
    }
}

struct Core {
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    projection: Arc<dyn Projection>,
    options: RunnerOptions,
    position: watch::Sender<u64>,
    /// Serialises the runner's batches with explicit retries and rebuild starts.
    lock: Mutex<()>,
}

impl Core {
    async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        mut rebuild: watch::Receiver<u64>,
    ) -> Result<(), StoreError> {
        let mut commits = self.store.commit_notifier();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let state = self.views.projection_state(self.projection.name()).await?;
            self.position.send_replace(state.position);
            let mut read = self.step(state.active_generation).await?;
            if let Some((generation, _)) = state.rebuilding {
                read += self.step(generation).await?;
                let now = self.views.projection_state(self.projection.name()).await?;
                if let Some((generation, position)) = now.rebuilding
                    && position >= now.position
                {
                    // Caught up: nothing the active generation has seen is missing.
                    let _guard = self.lock.lock().await;
                    let again = self.views.projection_state(self.projection.name()).await?;
                    if again.rebuilding == Some((generation, position))
                        && position >= again.position
                    {
                        self.views
                            .activate(self.projection.name(), generation)
                            .await?;
                        tracing::info!(
                            projection = self.projection.name(),
                            generation,
                            position,
                            "rebuild caught up and activated"
                        );
                        self.position.send_replace(position);
                    }
                    continue;
                }
            }
            if read > 0 {
                continue;
            }
            // Idle: wait for a commit, a rebuild request, a stop, or the poll interval.
            tokio::select! {
                _ = idle(self.options.poll_interval, &mut commits) => {}
                _ = stop.changed() => {}
                _ = rebuild.changed() => {}
            }
        }
    }

    /// Reads one batch after `generation`'s checkpoint and commits it (with retries and
    /// parking); returns how many events it read (0: at the head).
    async fn step(&self, generation: u32) -> Result<u64, StoreError> {
        let _guard = self.lock.lock().await;
        let name = self.projection.name();
        let state = self.views.projection_state(name).await?;
        let from = if generation == state.active_generation {
            state.position
        } else {
            match state.rebuilding {
                Some((g, p)) if g == generation => p,
                _ => return Ok(0),
            }
        };
        let page = self
            .store
            .read_all(from + 1, self.options.batch_size)
            .await?;
        let Some(last) = page.last().map(|e| e.position) else {
            return Ok(0);
        };
        let read = page.len() as u64;
        let span = tracing::info_span!(
            "cqrs.projection.batch",
            projection = name,
            generation,
            from,
            events = read
        );
        async {
            // Streams with a parked event: their later events wait behind it.
            let mut blocked: HashMap<String, u64> = HashMap::new();
            for letter in self.views.dead_letters(name).await? {
                if letter.generation == generation {
                    let head = letter.blocked_by.unwrap_or(letter.position);
                    blocked.entry(letter.stream_id).or_insert(head);
                }
            }
            let mut apply = Vec::new();
            let mut park = Vec::new();
            for event in page {
                if !self.projection.handles(&event) {
                    continue;
                }
                match blocked.get(&*event.stream_id) {
                    Some(head) => park.push(waiting(name, generation, &event, *head)),
                    None => apply.push(event),
                }
            }
            let active = generation == state.active_generation;
            self.commit(generation, active, from, apply, park, last)
                .await
        }
        .instrument(span)
        .await?;
        Ok(read)
    }

    /// Commits `apply` (parking `park`) and moves the checkpoint to `checkpoint`; a
    /// failing event is retried with backoff, then parked with the later events of its
    /// stream in this batch.
    /// `active`: whether `generation` is the one serving reads (its new checkpoint is
    /// then what [`RunnerHandle::wait_for`] sees).
    async fn commit(
        &self,
        generation: u32,
        active: bool,
        mut from: u64,
        mut apply: Vec<RecordedEvent>,
        mut park: Vec<DeadLetter>,
        checkpoint: u64,
    ) -> Result<(), StoreError> {
        let name = self.projection.name();
        let mut attempts = 0u32;
        let mut failing: Option<Uuid> = None;
        let mut delay = self.options.backoff;
        loop {
            let batch = ProjectionBatch {
                projection: &*self.projection,
                generation,
                from,
                events: &apply,
                park: &park,
                resolved: &[],
                checkpoint,
            };
            match self.views.commit_batch(batch).await {
                Ok(()) => {
                    // The committed checkpoint is the active generation's position: no
                    // need to read it back.
                    if active {
                        self.position.send_replace(checkpoint);
                    }
                    return Ok(());
                }
                Err(BatchError::Store(e)) => return Err(e),
                Err(BatchError::Stale { .. }) => {
                    // Another runner of this projection moved on: start over from the
                    // stored checkpoint.
                    tracing::warn!(projection = name, "checkpoint moved by another runner");
                    return Ok(());
                }
                Err(BatchError::Apply { index, error }) => {
                    let event = &apply[index];
                    // Attempts count per failing event: a batch that fails on a new
                    // event each time is making progress.
                    if failing != Some(event.event_id) {
                        failing = Some(event.event_id);
                        attempts = 0;
                        delay = self.options.backoff;
                    }
                    attempts += 1;
                    if attempts < self.options.max_attempts {
                        tracing::warn!(
                            projection = name,
                            position = event.position,
                            attempts,
                            error = %error,
                            "projection failed, retrying"
                        );
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(1));
                        continue;
                    }
                    // Give up on this event: commit what precedes it, park it and the
                    // later events of its stream, and go on with the rest.
                    tracing::error!(
                        projection = name,
                        position = event.position,
                        stream = %event.stream_id,
                        error = %error,
                        "parking an event the projection keeps failing on"
                    );
                    let mut rest = apply.split_off(index).into_iter();
                    let Some(failed) = rest.next() else {
                        return Ok(());
                    };
                    let head = failed.position;
                    let mut letters = vec![DeadLetter {
                        projection: name.to_owned(),
                        generation,
                        position: failed.position,
                        event_id: failed.event_id,
                        stream_id: failed.stream_id.to_string(),
                        version: failed.version,
                        reason: error.to_string(),
                        attempts,
                        blocked_by: None,
                    }];
                    let mut keep = Vec::new();
                    for event in rest {
                        if *event.stream_id == *failed.stream_id {
                            letters.push(waiting(name, generation, &event, head));
                        } else {
                            keep.push(event);
                        }
                    }
                    // The prefix, as its own batch up to just before the failing event.
                    let prefix_checkpoint = head - 1;
                    if !apply.is_empty() || prefix_checkpoint > from {
                        let prefix = ProjectionBatch {
                            projection: &*self.projection,
                            generation,
                            from,
                            events: &apply,
                            park: &[],
                            resolved: &[],
                            checkpoint: prefix_checkpoint.max(from),
                        };
                        match self.views.commit_batch(prefix).await {
                            Ok(()) => from = prefix_checkpoint.max(from),
                            Err(BatchError::Store(e)) => return Err(e),
                            // The prefix fails too (or is stale): retry the whole batch
                            // from the top on the next step.
                            Err(_) => return Ok(()),
                        }
                    }
                    apply = keep;
                    park.extend(letters);
                    attempts = 0;
                    delay = self.options.backoff;
                }
            }
        }
    }

    /// Retries (or skips) the parked event `event_id` and then the events of its stream
    /// parked behind it.
    async fn resolve(&self, event_id: Uuid, skip_first: bool) -> Result<(), StoreError> {
        let _guard = self.lock.lock().await;
        let name = self.projection.name();
        let letters = self.views.dead_letters(name).await?;
        let Some(head) = letters
            .iter()
            .find(|l| l.event_id == event_id && l.blocked_by.is_none())
            .cloned()
        else {
            return Err(StoreError::Backend(
                format!(
                    "projection `{name}` has no parked event {event_id} (only the failing \
                     event of a stream, not one waiting behind it, can be retried or skipped)"
                )
                .into(),
            ));
        };
        let mut chain: Vec<DeadLetter> = letters
            .into_iter()
            .filter(|l| {
                l.generation == head.generation
                    && (l.event_id == head.event_id || l.blocked_by == Some(head.position))
            })
            .collect();
        chain.sort_by_key(|l| l.position);
        let mut resolved = Vec::new();
        let mut events = Vec::new();
        for (k, letter) in chain.iter().enumerate() {
            resolved.push(letter.event_id);
            if k == 0 && skip_first {
                continue;
            }
            let page = self.store.read_all(letter.position, 1).await?;
            match page.into_iter().next() {
                Some(event) if event.event_id == letter.event_id => events.push(event),
                // Removed by retention meanwhile: nothing to apply.
                _ => {}
            }
        }
        let state = self.views.projection_state(name).await?;
        let from = if head.generation == state.active_generation {
            state.position
        } else {
            match state.rebuilding {
                Some((g, p)) if g == head.generation => p,
                _ => {
                    return Err(StoreError::Backend(
                        format!(
                            "projection `{name}`: generation {} is no longer written",
                            head.generation
                        )
                        .into(),
                    ));
                }
            }
        };
        let batch = ProjectionBatch {
            projection: &*self.projection,
            generation: head.generation,
            from,
            events: &events,
            park: &[],
            resolved: &resolved,
            checkpoint: from,
        };
        match self.views.commit_batch(batch).await {
            Ok(()) => Ok(()),
            Err(BatchError::Store(e)) => Err(e),
            Err(BatchError::Stale { stored, from }) => Err(StoreError::Backend(
                format!("projection `{name}` moved during the retry ({stored:?} != {from})").into(),
            )),
            Err(BatchError::Apply { index, error }) => {
                // Keep the failing event parked with its new reason; those before it in
                // the chain are applied, those after keep waiting behind it.
                let failed = &events[index];
                let applied: Vec<Uuid> = events[..index].iter().map(|e| e.event_id).collect();
                let mut resolved = applied.clone();
                if skip_first {
                    resolved.push(head.event_id);
                }
                let mut park = vec![DeadLetter {
                    projection: name.to_owned(),
                    generation: head.generation,
                    position: failed.position,
                    event_id: failed.event_id,
                    stream_id: failed.stream_id.to_string(),
                    version: failed.version,
                    reason: error.to_string(),
                    attempts: chain
                        .iter()
                        .find(|l| l.event_id == failed.event_id)
                        .map_or(1, |l| l.attempts + 1),
                    blocked_by: None,
                }];
                for event in &events[index + 1..] {
                    park.push(waiting(name, head.generation, event, failed.position));
                }
                let batch = ProjectionBatch {
                    projection: &*self.projection,
                    generation: head.generation,
                    from,
                    events: &events[..index],
                    park: &park,
                    resolved: &resolved,
                    checkpoint: from,
                };
                match self.views.commit_batch(batch).await {
                    Ok(()) | Err(BatchError::Apply { .. }) | Err(BatchError::Stale { .. }) => {}
                    Err(BatchError::Store(e)) => return Err(e),
                }
                Err(StoreError::Projection {
                    projection: name.to_owned(),
                    stream_id: failed.stream_id.to_string(),
                    event_id: failed.event_id,
                    source: Box::new(error),
                })
            }
        }
    }
}

/// Waits for the next commit notification or `poll` (whichever comes first); a closed
/// notifier is dropped, so later waits poll.
pub(super) async fn idle(poll: Duration, commits: &mut Option<watch::Receiver<u64>>) {
    let notified = async {
        match commits.as_mut() {
            Some(rx) => rx.changed().await.is_ok(),
            None => std::future::pending().await,
        }
    };
    if let Ok(false) = tokio::time::timeout(poll, notified).await {
        *commits = None;
    }
}

/// The dead letter of an event parked behind the failing event at position `head`.
fn waiting(name: &str, generation: u32, event: &RecordedEvent, head: u64) -> DeadLetter {
    DeadLetter {
        projection: name.to_owned(),
        generation,
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id.to_string(),
        version: event.version,
        reason: format!("waiting behind position {head}"),
        attempts: 0,
        blocked_by: Some(head),
    }
}
