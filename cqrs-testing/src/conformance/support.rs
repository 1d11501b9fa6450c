//! What the cases share: a case's context and stream names, the events they append, the
//! checks they repeat, and a small aggregate for the runtime's load path.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cqrs_core::store::{AppendOutcome, EventStore, ExpectedVersion, StoreError};
use cqrs_core::upcast::Payload;
use cqrs_core::{
    Aggregate, Codec, Command, DecodeReason, DomainEvent, JsonCodec, Metadata, NewEvent,
    RecordedEvent,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::Failure;

/// Returns `Err(cx.fail(..))` from the case unless `cond` holds.
macro_rules! ensure {
    ($cx:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($cx.fail(format!($($arg)+)));
        }
    };
}
pub(super) use ensure;

/// One run of a case: its name, and the tag that makes its stream ids its own.
#[derive(Debug, Clone)]
pub(super) struct Cx {
    pub(super) case: &'static str,
    tag: String,
}

impl Cx {
    pub(super) fn new(case: &'static str) -> Self {
        Self { case, tag: tag() }
    }

    /// A stream id of this run: `conformance-<tag>-<name>`.
    pub(super) fn stream(&self, name: &str) -> String {
        format!("conformance-{}-{name}", self.tag)
    }

    /// True for a stream id made by [`stream`](Self::stream) of this run.
    pub(super) fn owns(&self, stream_id: &str) -> bool {
        stream_id
            .strip_prefix("conformance-")
            .and_then(|rest| rest.strip_prefix(self.tag.as_str()))
            .is_some_and(|rest| rest.starts_with('-'))
    }

    /// The aggregate id of a [`Probe`] stream of this run (`ConformanceProbe-<id>`).
    pub(super) fn probe_id(&self, name: &str) -> String {
        format!("{}-{name}", self.tag)
    }

    pub(super) fn fail(&self, message: impl Into<String>) -> Failure {
        Failure {
            case: self.case,
            message: message.into(),
        }
    }

    /// The value, or a failure saying what was being done and what the store answered.
    pub(super) fn ok<T>(&self, result: Result<T, StoreError>, doing: &str) -> Result<T, Failure> {
        result.map_err(|e| self.fail(format!("{doing}: unexpected error {}", show(&e))))
    }

    /// The error, or a failure saying the call succeeded when it should not have.
    pub(super) fn err<T: Debug>(
        &self,
        result: Result<T, StoreError>,
        doing: &str,
        wanted: &str,
    ) -> Result<StoreError, Failure> {
        match result {
            Err(e) => Ok(e),
            Ok(value) => Err(self.fail(format!(
                "{doing}: expected {wanted}, but it succeeded with {value:?}"
            ))),
        }
    }

