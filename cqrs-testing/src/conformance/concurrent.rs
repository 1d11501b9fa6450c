//! Many writers at once: optimistic concurrency on hot streams, and the global log read
//! while they commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;

use cqrs_core::store::{EventStore, ExpectedVersion, StoreError};
use cqrs_core::{NewEvent, RecordedEvent};

use super::support::{Cx, check_page, ensure, join, list, probe_event, probe_events, show};
use super::{Config, Failure};

/// An acknowledged append of one event.
#[derive(Debug, Clone)]
struct Ack {
    event: NewEvent,
    stream: usize,
    version: u64,
    position: u64,
}

/// A small deterministic generator, so each writer spreads over the streams its own way.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Optimistic concurrency under contention: [`Config::writers`] tasks (16) each append
/// [`Config::appends_per_writer`] events (200) one at a time to [`Config::hot_streams`]
/// streams (8), each expecting the exact version it last saw and retrying on conflict
/// with the version the conflict reports.
///
/// Every append ends acknowledged, and every lost race is a [`StoreError::Concurrency`]
/// naming the stream, the expected version and a later actual one (any other error fails
/// the case, and so does a retry that comes back deduplicated: the lost attempt was
/// written after all). Afterwards each stream's versions run 1, 2, 3, … without gap, each
/// version acknowledged once; no event id is stored twice; the stored events are exactly
/// the acknowledged ones, at the acknowledged versions and positions; and the global log
/// holds each of them once, in position order.
pub async fn concurrent_writers<S: EventStore>(
    store: S,
    config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("concurrent_writers");
    let store = Arc::new(store);
    let start = cx.head(&*store).await?;
    let streams: Arc<Vec<String>> = Arc::new(
        (0..config.hot_streams)
            .map(|i| cx.stream(&format!("hot{i}")))
            .collect(),
    );
    // The writers start together, so that they contend from the first append.
    let barrier = Arc::new(Barrier::new(config.writers));
    let mut tasks = Vec::new();
    for w in 0..config.writers {
        let (cx, store, streams) = (cx.clone(), store.clone(), streams.clone());
        let (appends, barrier) = (config.appends_per_writer, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            writer(&cx, &*store, &streams, w, appends).await
        }));
    }
    let mut acks = Vec::new();
    let mut lost = 0u64;
    for (w, task) in tasks.into_iter().enumerate() {
        let (mine, lost_races) = join(&cx, &format!("writer {w}"), task).await??;
        acks.extend(mine);
        lost += lost_races;
    }
    let total = config.writers * config.appends_per_writer;
    ensure!(
        cx,
        acks.len() == total,
        "{total} appends were made, {} acknowledged",
        acks.len()
    );
    check_acks(&cx, &*store, &streams, &acks, start).await?;
    // Not an assertion: with one writer, or one append each, nobody loses a race.
    let _ = lost;
    Ok(())
}

/// One writer of [`concurrent_writers`]: its acknowledged appends and how many races it
/// lost.
async fn writer<S: EventStore>(
    cx: &Cx,
    store: &S,
    streams: &[String],
    w: usize,
    appends: usize,
) -> Result<(Vec<Ack>, u64), Failure> {
    let mut known: Vec<Option<u64>> = vec![None; streams.len()];
    let mut acks = Vec::with_capacity(appends);
    let mut lost = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
    for k in 0..appends {
        let s = (next(&mut rng) % streams.len() as u64) as usize;
        let stream = &streams[s];
        let event = probe_event((w * 1_000_000 + k) as u64);
        let mut version = match known[s] {
            Some(v) => v,
            None => cx
                .ok(
                    store.stream_version(stream).await,
                    &format!("writer {w}: asking the version of `{stream}`"),
                )?
                .unwrap_or(0),
        };
        let mut conflicts = 0u32;
        loop {
            let doing =
                format!("writer {w}: appending its event {k} to `{stream}` at version {version}");
            match store
                .append(stream, ExpectedVersion::Exact(version), vec![event.clone()])
                .await
            {
                Ok(out) => {
                    ensure!(
                        cx,
                        !out.deduplicated,
                        "{doing}: the event came back deduplicated: an earlier attempt that \
                         reported a conflict was written after all: {out:?}"
                    );
                    ensure!(
                        cx,
                        out.stream_version == version + 1 && out.positions.len() == 1,
                        "{doing}: expected version {} and one position, got {out:?}",
                        version + 1
                    );
                    acks.push(Ack {
                        event,
                        stream: s,
                        version: version + 1,
                        position: out.positions[0],
                    });
                    known[s] = Some(version + 1);
                    break;
                }
                Err(StoreError::Concurrency {
                    stream_id,
                    expected,
                    actual,
                }) => {
                    ensure!(
                        cx,
                        stream_id == *stream && expected == ExpectedVersion::Exact(version),
                        "{doing}: the concurrency error names stream `{stream_id}` and expected \
                         {expected:?}"
                    );
                    let now = actual.0.unwrap_or(0);
                    ensure!(
                        cx,
                        now > version,
                        "{doing}: the conflict says the stream is at {actual}, but version \
                         {version} was read from the store and versions only grow"
                    );
                    lost += 1;
                    conflicts += 1;
                    ensure!(
                        cx,
                        conflicts < 100_000,
                        "{doing}: still conflicting after 100 000 retries"
                    );
                    version = now;
                }
                Err(other) => {
                    return Err(cx.fail(format!(
                        "{doing}: a lost race must be a concurrency error, got {}",
                        show(&other)
                    )));
                }
            }
        }
    }
    Ok((acks, lost))
}

