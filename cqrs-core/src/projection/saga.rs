//! Process managers (sagas): react to events by issuing commands through the runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tracing::Instrument;

use super::runner::Task;
use super::{
    BatchError, DeadLetter, DocChange, Projection, ProjectionBatch, ProjectionError, RunnerOptions,
    ViewStore,
};
use crate::aggregate::Aggregate;
use crate::codec::Codec;
use crate::event::{Metadata, RecordedEvent};
use crate::runtime::{CommandError, Committed, Cqrs};
use crate::store::{EventStore, StoreError};

/// A process manager: it follows the global log and reacts to events by issuing
/// commands (through [`SagaContext::execute`]), e.g. `OrderPlaced` → reserve stock,
/// `StockReserved` → confirm the order.
///
/// It is run by a [`SagaRunner`] with a checkpoint like a projection's. Delivery is at
/// least once; the effect is once: every command it issues carries the triggering
/// event's id as its causation id, and a command whose target stream already holds an
/// event caused by that trigger is not issued again.
#[async_trait]
pub trait ProcessManager: Send + Sync + 'static {
    /// Unique name (its checkpoint and dead letters); `^[a-z_][a-z0-9_]{0,62}$`.
    fn name(&self) -> &str;

    /// Whether it reacts to `event`, decided on the envelope (stored type, stream).
    fn handles(&self, event: &RecordedEvent) -> bool;

    /// Reacts to one event. An error is retried with backoff and then parked in the
    /// dead-letter store (later events of the same stream wait behind it).
    async fn react(
        &self,
        event: &RecordedEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError>;
}

/// What a [`ProcessManager`] reacts with: the triggering event and a way to issue
/// commands that carry its correlation and causation.
pub struct SagaContext<'a> {
    name: &'a str,
    trigger: &'a RecordedEvent,
    /// How many commands this reaction has issued to each stream so far: the next one's
    /// step (see [`SagaContext::execute`]).
    steps: std::sync::Mutex<HashMap<String, u32>>,
}

/// The metadata key that numbers a reaction's second and later commands to one stream
/// (absent: the first).
const STEP_KEY: &str = "cqrs.saga_step";

impl SagaContext<'_> {
    /// The event being reacted to.
    pub fn trigger(&self) -> &RecordedEvent {
        self.trigger
    }

    /// The metadata every command issued for the trigger carries: its correlation id
    /// (the trigger's, or the trigger's id if it had none), causation = the trigger's
    /// event id, actor `process-manager:<name>`.
    pub fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::default()
            .with_correlation_id(
                self.trigger
                    .metadata
                    .correlation_id
                    .unwrap_or(self.trigger.event_id),
            )
            .with_causation_id(self.trigger.event_id);
        metadata.actor = Some(format!("process-manager:{}", self.name));
        metadata
    }

    /// Issues `command` to aggregate `id` through `cqrs`, unless a previous delivery of
    /// the same trigger already did: then nothing is issued and `Ok(None)` is returned.
    ///
    /// The key is the causation id with a step: the `n`-th command this reaction issues
    /// to one stream is step `n` (recorded in the events' metadata under
    /// `cqrs.saga_step` from the second on), and it counts as issued when the stream
    /// holds an event caused by the trigger at that step. A reaction must therefore
    /// issue its commands to any one stream in the same order on every delivery (a
    /// reaction that decides from the trigger alone does). A command that was rejected,
    /// or that produced no event, leaves no trace and is issued again on redelivery.
    pub async fn execute<A: Aggregate, C: Codec>(
        &self,
        cqrs: &Cqrs<A, C>,
        id: &str,
        command: A::Command,
    ) -> Result<Option<Committed<A::Event>>, CommandError<A::Error>> {
        let stream_id = A::stream_id(id);
        let step = {
            let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
            let next = steps.entry(stream_id.clone()).or_insert(0);
            let step = *next;
            *next += 1;
            step
        };
        let stored = cqrs
            .store()
            .read_stream(&stream_id, 1)
            .await
            .map_err(CommandError::Store)?;
        let issued = stored.iter().any(|e| {
            e.metadata.causation_id == Some(self.trigger.event_id)
                && e.metadata
                    .custom
                    .get(STEP_KEY)
                    .map_or(Some(0), |s| s.parse().ok())
                    == Some(step)
        });
        if issued {
            tracing::debug!(
                process_manager = self.name,
                trigger = %self.trigger.event_id,
                %stream_id,
                step,
                "already issued for this trigger"
            );
            return Ok(None);
        }
        let mut metadata = self.metadata();
        if step > 0 {
            metadata
                .custom
                .insert(STEP_KEY.to_owned(), step.to_string());
        }
        cqrs.execute_with(id, command, metadata).await.map(Some)
    }
}