    /// Appends and expects success.
    pub(super) async fn append<S: EventStore + ?Sized>(
        &self,
        store: &S,
        stream_id: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, Failure> {
        let doing = format!(
            "appending {} event(s) to `{stream_id}` expecting {expected:?}",
            events.len()
        );
        let outcome = self.ok(
            store.append(stream_id, expected, events.to_vec()).await,
            &doing,
        )?;
        ensure!(
            self,
            outcome.positions.len() == events.len(),
            "{doing}: the outcome has {} positions for {} events: {outcome:?}",
            outcome.positions.len(),
            events.len()
        );
        ensure!(
            self,
            outcome.positions.windows(2).all(|w| w[0] < w[1]),
            "{doing}: the positions of a batch must increase: {outcome:?}"
        );
        ensure!(
            self,
            outcome.stream_version >= events.len() as u64,
            "{doing}: stream version {} cannot hold {} events: {outcome:?}",
            outcome.stream_version,
            events.len()
        );
        Ok(outcome)
    }

    /// Reads a whole stream and expects success.
    pub(super) async fn read<S: EventStore + ?Sized>(
        &self,
        store: &S,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, Failure> {
        self.ok(
            store.read_stream(stream_id, from_version).await,
            &format!("reading `{stream_id}` from version {from_version}"),
        )
    }

    /// The head position, expecting success.
    pub(super) async fn head<S: EventStore + ?Sized>(&self, store: &S) -> Result<u64, Failure> {
        self.ok(store.head_position().await, "asking the head position")
    }

    /// Every event of the global log from `from` on, paging by 500.
    pub(super) async fn read_log<S: EventStore + ?Sized>(
        &self,
        store: &S,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, Failure> {
        let mut out: Vec<RecordedEvent> = Vec::new();
        let mut next = from;
        loop {
            let page = self.ok(
                store.read_all(next, 500).await,
                &format!("reading the global log from position {next}, limit 500"),
            )?;
            check_page(self, &page, next, 500)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            next = last.position + 1;
            out.extend(page);
        }
    }

    /// The events of this run in the global log from `from` on.
    pub(super) async fn own_log<S: EventStore + ?Sized>(
        &self,
        store: &S,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, Failure> {
        let mut log = self.read_log(store, from).await?;
        log.retain(|e| self.owns(&e.stream_id));
        Ok(log)
    }

    /// Checks that `stored` holds exactly `sent`, at versions from `first_version` on and
    /// at `positions` when given.
    pub(super) fn same_events(
        &self,
        what: &str,
        stored: &[RecordedEvent],
        stream_id: &str,
        first_version: u64,
        sent: &[&NewEvent],
        positions: Option<&[u64]>,
    ) -> Result<(), Failure> {
        ensure!(
            self,
            stored.len() == sent.len(),
            "{what}: expected {} event(s), read {}:\n{}",
            sent.len(),
            stored.len(),
            list(stored)
        );
        for (i, (got, want)) in stored.iter().zip(sent).enumerate() {
            let version = first_version + i as u64;
            ensure!(
                self,
                want.same_content_as(got),
                "{what}: event {i} differs from what was appended\nappended: {want:?}\nread:     {got:?}"
            );
            ensure!(
                self,
                &*got.stream_id == stream_id && got.version == version,
                "{what}: event {i} should be `{stream_id}` version {version}, read `{}` version {}",
                got.stream_id,
                got.version
            );
            if let Some(positions) = positions {
                ensure!(
                    self,
                    got.position == positions[i],
                    "{what}: event {i} (`{stream_id}` v{version}) should be at position {} (as \
                     the append said), read position {}",
                    positions[i],
                    got.position
                );
            }
        }
        Ok(())
    }
}

/// Checks one page of `read_all(from, limit)`: no more than `limit` events, positions from
/// `from` on, strictly increasing.
pub(super) fn check_page(
    cx: &Cx,
    page: &[RecordedEvent],
    from: u64,
    limit: usize,
) -> Result<(), Failure> {
    ensure!(
        cx,
        page.len() <= limit,
        "read_all({from}, {limit}) returned {} events",
        page.len()
    );
    if let Some(first) = page.first() {
        ensure!(
            cx,
            first.position >= from,
            "read_all({from}, {limit}) returned an event at position {}, before {from}",
            first.position
        );
    }
    ensure!(
        cx,
        page.windows(2).all(|w| w[0].position < w[1].position),
        "read_all({from}, {limit}) is not in strictly increasing position order:\n{}",
        list(page)
    );
    Ok(())
}

/// A tag no other run shares: the random half of a fresh UUID v7, and a counter.
fn tag() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let id = probe_event(0).event_id.simple().to_string();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{n:x}", &id[20..])
}

/// The `{:?}` and `Display` forms of a store error.
pub(super) fn show(e: &StoreError) -> String {
    format!("{e:?} ({e})")
}

/// One line per event: stream, version, position, id, type.
pub(super) fn list(events: &[RecordedEvent]) -> String {
    let mut out = String::new();
    for e in events {
        out.push_str(&format!(
            "  `{}` v{} @{} id {} type {}\n",
            e.stream_id, e.version, e.position, e.event_id, e.event_type
        ));
    }
    if out.is_empty() {
        out.push_str("  (none)\n");
    }
    out
}

/// Runs `future` on its own task, so that a panic in the store becomes a failure.
pub(super) async fn no_panic<T, F>(cx: &Cx, doing: &str, future: F) -> Result<T, Failure>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    join(cx, doing, tokio::spawn(future)).await
}

/// Waits for a task; its panic becomes a failure.
pub(super) async fn join<T>(cx: &Cx, doing: &str, task: JoinHandle<T>) -> Result<T, Failure> {
    task.await.map_err(|e| {
        if e.is_panic() {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            cx.fail(format!("{doing}: the task panicked: {message}"))
        } else {
            cx.fail(format!("{doing}: the task was cancelled"))
        }
    })
}

/// Milliseconds since the Unix epoch.
pub(super) fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The event every case appends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum ProbeEvent {
    /// Something happened, the `n`th time.
    Probed {
        /// Which time.
        n: u64,
    },
}

impl DomainEvent for ProbeEvent {
    const EVENT_TYPES: &'static [&'static str] = &["Probed"];

    fn event_type(&self) -> &'static str {
        "Probed"
    }

