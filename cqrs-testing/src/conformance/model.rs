//! The model-based case: random sequences of appends, re-sends and reads against the store
//! and a model of it (a `Vec` per stream), compared after every operation.

use std::collections::HashSet;
use std::sync::Arc;

use cqrs_core::store::{ActualVersion, EventStore, ExpectedVersion, StoreError};
use cqrs_core::{NewEvent, RecordedEvent};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

use super::support::{Cx, check_page, list, probe_event, probe_events, show};
use super::{Config, Failure};
use crate::conformance::appends::visit;

/// How many streams a sequence works on.
const STREAMS: u8 = 4;

/// The expected version an append is sent with.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    /// `Exact` of the stream's current version (0 when missing): usually accepted.
    Current,
    /// `Exact` of the current version plus this (floored at 0): usually a conflict.
    Off(i8),
    /// `Exact` of this version.
    Exact(u8),
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Op {
    /// Appends `size` new events to `stream`.
    Append {
        stream: u8,
        expected: Expect,
        size: u8,
    },
    /// Sends an earlier batch (committed or not) again, to the stream it was sent to.
    Resend { batch: Index, expected: Expect },
    /// Sends an earlier batch again with one event's payload changed.
    ResendChanged { batch: Index, event: Index },
    /// Sends an earlier batch again to `stream`, expecting any version.
    ResendElsewhere { batch: Index, stream: u8 },
    /// `read_stream(stream, from)`.
    ReadStream { stream: u8, from: u8 },
    /// `read_stream_with(stream, from)`, breaking after `take` events.
    Visit { stream: u8, from: u8, take: u8 },
    /// `read_all(head at start + from, limit)`.
    ReadAll { from: u8, limit: u8 },
    /// `stream_version(stream)`.
    Version { stream: u8 },
    /// `head_position()`.
    Head,
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        2 => Just(Expect::Any),
        2 => Just(Expect::NoStream),
        2 => Just(Expect::StreamExists),
        4 => Just(Expect::Current),
        2 => (-2i8..=2).prop_map(Expect::Off),
        1 => (0u8..8).prop_map(Expect::Exact),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..STREAMS, expect(), 1u8..=4)
            .prop_map(|(stream, expected, size)| Op::Append { stream, expected, size }),
        2 => (any::<Index>(), expect()).prop_map(|(batch, expected)| Op::Resend { batch, expected }),
        1 => (any::<Index>(), any::<Index>())
            .prop_map(|(batch, event)| Op::ResendChanged { batch, event }),
        1 => (any::<Index>(), 0..STREAMS)
            .prop_map(|(batch, stream)| Op::ResendElsewhere { batch, stream }),
        2 => (0..STREAMS, 0u8..8).prop_map(|(stream, from)| Op::ReadStream { stream, from }),
        1 => (0..STREAMS, 0u8..8, 1u8..4)
            .prop_map(|(stream, from, take)| Op::Visit { stream, from, take }),
        2 => (0u8..64, 0u8..12).prop_map(|(from, limit)| Op::ReadAll { from, limit }),
        1 => (0..STREAMS).prop_map(|stream| Op::Version { stream }),
        1 => Just(Op::Head),
    ]
}

/// An append that was attempted, and what it committed.
#[derive(Debug, Clone)]
struct Sent {
    stream: usize,
    events: Vec<NewEvent>,
    /// (positions, stream version) of a fresh commit.
    committed: Option<(Vec<u64>, u64)>,
}

/// What the store should hold.
#[derive(Debug, Default)]
struct Model {
    /// Per stream, its events with their positions; the version is the index + 1.
    streams: Vec<Vec<(NewEvent, u64)>>,
    /// (stream, index) of every event, in position order.
    log: Vec<(usize, usize)>,
    sent: Vec<Sent>,
    ids: HashSet<u128>,
    last_position: u64,
}

/// What an append should do.
enum Predicted {
    Commit,
    Dedup(Vec<u64>, u64),
    Conflict(Option<u64>),
    Duplicate,
}

impl Model {
    fn version(&self, stream: usize) -> Option<u64> {
        let n = self.streams[stream].len() as u64;
        (n > 0).then_some(n)
    }

    fn resolve(&self, stream: usize, expected: Expect) -> ExpectedVersion {
        let current = self.version(stream).unwrap_or(0);
        match expected {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::StreamExists => ExpectedVersion::StreamExists,
            Expect::Current => ExpectedVersion::Exact(current),
            Expect::Off(d) => ExpectedVersion::Exact(current.saturating_add_signed(i64::from(d))),
            Expect::Exact(v) => ExpectedVersion::Exact(u64::from(v)),
        }
    }