/// Stands in for a process manager where the view store expects a projection: it only
/// carries the name (a process manager has no documents, only a checkpoint and dead
/// letters).
struct CheckpointOnly(String);

impl Projection for CheckpointOnly {
    fn name(&self) -> &str {
        &self.0
    }

    fn handles(&self, _: &RecordedEvent) -> bool {
        false
    }

    fn apply(&self, _: Option<&[u8]>, _: &RecordedEvent) -> Result<DocChange, ProjectionError> {
        Ok(DocChange::Unchanged)
    }
}

/// Runs a [`ProcessManager`] over the global log: one event at a time after its
/// checkpoint, the checkpoint committed after each reaction, retries with backoff, dead
/// letters that keep per-stream order.
pub struct SagaRunner {
    store: Arc<dyn EventStore>,
    views: Arc<dyn ViewStore>,
    manager: Arc<dyn ProcessManager>,
    options: RunnerOptions,
}

impl SagaRunner {
    /// A runner of `manager` over `store` (which keeps its checkpoint).
    pub fn new<S>(store: S, manager: impl ProcessManager) -> Self
    where
        S: EventStore + ViewStore + Clone,
    {
        Self {
            store: Arc::new(store.clone()),
            views: Arc::new(store),
            manager: Arc::new(manager),
            options: RunnerOptions::default(),
        }
    }

    /// Sets the options (batch size, poll interval, attempts, backoff).
    #[must_use]
    pub fn options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Processes the log up to its head once, in this task; returns how many events it
    /// read.
    pub async fn catch_up(&self) -> Result<u64, StoreError> {
        let mut read = 0;
        loop {
            let n = self.step().await?;
            if n == 0 {
                return Ok(read);
            }
            read += n;
        }
    }