/// The stores' streams and global log hold exactly the acknowledged appends.
async fn check_acks<S: EventStore>(
    cx: &Cx,
    store: &S,
    streams: &[String],
    acks: &[Ack],
    start: u64,
) -> Result<(), Failure> {
    let mut ids = HashSet::new();
    for ack in acks {
        ensure!(
            cx,
            ids.insert(ack.event.event_id),
            "event {} was acknowledged twice",
            ack.event.event_id
        );
    }
    let mut positions = HashSet::new();
    for ack in acks {
        ensure!(
            cx,
            positions.insert(ack.position),
            "two acknowledged appends were given position {}",
            ack.position
        );
    }
    for (s, stream) in streams.iter().enumerate() {
        let mut by_version: BTreeMap<u64, &Ack> = BTreeMap::new();
        for ack in acks.iter().filter(|a| a.stream == s) {
            if let Some(earlier) = by_version.insert(ack.version, ack) {
                return Err(cx.fail(format!(
                    "`{stream}` version {} was acknowledged twice, to events {} and {}: a lost \
                     update",
                    ack.version, earlier.event.event_id, ack.event.event_id
                )));
            }
        }
        let n = by_version.len() as u64;
        ensure!(
            cx,
            by_version.keys().copied().eq(1..=n),
            "the acknowledged versions of `{stream}` have gaps: {:?}",
            by_version.keys().collect::<Vec<_>>()
        );
        let stored = cx.read(store, stream, 1).await?;
        let sent: Vec<&NewEvent> = by_version.values().map(|a| &a.event).collect();
        let positions: Vec<u64> = by_version.values().map(|a| a.position).collect();
        cx.same_events(
            &format!("reading `{stream}` after the writers"),
            &stored,
            stream,
            1,
            &sent,
            Some(&positions),
        )?;
        let version = cx.ok(
            store.stream_version(stream).await,
            &format!("asking the version of `{stream}`"),
        )?;
        ensure!(
            cx,
            version == (n > 0).then_some(n),
            "`{stream}` had {n} acknowledged appends, its version is {version:?}"
        );
    }
    let log = cx.own_log(store, start + 1).await?;
    check_log(
        cx,
        "reading the global log after the writers",
        &log,
        acks,
        streams,
    )
}

/// `log` (this run's events of the global log, in the order read) holds every
/// acknowledged event exactly once, in position order, as acknowledged.
fn check_log(
    cx: &Cx,
    what: &str,
    log: &[RecordedEvent],
    acks: &[Ack],
    streams: &[String],
) -> Result<(), Failure> {
    ensure!(
        cx,
        log.windows(2).all(|w| w[0].position < w[1].position),
        "{what}: the events are not in strictly increasing position order"
    );
    let by_id: HashMap<_, &Ack> = acks.iter().map(|a| (a.event.event_id, a)).collect();
    let mut seen = HashSet::new();
    for e in log {
        let Some(ack) = by_id.get(&e.event_id) else {
            return Err(cx.fail(format!(
                "{what}: event {} (`{}` v{} @{}) was never acknowledged",
                e.event_id, e.stream_id, e.version, e.position
            )));
        };
        ensure!(
            cx,
            seen.insert(e.event_id),
            "{what}: event {} (@{}) was read twice",
            e.event_id,
            e.position
        );
        ensure!(
            cx,
            ack.event.same_content_as(e)
                && *e.stream_id == *streams[ack.stream]
                && e.version == ack.version
                && e.position == ack.position,
            "{what}: event {} reads as `{}` v{} @{}, it was acknowledged as `{}` v{} @{}",
            e.event_id,
            e.stream_id,
            e.version,
            e.position,
            streams[ack.stream],
            ack.version,
            ack.position
        );
    }
    if seen.len() != acks.len() {
        let mut missing: Vec<&Ack> = acks
            .iter()
            .filter(|a| !seen.contains(&a.event.event_id))
            .collect();
        missing.sort_by_key(|a| a.position);
        let shown: Vec<String> = missing
            .iter()
            .take(10)
            .map(|a| format!("`{}` v{} @{}", streams[a.stream], a.version, a.position))
            .collect();
        return Err(cx.fail(format!(
            "{what}: {} of {} acknowledged events were never read, such as {}",
            missing.len(),
            acks.len(),
            shown.join(", ")
        )));
    }
    Ok(())
}