    fn predict(&self, stream: usize, expected: ExpectedVersion, events: &[NewEvent]) -> Predicted {
        if events
            .iter()
            .any(|e| self.ids.contains(&e.event_id.as_u128()))
        {
            let original = self
                .sent
                .iter()
                .find(|s| s.committed.is_some() && s.stream == stream && s.events == events);
            return match original.and_then(|s| s.committed.clone()) {
                Some((positions, version)) => Predicted::Dedup(positions, version),
                None => Predicted::Duplicate,
            };
        }
        let current = self.version(stream);
        if expected.matches(current) {
            Predicted::Commit
        } else {
            Predicted::Conflict(current)
        }
    }
}

/// One run of a sequence against the store.
struct Run<'a, S: ?Sized> {
    store: &'a S,
    cx: Cx,
    names: Vec<String>,
    start: u64,
    model: Model,
    next_n: u64,
}

impl<S: EventStore + ?Sized> Run<'_, S> {
    async fn op(&mut self, op: &Op) -> Result<(), String> {
        match *op {
            Op::Append {
                stream,
                expected,
                size,
            } => {
                let events = probe_events(self.next_n, usize::from(size));
                self.next_n += u64::from(size);
                let expected = self.model.resolve(usize::from(stream), expected);
                self.append(usize::from(stream), expected, events).await
            }
            Op::Resend { batch, expected } => {
                let Some(sent) = self.pick(batch) else {
                    return Ok(());
                };
                let expected = self.model.resolve(sent.stream, expected);
                self.append(sent.stream, expected, sent.events).await
            }
            Op::ResendChanged { batch, event } => {
                let Some(mut sent) = self.pick(batch) else {
                    return Ok(());
                };
                let j = event.index(sent.events.len());
                let e = &mut sent.events[j];
                let mut payload = e.payload.to_vec();
                payload.extend_from_slice(b" ");
                e.payload = payload.into();
                self.append(sent.stream, ExpectedVersion::Any, sent.events)
                    .await
            }
            Op::ResendElsewhere { batch, stream } => {
                let Some(sent) = self.pick(batch) else {
                    return Ok(());
                };
                self.append(usize::from(stream), ExpectedVersion::Any, sent.events)
                    .await
            }
            Op::ReadStream { stream, from } => {
                let s = usize::from(stream);
                let name = &self.names[s];
                let got = self
                    .store
                    .read_stream(name, u64::from(from))
                    .await
                    .map_err(|e| format!("read_stream(`{name}`, {from}) failed: {}", show(&e)))?;
                self.same_stream(s, u64::from(from), usize::MAX, &got)
            }
            Op::Visit { stream, from, take } => {
                let s = usize::from(stream);
                let name = &self.names[s];
                let got = visit(self.store, name, u64::from(from), usize::from(take))
                    .await
                    .map_err(|e| {
                        format!("read_stream_with(`{name}`, {from}) failed: {}", show(&e))
                    })?;
                self.same_stream(s, u64::from(from), usize::from(take), &got)
            }
            Op::ReadAll { from, limit } => {
                let at = self.start + u64::from(from);
                let limit = usize::from(limit);
                let got = self
                    .store
                    .read_all(at, limit)
                    .await
                    .map_err(|e| format!("read_all({at}, {limit}) failed: {}", show(&e)))?;
                check_page(&self.cx, &got, at, limit).map_err(|f| f.message)?;
                // Events of other streams (of another user of the store) may sit between
                // ours; of ours, the page must hold every one from `at` up to where it
                // ends, or to the end of the log when it is not full.
                let end = match got.last() {
                    _ if limit == 0 => 0,
                    Some(last) if got.len() == limit => last.position,
                    _ => u64::MAX,
                };
                let own: Vec<&RecordedEvent> =
                    got.iter().filter(|e| self.cx.owns(&e.stream_id)).collect();
                let want: Vec<(usize, u64, &NewEvent, u64)> = self
                    .model
                    .log
                    .iter()
                    .map(|&(s, i)| {
                        (
                            s,
                            i as u64 + 1,
                            &self.model.streams[s][i].0,
                            self.model.streams[s][i].1,
                        )
                    })
                    .filter(|&(_, _, _, p)| p >= at && p <= end)
                    .collect();
                let same = own.len() == want.len()
                    && own.iter().zip(&want).all(|(g, &(s, v, e, p))| {
                        e.same_content_as(g)
                            && *g.stream_id == *self.names[s]
                            && g.version == v
                            && g.position == p
                    });
                if same {
                    Ok(())
                } else {
                    let want: Vec<String> = want
                        .iter()
                        .map(|&(s, v, e, p)| {
                            format!("  `{}` v{v} @{p} id {}\n", self.names[s], e.event_id)
                        })
                        .collect();
                    Err(format!(
                        "read_all({at}, {limit}) should hold, of this run's streams:\n{}it holds:\n{}",
                        if want.is_empty() {
                            "  (none)\n".to_owned()
                        } else {
                            want.concat()
                        },
                        list(&got)
                    ))
                }
            }
            Op::Version { stream } => {
                let s = usize::from(stream);
                let name = &self.names[s];
                let got = self
                    .store
                    .stream_version(name)
                    .await
                    .map_err(|e| format!("stream_version(`{name}`) failed: {}", show(&e)))?;
                let want = self.model.version(s);
                if got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "stream_version(`{name}`) is {got:?}, expected {want:?}"
                    ))
                }
            }
            Op::Head => {
                let head = self
                    .store
                    .head_position()
                    .await
                    .map_err(|e| format!("head_position() failed: {}", show(&e)))?;
                if head >= self.model.last_position {
                    Ok(())
                } else {
                    Err(format!(
                        "head_position() is {head}, below the last committed position {}",
                        self.model.last_position
                    ))
                }
            }
        }
    }

    fn pick(&self, batch: Index) -> Option<Sent> {
        (!self.model.sent.is_empty())
            .then(|| self.model.sent[batch.index(self.model.sent.len())].clone())
    }

    async fn append(
        &mut self,
        s: usize,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<(), String> {
        let name = self.names[s].clone();
        let predicted = self.model.predict(s, expected, &events);
        let result = self.store.append(&name, expected, events.clone()).await;
        let doing = format!(
            "append(`{name}`, {expected:?}, {} event(s)) on a stream at {}",
            events.len(),
            ActualVersion(self.model.version(s))
        );
        let mut sent = Sent {
            stream: s,
            events,
            committed: None,
        };
        match (predicted, result) {
            (Predicted::Commit, Ok(out)) => {
                let n = sent.events.len();
                let current = self.model.streams[s].len() as u64;
                let fine = !out.deduplicated
                    && out.stream_version == current + n as u64
                    && out.positions.len() == n
                    && out.positions.windows(2).all(|w| w[0] < w[1])
                    && out.positions[0] > self.model.last_position;
                if !fine {
                    return Err(format!(
                        "{doing}: expected a fresh commit at versions {}..={} with {n} increasing \
                         positions after {}, got {out:?}",
                        current + 1,
                        current + n as u64,
                        self.model.last_position
                    ));
                }
                for (e, p) in sent.events.iter().zip(&out.positions) {
                    self.model.ids.insert(e.event_id.as_u128());
                    self.model.log.push((s, self.model.streams[s].len()));
                    self.model.streams[s].push((e.clone(), *p));
                }
                self.model.last_position = out.positions[n - 1];
                sent.committed = Some((out.positions, out.stream_version));
            }
            (Predicted::Dedup(positions, version), Ok(out)) => {
                if !(out.deduplicated
                    && out.positions == positions
                    && out.stream_version == version)
                {
                    return Err(format!(
                        "{doing}: the batch was committed before, so expected a deduplicated \
                         outcome with positions {positions:?} and stream version {version}, \
                         got {out:?}"
                    ));
                }
            }
            (Predicted::Conflict(actual), Err(e)) => match &e {
                StoreError::Concurrency {
                    stream_id,
                    expected: said,
                    actual: said_actual,
                } if *stream_id == name
                    && *said == expected
                    && *said_actual == ActualVersion(actual) => {}
                other => {
                    return Err(format!(
                        "{doing}: expected a concurrency error naming the stream, {expected:?} \
                         and {}, got {}",
                        ActualVersion(actual),
                        show(other)
                    ));
                }
            },
            (Predicted::Duplicate, Err(e)) => match &e {
                StoreError::DuplicateEvent {
                    event_id,
                    stream_id,
                    ..
                } if *stream_id == name && sent.events.iter().any(|e| e.event_id == *event_id) => {}
                other => {
                    return Err(format!(
                        "{doing}: the batch's ids are committed with other content or \
                         elsewhere, so expected DuplicateEvent naming one of them and the \
                         stream, got {}",
                        show(other)
                    ));
                }
            },
            (predicted, result) => {
                let want = match predicted {
                    Predicted::Commit => "a fresh commit".to_owned(),
                    Predicted::Dedup(..) => "a deduplicated re-send".to_owned(),
                    Predicted::Conflict(actual) => {
                        format!(
                            "a concurrency error (the stream is at {})",
                            ActualVersion(actual)
                        )
                    }
                    Predicted::Duplicate => "a duplicate event error".to_owned(),
                };
                let got = match result {
                    Ok(out) => format!("{out:?}"),
                    Err(e) => show(&e),
                };
                return Err(format!("{doing}: expected {want}, got {got}"));
            }
        }
        self.model.sent.push(sent);
        Ok(())
    }

    fn same_stream(
        &self,
        s: usize,
        from: u64,
        take: usize,
        got: &[RecordedEvent],
    ) -> Result<(), String> {
        let name = &self.names[s];
        let skip = from.max(1) as usize - 1;
        let want: Vec<&(NewEvent, u64)> =
            self.model.streams[s].iter().skip(skip).take(take).collect();
        let same = got.len() == want.len()
            && got.iter().zip(&want).enumerate().all(|(i, (g, (e, p)))| {
                e.same_content_as(g)
                    && *g.stream_id == **name
                    && g.version == (skip + i) as u64 + 1
                    && g.position == *p
            });
        if same {
            Ok(())
        } else {
            let want: Vec<String> = want
                .iter()
                .enumerate()
                .map(|(i, (e, p))| format!("  v{} @{p} id {}\n", skip + i + 1, e.event_id))
                .collect();
            Err(format!(
                "reading `{name}` from version {from} (at most {take}) should give\n{}it gives\n{}",
                if want.is_empty() {
                    "  (none)\n".to_owned()
                } else {
                    want.concat()
                },
                list(got)
            ))
        }
    }
}

