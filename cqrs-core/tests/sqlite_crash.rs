//! Crash durability of the SQLite store.
//!
//! A child process (this test executable again, running [`crash_child`] with
//! `CQRS_CRASH_CHILD` set) appends batches of 1–5 events from several concurrent tasks
//! (so group commit forms groups), to shared streams (`ExpectedVersion::Any`) and to one
//! private stream per task (`ExpectedVersion::Exact`), and logs every acknowledged append
//! to an ack log. The parent kills it with `SIGKILL` a random 5–150 ms after its first
//! ack (every fifth round: after its start, so some kills land in the open, the WAL
//! recovery or the schema creation), then opens the file and checks that
//!
//! 1. every acknowledged event is there: stream, version, position, id and payload;
//! 2. no batch is partially there: every stored event carries its batch's marker (round,
//!    task, batch, index, size) in its payload, and each batch is whole or absent;
//! 3. stream versions are gapless from 1, positions strictly increase, the `streams`
//!    table and `head_position` agree with the events, `batch_size` marks each batch;
//! 4. `PRAGMA integrity_check` says `ok`;
//! 5. the store opens and takes an append (the next round continues the same file).
//!
//! Half the rounds run with `Durability::Full`, half with `Durability::Normal`: a killed
//! process loses nothing acknowledged in either mode (only an OS crash or a power loss
//! may cost `Normal` its last transactions). Events committed but not yet logged when the
//! kill came are allowed ("beyond the acks"); they must be whole batches too.
//!
//! To stay fast as the file grows, each check reads through the store only the events
//! added since the previous one; the older ones are counted in SQL (none may vanish), a
//! random sample of their batches is read back in full, every tenth round and the end
//! reread the whole file, and `integrity_check` covers the whole file every round.
//!
//! `CQRS_CRASH_SEED` replays a seed (timing still varies); `CQRS_CRASH_ROUNDS` sets the
//! number of rounds (default 60). On failure the directory with the database and the
//! ack logs is kept and its path printed.
#![cfg(all(feature = "sqlite", unix))]

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cqrs_core::ExpectedVersion;
use cqrs_core::prelude::*;
use cqrs_core::store::AppendOutcome;
use cqrs_core::store::sqlite::{Durability, SqliteEventStore, SqliteOptions};

/// Set in the child's environment: the database file. Its presence makes
/// [`crash_child`] the appending child; without it that test does nothing.
const CHILD_DB: &str = "CQRS_CRASH_CHILD";
const CHILD_LOG: &str = "CQRS_CRASH_CHILD_LOG";
const CHILD_ROUND: &str = "CQRS_CRASH_CHILD_ROUND";
const CHILD_DURABILITY: &str = "CQRS_CRASH_CHILD_DURABILITY";
const CHILD_SEED: &str = "CQRS_CRASH_CHILD_SEED";

/// Concurrent appending tasks in the child.
const TASKS: u64 = 4;
/// Streams every task appends to (with `ExpectedVersion::Any`).
const SHARED_STREAMS: u64 = 3;
/// The `task` of the batch the parent appends after each check.
const PARENT_TASK: u64 = 99;
const DEFAULT_ROUNDS: u64 = 60;
const EVENT_TYPE: &str = "CrashNoted";

/// SplitMix64: small, seedable, good enough to pick sizes and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Identifies one batch across the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct BatchKey {
    round: u64,
    task: u64,
    batch: u64,
}

/// The payload of event `index` of a batch of `size`: the batch marker, the stream, and
/// a padding of varying length (so the WAL fills and checkpoints run during the test).
/// Fully determined by its arguments, so the parent can check every stored payload.
fn payload(key: BatchKey, index: u64, size: u64, stream: &str) -> Bytes {
    let BatchKey { round, task, batch } = key;
    let pad = mix(round << 40 ^ task << 32 ^ batch << 8 ^ index) % 300;
    Bytes::from(format!(
        r#"{{"round":{round},"task":{task},"batch":{batch},"index":{index},"size":{size},"stream":"{stream}","pad":"{}"}}"#,
        "x".repeat(pad as usize)
    ))
}