/// The global log while writers commit: [`Config::writers`] tasks append
/// [`Config::appends_per_writer`] events each, in batches of one to three with
/// `ExpectedVersion::Any`, over [`Config::hot_streams`] streams, while three readers page
/// through the log from the head they started at (limits 7, 64 and 16) until the writers
/// are done and the log is read to its end.
///
/// Every reader sees every acknowledged event exactly once, in strictly increasing
/// position order, at its acknowledged stream, version and position, and nothing else of
/// these streams: an event that commits below a position a reader already passed is
/// caught as missing. The third reader re-reads from the middle of every page it gets and
/// must read the same events again (what a reader has seen is final). Afterwards every
/// stream's versions are gapless.
pub async fn global_log_under_writes<S: EventStore>(
    store: S,
    config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("global_log_under_writes");
    let store = Arc::new(store);
    let start = cx.head(&*store).await?;
    let streams: Arc<Vec<String>> = Arc::new(
        (0..config.hot_streams)
            .map(|i| cx.stream(&format!("log{i}")))
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (limit, resume) in [(7usize, false), (64, false), (16, true)] {
        let (cx, store, done) = (cx.clone(), store.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            tail(&cx, &*store, start + 1, limit, resume, &done).await
        }));
    }
    let mut writers = Vec::new();
    for w in 0..config.writers {
        let (cx, store, streams) = (cx.clone(), store.clone(), streams.clone());
        let appends = config.appends_per_writer;
        writers.push(tokio::spawn(async move {
            let mut acks = Vec::with_capacity(appends);
            let mut rng = 0xD1B5_4A32_D192_ED03 ^ (w as u64 + 1).wrapping_mul(0x9E37_79B9);
            let mut k = 0;
            while k < appends {
                let size = (1 + next(&mut rng) % 3).min((appends - k) as u64) as usize;
                let s = (next(&mut rng) % streams.len() as u64) as usize;
                let batch = probe_events((w * 1_000_000 + k) as u64, size);
                let out = cx
                    .append(&*store, &streams[s], ExpectedVersion::Any, &batch)
                    .await?;
                for (i, event) in batch.into_iter().enumerate() {
                    acks.push(Ack {
                        event,
                        stream: s,
                        version: out.first_version() + i as u64,
                        position: out.positions[i],
                    });
                }
                k += size;
            }
            Ok::<_, Failure>(acks)
        }));
    }
    let mut acks = Vec::new();
    let mut failure = None;
    for (w, task) in writers.into_iter().enumerate() {
        match join(&cx, &format!("writer {w}"), task).await {
            Ok(Ok(mine)) => acks.extend(mine),
            Ok(Err(f)) | Err(f) => {
                failure.get_or_insert(f);
            }
        }
    }
    done.store(true, Ordering::Release);
    let mut logs = Vec::new();
    for (r, task) in readers.into_iter().enumerate() {
        match join(&cx, &format!("reader {r}"), task).await {
            Ok(Ok(log)) => logs.push(log),
            Ok(Err(f)) | Err(f) => {
                failure.get_or_insert(f);
            }
        }
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    for (r, log) in logs.iter().enumerate() {
        let own: Vec<RecordedEvent> = log
            .iter()
            .filter(|e| cx.owns(&e.stream_id))
            .cloned()
            .collect();
        check_log(
            &cx,
            &format!("reader {r}, tailing the log while the writers ran"),
            &own,
            &acks,
            &streams,
        )?;
    }
    for stream in streams.iter() {
        let stored = cx.read(&*store, stream, 1).await?;
        ensure!(
            cx,
            stored
                .iter()
                .enumerate()
                .all(|(i, e)| e.version == i as u64 + 1),
            "`{stream}` should have gapless versions from 1, it reads:\n{}",
            list(&stored)
        );
    }
    Ok(())
}

/// A reader of [`global_log_under_writes`]: pages through the log from `from` until
/// `done` was set before a read that came back empty.
async fn tail<S: EventStore>(
    cx: &Cx,
    store: &S,
    from: u64,
    limit: usize,
    resume: bool,
    done: &AtomicBool,
) -> Result<Vec<RecordedEvent>, Failure> {
    let mut next = from;
    let mut seen: Vec<RecordedEvent> = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let doing = format!("tailing the global log from {next}, limit {limit}");
        let page = cx.ok(store.read_all(next, limit).await, &doing)?;
        check_page(cx, &page, next, limit)?;
        let Some(last) = page.last() else {
            if finished {
                return Ok(seen);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let last = last.position;
        if resume && page.len() > 1 {
            let mid = page.len() / 2;
            let at = page[mid].position;
            let again = cx.ok(
                store.read_all(at, limit).await,
                &format!("re-reading the global log from {at}, limit {limit}"),
            )?;
            let tail = &page[mid..];
            let same = again.len() >= tail.len()
                && again
                    .iter()
                    .zip(tail)
                    .all(|(a, b)| a.event_id == b.event_id && a.position == b.position);
            ensure!(
                cx,
                same,
                "re-reading the global log from position {at} gave other events than the read \
                 before; first read (from {at} on):\n{}re-read:\n{}",
                list(tail),
                list(&again)
            );
        }
        next = last + 1;
        seen.extend(page);
    }
}