/// Runs `ops` against `store` on fresh streams; the first disagreement with the model.
async fn run<S: EventStore + ?Sized>(store: &S, ops: &[Op]) -> Result<(), String> {
    let cx = Cx::new("model_based");
    let start = store
        .head_position()
        .await
        .map_err(|e| format!("head_position() failed: {}", show(&e)))?;
    let mut run = Run {
        store,
        names: (0..STREAMS).map(|s| cx.stream(&format!("m{s}"))).collect(),
        cx,
        start,
        model: Model {
            streams: vec![Vec::new(); usize::from(STREAMS)],
            ..Model::default()
        },
        next_n: 1,
    };
    for (i, op) in ops.iter().enumerate() {
        run.op(op)
            .await
            .map_err(|e| format!("operation {i}: {e}"))?;
    }
    Ok(())
}

/// Random sequences of operations against the store and a model of it, compared after
/// every operation: [`Config::model_cases`] sequences (2 000) of up to
/// [`Config::model_max_ops`] operations (24) on four fresh streams each.
///
/// The operations: appends of one to four new events with every kind of expected version
/// (matching or not: `Any`, `NoStream`, `StreamExists`, `Exact` of the current version,
/// near it, or anywhere); re-sends of an earlier batch (committed or refused) to its stream
/// with any expected version, with one payload changed, or to another stream;
/// `read_stream` and `read_stream_with` (stopping early) from any version; `read_all` from
/// any position with any limit; `stream_version`; `head_position`.
///
/// The model predicts every outcome: a fresh commit (next versions, increasing positions
/// above every earlier one), a deduplicated re-send (the original positions and version),
/// a concurrency error (with the stream, expected and actual version), a duplicate event
/// error; and every read, event by event (id, content, stream, version, position).
///
/// A failure is shrunk to a short sequence, printed with the seed that replays it
/// ([`Config::model_seed`], or `CQRS_CONFORMANCE_SEED`).
pub async fn model_based<S: EventStore>(store: S, config: &Config<S>) -> Result<(), Failure> {
    let store = Arc::new(store);
    let handle = tokio::runtime::Handle::current();
    let seed = config
        .model_seed
        .or_else(|| {
            std::env::var("CQRS_CONFORMANCE_SEED")
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or_else(|| probe_event(0).event_id.as_u128() as u64);
    let cases = config.model_cases;
    let max_ops = config.model_max_ops;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut seed_bytes = [0u8; 32];
        for chunk in seed_bytes.chunks_mut(8) {
            chunk.copy_from_slice(&seed.to_le_bytes());
        }
        let mut runner = TestRunner::new_with_rng(
            RunnerConfig {
                cases,
                failure_persistence: None,
                ..RunnerConfig::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
        );
        let strategy = proptest::collection::vec(op(), 1..=max_ops);
        runner
            .run(&strategy, |ops| {
                handle
                    .block_on(run(&*store, &ops))
                    .map_err(TestCaseError::fail)
            })
            .map_err(|e| match e {
                TestError::Fail(reason, ops) => {
                    let steps: Vec<String> = ops
                        .iter()
                        .enumerate()
                        .map(|(i, op)| format!("  {i}: {op:?}\n"))
                        .collect();
                    format!(
                        "a random sequence of operations disagrees with the model (seed {seed}: \
                         replay with `Config::model_seed({seed})` or \
                         CQRS_CONFORMANCE_SEED={seed}).\n\n{reason}\n\nthe shortest failing \
                         sequence found ({} operations, each stream on fresh ids):\n{}",
                        ops.len(),
                        steps.concat()
                    )
                }
                TestError::Abort(reason) => {
                    format!("the random sequences were aborted (seed {seed}): {reason}")
                }
            })
    })
    .await;
    let fail = |message: String| Failure {
        case: "model_based",
        message,
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(fail(message)),
        Err(e) => Err(fail(format!("the runner task failed: {e}"))),
    }
}