fn batch(key: BatchKey, size: u64, stream: &str) -> Vec<NewEvent> {
    (0..size)
        .map(|index| NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: EVENT_TYPE.into(),
            schema_version: 1,
            metadata: Metadata::default(),
            payload: payload(key, index, size, stream),
        })
        .collect()
}

/// One line of the ack log: `round task batch stream first_version positions ids`, the
/// lists comma-separated.
fn ack_line(key: BatchKey, stream: &str, outcome: &AppendOutcome, events: &[NewEvent]) -> String {
    let positions: Vec<String> = outcome.positions.iter().map(u64::to_string).collect();
    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    format!(
        "{} {} {} {stream} {} {} {}\n",
        key.round,
        key.task,
        key.batch,
        outcome.first_version(),
        positions.join(","),
        ids.join(",")
    )
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

// ---------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------

/// The appending child. In a normal test run `CQRS_CRASH_CHILD` is unset and this returns
/// at once; [`acknowledged_appends_survive_sigkill`] runs this executable with it set.
#[test]
fn crash_child() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let log = std::env::var_os(CHILD_LOG).expect("CQRS_CRASH_CHILD_LOG");
    let round = env_u64(CHILD_ROUND).expect("CQRS_CRASH_CHILD_ROUND");
    let seed = env_u64(CHILD_SEED).expect("CQRS_CRASH_CHILD_SEED");
    let durability = match std::env::var(CHILD_DURABILITY).as_deref() {
        Ok("full") => Durability::Full,
        Ok("normal") => Durability::Normal,
        other => panic!("bad CQRS_CRASH_CHILD_DURABILITY {other:?}"),
    };
    let store = SqliteOptions::new()
        .durability(durability)
        .open(PathBuf::from(db))
        .expect("the child cannot open the store");
    let log = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("the child cannot open its ack log"),
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let appenders: Vec<_> = (0..TASKS)
            .map(|task| {
                let rng = Rng(mix(seed ^ round << 32 ^ task));
                tokio::spawn(append_forever(store.clone(), log.clone(), round, task, rng))
            })
            .collect();
        for appender in appenders {
            appender.await.unwrap();
        }
    });
    unreachable!("the appenders never stop");
}

async fn append_forever(
    store: SqliteEventStore,
    log: Arc<Mutex<File>>,
    round: u64,
    task: u64,
    mut rng: Rng,
) {
    let private = format!("Private-{task}");
    let mut private_version = store.stream_version(&private).await.unwrap();
    for batch_no in 0.. {
        let key = BatchKey {
            round,
            task,
            batch: batch_no,
        };
        let size = rng.range(1, 5);
        let (stream, expected) = if rng.range(0, 3) == 0 {
            let expected = match private_version {
                None => ExpectedVersion::NoStream,
                Some(v) => ExpectedVersion::Exact(v),
            };
            (private.clone(), expected)
        } else {
            let shared = format!("Shared-{}", rng.range(0, SHARED_STREAMS - 1));
            (shared, ExpectedVersion::Any)
        };
        let events = batch(key, size, &stream);
        let outcome = store
            .append(&stream, expected, events.clone())
            .await
            .unwrap_or_else(|e| panic!("append {key:?} to {stream} failed: {e}"));
        assert!(!outcome.deduplicated, "{key:?} deduplicated");
        if stream == private {
            private_version = Some(outcome.stream_version);
        }
        // One write(2) per line, after the acknowledgement. No fsync: the parent reads the
        // log after the child is dead, and the page cache survives a killed process.
        let line = ack_line(key, &stream, &outcome, &events);
        log.lock().unwrap().write_all(line.as_bytes()).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------------------

/// A directory removed at the end, unless the test failed (then it is kept for a look).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the crash test directory {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Kills the child if the parent fails while it runs.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An acknowledged batch, as logged by the child (or appended by the parent).
#[derive(Debug, Clone)]
struct Ack {
    stream: String,
    first_version: u64,
    positions: Vec<u64>,
    ids: Vec<uuid::Uuid>,
}

/// What one round's log held.
struct RoundLog {
    acks: Vec<(BatchKey, Ack)>,
    /// A last line without its newline: the kill came during the write. Not an ack.
    torn: bool,
}

fn read_log(path: &Path) -> RoundLog {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.pop().unwrap_or_default();
    let acks = lines
        .into_iter()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 7, "bad ack line {line:?}");
            let num = |i: usize| -> u64 { fields[i].parse().unwrap() };
            let key = BatchKey {
                round: num(0),
                task: num(1),
                batch: num(2),
            };
            let ack = Ack {
                stream: fields[3].to_owned(),
                first_version: num(4),
                positions: fields[5].split(',').map(|p| p.parse().unwrap()).collect(),
                ids: fields[6].split(',').map(|id| id.parse().unwrap()).collect(),
            };
            assert_eq!(ack.positions.len(), ack.ids.len(), "bad ack line {line:?}");
            (key, ack)
        })
        .collect();
    RoundLog {
        acks,
        torn: !last.is_empty(),
    }
}