    fn schema_version(&self) -> u32 {
        1
    }

    fn decode_payload<C: Codec, F: FnMut(Self)>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: Payload<'_>,
        sink: &mut F,
    ) -> Result<(), DecodeReason> {
        if event_type != "Probed" {
            return Err(DecodeReason::UnknownEventType {
                enum_name: "ProbeEvent",
                known: "Probed".into(),
            });
        }
        if schema_version != 1 {
            return Err(DecodeReason::UnsupportedSchemaVersion {
                found: schema_version,
                oldest: 1,
                current: 1,
            });
        }
        sink(payload.read_variant(codec, 0)?);
        Ok(())
    }
}

/// A fresh event (new id) whose payload is `{"n":n}` and whose metadata names it.
pub(super) fn probe_event(n: u64) -> NewEvent {
    NewEvent::encode(
        &ProbeEvent::Probed { n },
        &JsonCodec,
        Metadata::default()
            .with_actor("conformance")
            .with("n", n.to_string()),
    )
    .expect("a probe event encodes")
}

/// `count` fresh events numbered from `from`.
pub(super) fn probe_events(from: u64, count: usize) -> Vec<NewEvent> {
    (0..count as u64).map(|i| probe_event(from + i)).collect()
}

/// References to every event of `events`.
pub(super) fn refs(events: &[NewEvent]) -> Vec<&NewEvent> {
    events.iter().collect()
}

/// A small aggregate over [`ProbeEvent`], to load streams through the runtime.
#[derive(Debug, Default)]
pub(super) struct Probe {
    pub(super) seen: u64,
}

/// [`Probe`]'s only command.
#[derive(Debug, Clone)]
pub(super) struct ProbeCommand;

impl Command for ProbeCommand {
    fn command_name(&self) -> &'static str {
        "Probe"
    }
}

/// [`Probe`] never rejects anything.
#[derive(Debug)]
pub(super) struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

impl Aggregate for Probe {
    const TYPE_NAME: &'static str = "ConformanceProbe";
    type Command = ProbeCommand;
    type Event = ProbeEvent;
    type Error = Never;
    type Services = ();

    fn handle<'a>(
        &'a self,
        _command: ProbeCommand,
        _services: &'a (),
    ) -> impl Future<Output = Result<Vec<ProbeEvent>, Never>> + Send + 'a {
        let n = self.seen + 1;
        async move { Ok(vec![ProbeEvent::Probed { n }]) }
    }

    fn apply(&mut self, _event: &ProbeEvent) {
        self.seen += 1;
    }
}

/// The store as the runtime holds it.
pub(super) fn runtime_of<S: EventStore>(store: &Arc<S>) -> cqrs_core::Cqrs<Probe> {
    let store: Arc<dyn EventStore> = store.clone();
    cqrs_core::Cqrs::<Probe>::builder(store).build()
}