    /// Starts the runner on the current tokio runtime.
    pub fn spawn(self) -> SagaHandle {
        let (stop_tx, mut stop) = watch::channel(false);
        let (position_tx, position_rx) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            let mut commits = self.store.commit_notifier();
            loop {
                if *stop.borrow() {
                    return Ok(());
                }
                let read = self.step().await?;
                if let Ok(state) = self.views.projection_state(self.manager.name()).await {
                    position_tx.send_replace(state.position);
                }
                if read > 0 {
                    continue;
                }
                tokio::select! {
                    _ = super::runner::idle(self.options.poll_interval, &mut commits) => {}
                    _ = stop.changed() => {}
                }
            }
        });
        SagaHandle {
            position: position_rx,
            task: Task::new(stop_tx, task),
        }
    }

    /// Reacts to the events of one page after the checkpoint.
    async fn step(&self) -> Result<u64, StoreError> {
        let name = self.manager.name();
        let checkpoint = CheckpointOnly(name.to_owned());
        let state = self.views.projection_state(name).await?;
        let page = self
            .store
            .read_all(state.position + 1, self.options.batch_size)
            .await?;
        if page.is_empty() {
            return Ok(0);
        }
        let read = page.len() as u64;
        let mut blocked: HashMap<String, u64> = HashMap::new();
        for letter in self.views.dead_letters(name).await? {
            if letter.generation == state.active_generation {
                blocked
                    .entry(letter.stream_id)
                    .or_insert(letter.blocked_by.unwrap_or(letter.position));
            }
        }
        let mut from = state.position;
        for event in &page {
            let mut park = Vec::new();
            if self.manager.handles(event) {
                if let Some(head) = blocked.get(&*event.stream_id) {
                    park.push(letter(name, state.active_generation, event, None, 0, *head));
                } else if let Err((error, attempts)) = self.react_with_retries(event).await {
                    tracing::error!(
                        process_manager = name,
                        position = event.position,
                        error = %error,
                        "parking an event the process manager keeps failing on"
                    );
                    park.push(letter(
                        name,
                        state.active_generation,
                        event,
                        Some(error.to_string()),
                        attempts,
                        event.position,
                    ));
                    blocked.insert(event.stream_id.to_string(), event.position);
                }
            }
            let batch = ProjectionBatch {
                projection: &checkpoint,
                generation: state.active_generation,
                from,
                events: &[],
                park: &park,
                resolved: &[],
                checkpoint: event.position,
            };
            match self.views.commit_batch(batch).await {
                Ok(()) => from = event.position,
                Err(BatchError::Store(e)) => return Err(e),
                // Another runner moved the checkpoint: start over from it.
                Err(_) => return Ok(read),
            }
        }
        Ok(read)
    }

    async fn react_with_retries(
        &self,
        event: &RecordedEvent,
    ) -> Result<(), (ProjectionError, u32)> {
        let name = self.manager.name();
        let mut delay = self.options.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Each attempt is a delivery of its own: its steps count from 0 again.
            let ctx = SagaContext {
                name,
                trigger: event,
                steps: std::sync::Mutex::default(),
            };
            let span = tracing::info_span!(
                "cqrs.process_manager.react",
                process_manager = name,
                position = event.position,
                event_type = %event.event_type,
                attempts
            );
            let result = futures_lite_catch(self.manager.react(event, &ctx))
                .instrument(span)
                .await;
            match result {
                Ok(()) => return Ok(()),
                Err(error) if attempts >= self.options.max_attempts => {
                    return Err((error, attempts));
                }
                Err(error) => {
                    tracing::warn!(process_manager = name, attempts, error = %error, "retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// Runs a reaction, turning a panic into [`ProjectionError::Panicked`].
async fn futures_lite_catch(
    reaction: impl std::future::Future<Output = Result<(), ProjectionError>>,
) -> Result<(), ProjectionError> {
    // A panic inside the reaction unwinds through this task only; catching it keeps the
    // runner alive and turns it into a retry, then a dead letter.
    let reaction = std::pin::pin!(reaction);
    match CatchUnwind(reaction).await {
        Ok(result) => result,
        Err(panic) => Err(ProjectionError::Panicked(super::panic_message(&*panic))),
    }
}

/// `catch_unwind` for a future (what `futures::FutureExt::catch_unwind` does), written
/// here to avoid a dependency for ten lines.
struct CatchUnwind<F>(F);

impl<F: std::future::Future + Unpin> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(inner).poll(cx)
        })) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn letter(
    name: &str,
    generation: u32,
    event: &RecordedEvent,
    reason: Option<String>,
    attempts: u32,
    head: u64,
) -> DeadLetter {
    DeadLetter {
        projection: name.to_owned(),
        generation,
        position: event.position,
        event_id: event.event_id,
        stream_id: event.stream_id.to_string(),
        version: event.version,
        blocked_by: reason.is_none().then_some(head),
        reason: reason.unwrap_or_else(|| format!("waiting behind position {head}")),
        attempts,
    }
}

/// Controls a running [`SagaRunner`]; dropping it stops the runner.
pub struct SagaHandle {
    position: watch::Receiver<u64>,
    task: Task,
}

impl SagaHandle {
    /// The last global position the process manager has handled.
    pub fn position(&self) -> u64 {
        *self.position.borrow()
    }

    /// Waits until the process manager has handled the log up to `position`; `false`
    /// if `timeout` passed first.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.position.clone();
        tokio::time::timeout(timeout, async {
            while *rx.borrow_and_update() < position {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false)
    }

    /// Stops the runner and waits for it.
    pub async fn stop(mut self) -> Result<(), StoreError> {
        self.task.stop().await
    }
}