/// Reads back the marker of a payload written by [`payload`]: batch, index, size, stream.
fn parse_payload(payload: &[u8]) -> Option<(BatchKey, u64, u64, &str)> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = text.strip_prefix(r#"{"round":"#)?;
    let (round, rest) = rest.split_once(r#","task":"#)?;
    let (task, rest) = rest.split_once(r#","batch":"#)?;
    let (batch, rest) = rest.split_once(r#","index":"#)?;
    let (index, rest) = rest.split_once(r#","size":"#)?;
    let (size, rest) = rest.split_once(r#","stream":""#)?;
    let (stream, _) = rest.split_once('"')?;
    let key = BatchKey {
        round: round.parse().ok()?,
        task: task.parse().ok()?,
        batch: batch.parse().ok()?,
    };
    Some((key, index.parse().ok()?, size.parse().ok()?, stream))
}

/// A whole batch found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredBatch {
    stream: Arc<str>,
    first_version: u64,
    positions: Vec<u64>,
    ids: Vec<uuid::Uuid>,
}

/// What the checks have established about the file: every event up to `head` was read,
/// and found in whole batches with gapless versions.
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    head: u64,
    events: u64,
    stream_versions: HashMap<Arc<str>, u64>,
    batches: HashMap<BatchKey, StoredBatch>,
    /// The keys of `batches`, in the order found (to sample from).
    order: Vec<BatchKey>,
}

/// Reads every event after `state.head` through the store and adds them to `state`,
/// checking positions, versions, payloads and (2) that each batch is whole.
async fn scan(store: &SqliteEventStore, raw: &rusqlite::Connection, state: &mut State) {
    let (from, events_before, batches_before) = (state.head, state.events, state.order.len());
    // Events of one batch, by index, while it is being read.
    let mut open: BTreeMap<BatchKey, (u64, Vec<RecordedEvent>)> = BTreeMap::new();
    loop {
        let page = store.read_all(state.head + 1, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        for event in page {
            assert!(
                event.position > state.head,
                "position {} after {}",
                event.position,
                state.head
            );
            state.head = event.position;
            state.events += 1;
            let version = state
                .stream_versions
                .entry(event.stream_id.clone())
                .or_insert(0);
            assert_eq!(
                event.version,
                *version + 1,
                "stream {}: version {} after {version} (position {})",
                event.stream_id,
                event.version,
                event.position
            );
            *version = event.version;
            assert_eq!(&*event.event_type, EVENT_TYPE, "{event:?}");
            assert_eq!(event.schema_version, 1, "{event:?}");
            let (key, index, size, stream) = parse_payload(&event.payload)
                .unwrap_or_else(|| panic!("foreign payload at position {}", event.position));
            assert_eq!(stream, &*event.stream_id, "position {}", event.position);
            assert_eq!(
                event.payload,
                payload(key, index, size, stream),
                "payload at position {}",
                event.position
            );
            assert!(
                !state.batches.contains_key(&key),
                "batch {key:?} found twice (position {})",
                event.position
            );
            let (batch_size, events) = open.entry(key).or_insert((size, Vec::new()));
            assert_eq!(
                (index, size),
                (events.len() as u64, *batch_size),
                "batch {key:?}: event {index} of {size} at position {} out of order",
                event.position
            );
            if let Some(previous) = events.last() {
                assert_eq!(previous.stream_id, event.stream_id, "batch {key:?}");
                assert_eq!(previous.version + 1, event.version, "batch {key:?}");
            }
            events.push(event);
            if events.len() as u64 == size {
                let (_, events) = open.remove(&key).unwrap();
                state.batches.insert(
                    key,
                    StoredBatch {
                        stream: events[0].stream_id.clone(),
                        first_version: events[0].version,
                        positions: events.iter().map(|e| e.position).collect(),
                        ids: events.iter().map(|e| e.event_id).collect(),
                    },
                );
                state.order.push(key);
            }
        }
    }
    // (2) No batch partially present.
    if let Some((key, (size, events))) = open.first_key_value() {
        let positions: Vec<u64> = events.iter().map(|e| e.position).collect();
        panic!(
            "{} batches partially present, e.g. {key:?}: {} of its {size} events, at \
             positions {positions:?}",
            open.len(),
            events.len()
        );
    }
    // The first event of each batch records its length, the others 0.
    let mut sizes = raw
        .prepare("SELECT position, batch_size FROM events WHERE position > ?1")
        .unwrap();
    let sizes: HashMap<u64, u64> = sizes
        .query_map([from as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sizes.len() as u64, state.events - events_before);
    for key in &state.order[batches_before..] {
        let batch = &state.batches[key];
        for (i, position) in batch.positions.iter().enumerate() {
            let expected = if i == 0 {
                batch.positions.len() as u64
            } else {
                0
            };
            assert_eq!(sizes[position], expected, "batch_size of {key:?} event {i}");
        }
    }
}

/// (1) Every acknowledged batch is in `state`, as acknowledged.
fn check_acks(state: &State, acks: &HashMap<BatchKey, Ack>) {
    for (key, ack) in acks {
        let batch = state
            .batches
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged batch {key:?} {ack:?} is missing"));
        assert_eq!(*batch.stream, ack.stream, "acknowledged batch {key:?}");
        assert_eq!(
            batch.first_version, ack.first_version,
            "acknowledged batch {key:?}"
        );
        assert_eq!(batch.positions, ack.positions, "acknowledged batch {key:?}");
        assert_eq!(batch.ids, ack.ids, "acknowledged batch {key:?}");
    }
}

fn count(raw: &rusqlite::Connection, sql: &str, params: impl rusqlite::Params) -> u64 {
    raw.query_row(sql, params, |row| row.get::<_, i64>(0))
        .unwrap() as u64
}

/// Checks (1)–(4) after a kill. Events already checked after an earlier kill are not read
/// again through the store (the file grows, the test must stay fast): they must all still
/// be there (counted in SQL), a random sample of their batches is read back in full, and
/// every `deep` round rereads the whole file from scratch.
async fn check_after_kill(
    db: &Path,
    state: &mut State,
    acks: &HashMap<BatchKey, Ack>,
    rng: &mut Rng,
    deep: bool,
) {
    let store = SqliteEventStore::open(db).expect("the store does not open after the kill");
    let raw = rusqlite::Connection::open(db).unwrap();
    raw.busy_timeout(Duration::from_secs(5)).unwrap();

    // Nothing checked earlier went away.
    let head = state.head as i64;
    assert_eq!(
        count(
            &raw,
            "SELECT count(*) FROM events WHERE position <= ?1",
            [head]
        ),
        state.events,
        "events checked after an earlier kill are gone"
    );
    for _ in 0..state.order.len().min(20) {
        let key = state.order[rng.range(0, state.order.len() as u64 - 1) as usize];
        let batch = &state.batches[&key];
        let events = store
            .read_all(batch.positions[0], batch.positions.len())
            .await
            .unwrap();
        let again = StoredBatch {
            stream: events[0].stream_id.clone(),
            first_version: events[0].version,
            positions: events.iter().map(|e| e.position).collect(),
            ids: events.iter().map(|e| e.event_id).collect(),
        };
        assert_eq!(&again, batch, "batch {key:?} read again");
        for (index, event) in events.iter().enumerate() {
            let expected = payload(key, index as u64, events.len() as u64, &batch.stream);
            assert_eq!(event.payload, expected, "batch {key:?} read again");
        }
    }

    // The new events.
    scan(&store, &raw, state).await;
    if deep {
        let mut fresh = State::default();
        scan(&store, &raw, &mut fresh).await;
        assert!(
            fresh == *state,
            "rereading the whole file found something else"
        );
    }
    check_acks(state, acks);

    // (3) The store's bookkeeping agrees with the events.
    assert_eq!(store.head_position().await.unwrap(), state.head);
    assert_eq!(count(&raw, "SELECT count(*) FROM events", []), state.events);
    for (stream, version) in &state.stream_versions {
        assert_eq!(
            store.stream_version(stream).await.unwrap(),
            Some(*version),
            "stream {stream}"
        );
    }
    let table: HashMap<Arc<str>, u64> = raw
        .prepare("SELECT stream_id, version FROM streams")
        .unwrap()
        .query_map([], |row| {
            Ok((
                Arc::from(row.get::<_, String>(0)?),
                row.get::<_, i64>(1)? as u64,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(table, state.stream_versions, "the streams table");

    // (4) SQLite's own check of the whole file.
    let integrity: Vec<String> = raw
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// (5) The store takes an append after the crash: one batch from the parent, which later
/// rounds check like the child's.
async fn append_after_crash(db: &Path, round: u64) -> (BatchKey, Ack) {
    let store = SqliteEventStore::open(db).unwrap();
    let key = BatchKey {
        round,
        task: PARENT_TASK,
        batch: 0,
    };
    let stream = "Shared-0";
    let events = batch(key, 2, stream);
    let outcome = store
        .append(stream, ExpectedVersion::Any, events.clone())
        .await
        .expect("the store does not take an append after the kill");
    let ack = Ack {
        stream: stream.to_owned(),
        first_version: outcome.first_version(),
        positions: outcome.positions,
        ids: events.iter().map(|e| e.event_id).collect(),
    };
    (key, ack)
}

#[derive(Debug, Default)]
struct PhaseTotals {
    rounds: u64,
    rounds_with_acks: u64,
    acked_batches: u64,
    acked_events: u64,
    torn_log_lines: u64,
    /// Kills timed from the child's start rather than from its first ack.
    kills_from_start: u64,
    /// Kills that left a WAL for the next open to recover.
    kills_with_wal: u64,
    max_wal_bytes: u64,
}

/// Waits until the child has logged its first ack (or fails if it stops or never does).
fn wait_for_first_ack(child: &mut Child, log: &Path, stderr: &Path, round: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(log).map_or(0, |m| m.len()) == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: the child stopped before appending ({status}):\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: the child did not append within a minute"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let started = Instant::now();
    let seed = env_u64("CQRS_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let rounds = env_u64("CQRS_CRASH_ROUNDS")
        .unwrap_or(DEFAULT_ROUNDS)
        .max(2);
    println!("sqlite crash test: seed {seed} (CQRS_CRASH_SEED={seed} replays it), {rounds} rounds");
    let mut rng = Rng(seed);

    let dir = TempDir(std::env::temp_dir().join(format!("cqrs-crash-{}", uuid::Uuid::now_v7())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = dir.0.join("events.db");
    let exe = std::env::current_exe().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let mut acks: HashMap<BatchKey, Ack> = HashMap::new();
    let mut state = State::default();
    let mut totals = [PhaseTotals::default(), PhaseTotals::default()];
    for round in 0..rounds {
        let (phase, durability) = if round < rounds / 2 {
            (0, "full")
        } else {
            (1, "normal")
        };
        let log = dir.0.join(format!("acks-{round}.log"));
        let stderr = dir.0.join(format!("child-{round}.stderr"));
        let mut child = ChildGuard(Some(
            Command::new(&exe)
                .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_DB, &db)
                .env(CHILD_LOG, &log)
                .env(CHILD_ROUND, round.to_string())
                .env(CHILD_DURABILITY, durability)
                .env(CHILD_SEED, rng.next().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&stderr).unwrap())
                .spawn()
                .expect("cannot start the child"),
        ));
        let running = child.0.as_mut().unwrap();
        // Most kills come while the child appends: 5–150 ms after its first ack. Every
        // fifth comes 5–150 ms after the start, wherever the child is (opening the file,
        // recovering the WAL the last kill left, creating the schema in round 0).
        let from_start = round % 5 == 0;
        if !from_start {
            wait_for_first_ack(running, &log, &stderr, round);
        }
        std::thread::sleep(Duration::from_millis(rng.range(5, 150)));
        if let Some(status) = running.try_wait().unwrap() {
            panic!(
                "round {round}: the child stopped by itself ({status}):\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        running.kill().unwrap(); // SIGKILL on Unix
        let status = running.wait().unwrap();
        child.0 = None;
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child was not killed by SIGKILL ({status}):\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );

        let wal = std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len());
        let round_log = read_log(&log);
        let phase_totals = &mut totals[phase];
        phase_totals.rounds += 1;
        phase_totals.rounds_with_acks += u64::from(!round_log.acks.is_empty());
        phase_totals.acked_batches += round_log.acks.len() as u64;
        phase_totals.acked_events += round_log
            .acks
            .iter()
            .map(|(_, ack)| ack.ids.len() as u64)
            .sum::<u64>();
        phase_totals.torn_log_lines += u64::from(round_log.torn);
        phase_totals.kills_from_start += u64::from(from_start);
        phase_totals.kills_with_wal += u64::from(wal > 0);
        phase_totals.max_wal_bytes = phase_totals.max_wal_bytes.max(wal);
        for (key, ack) in round_log.acks {
            assert!(acks.insert(key, ack).is_none(), "{key:?} logged twice");
        }

        let deep = round % 10 == 9;
        runtime.block_on(check_after_kill(&db, &mut state, &acks, &mut rng, deep));
        let (key, ack) = runtime.block_on(append_after_crash(&db, round));
        acks.insert(key, ack);
    }
    // The whole file once more, with the parent's last append.
    let mut fresh = State::default();
    runtime.block_on(async {
        let store = SqliteEventStore::open(&db).unwrap();
        let raw = rusqlite::Connection::open(&db).unwrap();
        scan(&store, &raw, &mut fresh).await;
    });
    check_acks(&fresh, &acks);

    let acked_events: u64 = acks.values().map(|ack| ack.ids.len() as u64).sum();
    println!(
        "sqlite crash test: {rounds} kills in {:.1?}; the file holds {} events in {} batches; \
         all {} acknowledged batches ({acked_events} events, {} of them from the parent's \
         appends after each kill) were checked after every kill; {} events ({} batches) were \
         committed beyond the acks (not yet logged when killed)",
        started.elapsed(),
        fresh.events,
        fresh.batches.len(),
        acks.len(),
        2 * rounds,
        fresh.events - acked_events,
        fresh.batches.len() - acks.len(),
    );
    for (name, t) in ["Full", "Normal"].iter().zip(&totals) {
        println!("  {name:>6}: {t:?}");
    }
    // A run where the children were always killed before appending proves nothing.
    for (name, t) in ["Full", "Normal"].iter().zip(&totals) {
        assert!(
            t.rounds_with_acks >= t.rounds - t.kills_from_start && t.acked_batches >= 100,
            "{name}: too few acknowledged appends to mean anything: {t:?}"
        );
    }
}
