//! The storage conformance suite against the in-memory store, and proof that the suite
//! catches broken stores: the in-memory store wrapped with one flaw at a time.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::SystemTime;

use cqrs_core::snapshot::Snapshot;
use cqrs_core::store::{
    ActualVersion, AppendOutcome, BoxError, EventStore, ExpectedVersion, InMemoryEventStore,
    RetentionOutcome, StoreError,
};
use cqrs_core::{Metadata, NewEvent, RecordedEvent};
use cqrs_testing::conformance::{self, BoxFuture, Config, Failure};

cqrs_testing::event_store_conformance!(memory, || async { InMemoryEventStore::new() });

// The whole suite again through the wrapper below without a flaw, with its corrupt hook:
// the wrapper is faithful, and `corrupt_rows` checks something.
cqrs_testing::event_store_conformance!(
    memory_with_corrupt_hook,
    || async { Broken::new(Flaw::None) },
    Config::quick().corrupt(corrupt)
);

/// What is wrong with a [`Broken`] store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// Nothing: a faithful wrapper.
    None,
    /// Appends whatever the expected version.
    IgnoresExpectedVersion,
    /// A batch that fails leaves its first event written.
    NotAtomic,
    /// A re-sent batch is a concurrency error instead of a deduplicated success.
    ForgetsIdempotency,
    /// A re-sent batch is written again under the same ids.
    DuplicatesResends,
    /// Reads drop the metadata.
    LosesMetadata,
    /// `read_all` returns each page backwards.
    ReordersReadAll,
    /// `read_all` drops the events at every 13th position.
    SkipsEvents,
    /// Reads panic on a payload that is not UTF-8.
    PanicsOnBinaryPayload,
    /// `delete_stream` records no marker.
    DeletesWithoutMarker,
    /// The last snapshot saved wins, even an older one.
    OlderSnapshotWins,
    /// A damaged event reads as a sound one (`{"n":0}`).
    PapersOverCorruption,
}

/// The in-memory store with a [`Flaw`], and events a corrupt hook marked as damaged.
struct Broken {
    inner: InMemoryEventStore,
    flaw: Flaw,
    snapshots: Mutex<HashMap<String, Snapshot>>,
    damaged: Mutex<HashSet<(String, u64)>>,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Self {
            inner: InMemoryEventStore::new(),
            flaw,
            snapshots: Mutex::default(),
            damaged: Mutex::default(),
        }
    }

    fn spoil(&self, events: &mut [RecordedEvent]) {
        let damaged = self.damaged.lock().unwrap();
        for e in events {
            if self.flaw == Flaw::LosesMetadata {
                e.metadata = Metadata::default();
            }
            if self.flaw == Flaw::PanicsOnBinaryPayload {
                std::str::from_utf8(&e.payload).expect("payloads are UTF-8 JSON");
            }
            if damaged.contains(&(e.stream_id.to_string(), e.version)) {
                e.payload = if self.flaw == Flaw::PapersOverCorruption {
                    br#"{"n":0}"#.to_vec().into()
                } else {
                    b"\x00\xffdamaged".to_vec().into()
                };
            }
        }
    }
}

/// An event with a fresh id.
fn fresh() -> NewEvent {
    #[derive(Debug, serde::Serialize, serde::Deserialize, cqrs_core::Event)]
    enum Fresh {
        Made,
    }
    NewEvent::encode(&Fresh::Made, &cqrs_core::JsonCodec, Metadata::default()).unwrap()
}

/// The corrupt hook of [`Broken`]: marks the event as damaged.
fn corrupt<'a>(
    store: &'a Broken,
    stream_id: &'a str,
    version: u64,
) -> BoxFuture<'a, Result<(), BoxError>> {
    Box::pin(async move {
        store
            .damaged
            .lock()
            .unwrap()
            .insert((stream_id.to_owned(), version));
        Ok(())
    })
}

#[cqrs_core::async_trait]
impl EventStore for Broken {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        match self.flaw {
            Flaw::IgnoresExpectedVersion => {
                self.inner
                    .append(stream_id, ExpectedVersion::Any, events)
                    .await
            }
            Flaw::NotAtomic => {
                let result = self.inner.append(stream_id, expected, events.clone()).await;
                if result.is_err() && events.len() > 1 {
                    let _ = self
                        .inner
                        .append(stream_id, ExpectedVersion::Any, vec![events[0].clone()])
                        .await;
                }
                result
            }
            Flaw::ForgetsIdempotency => {
                let out = self.inner.append(stream_id, expected, events).await?;
                if out.deduplicated {
                    return Err(StoreError::Concurrency {
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual: ActualVersion(self.inner.stream_version(stream_id).await?),
                    });
                }
                Ok(out)
            }
            Flaw::DuplicatesResends => {
                let out = self
                    .inner
                    .append(stream_id, expected, events.clone())
                    .await?;
                if !out.deduplicated {
                    return Ok(out);
                }
                // Write the batch again under fresh ids, and report it as new.
                let again = events
                    .into_iter()
                    .map(|e| NewEvent {
                        event_id: fresh().event_id,
                        ..e
                    })
                    .collect();
                self.inner
                    .append(stream_id, ExpectedVersion::Any, again)
                    .await
            }
            _ => self.inner.append(stream_id, expected, events).await,
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream_id, from_version).await?;
        self.spoil(&mut events);
        Ok(events)
    }

    async fn read_all(
        &self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_all(from_position, limit).await?;
        match self.flaw {
            Flaw::ReordersReadAll => events.reverse(),
            Flaw::SkipsEvents => events.retain(|e| e.position % 13 != 0),
            _ => {}
        }
        self.spoil(&mut events);
        Ok(events)
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream_id).await
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }

    async fn delete_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
    ) -> Result<RetentionOutcome, StoreError> {
        let mut out = self.inner.delete_stream(stream_id, expected).await?;
        if self.flaw == Flaw::DeletesWithoutMarker {
            out.marker_position = None;
        }
        Ok(out)
    }

    async fn truncate_stream(
        &self,
        stream_id: &str,
        before_version: u64,
    ) -> Result<RetentionOutcome, StoreError> {
        self.inner.truncate_stream(stream_id, before_version).await
    }

    async fn expire(&self, recorded_before: SystemTime) -> Result<RetentionOutcome, StoreError> {
        self.inner.expire(recorded_before).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        if self.flaw == Flaw::OlderSnapshotWins {
            self.snapshots
                .lock()
                .unwrap()
                .insert(snapshot.stream_id.to_string(), snapshot.clone());
            return Ok(());
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        if self.flaw == Flaw::OlderSnapshotWins {
            return Ok(self.snapshots.lock().unwrap().get(stream_id).cloned());
        }
        self.inner.load_snapshot(stream_id).await
    }
}

/// Runs a case to its end on a multi-threaded runtime.
fn run(case: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(case)
}

/// Runs a case against a broken store and returns how it failed.
#[track_caller]
fn caught(case: impl Future<Output = Result<(), Failure>>, needle: &str) -> Failure {
    match run(case) {
        Ok(()) => panic!("the suite let a broken store pass"),
        Err(failure) => {
            assert!(
                failure.message.contains(needle),
                "the failure should mention {needle:?}:\n{failure}"
            );
            failure
        }
    }
}

/// A reproducible configuration for the self-tests: fewer random sequences, the full
/// concurrency.
fn config() -> Config<Broken> {
    Config::default().model_cases(200).model_seed(7)
}

#[test]
fn a_store_that_ignores_expected_versions_is_caught() {
    let c = config();
    caught(
        conformance::expected_versions(Broken::new(Flaw::IgnoresExpectedVersion), &c),
        "expected a concurrency error",
    );
    caught(
        conformance::concurrent_writers(Broken::new(Flaw::IgnoresExpectedVersion), &c),
        "writer",
    );
    let failure = caught(
        conformance::model_based(Broken::new(Flaw::IgnoresExpectedVersion), &c),
        "the shortest failing sequence found",
    );
    assert_eq!(failure.case, "model_based");
    assert!(failure.message.contains("model_seed(7)"), "{failure}");
    // Shrinking leaves a sequence of at most two operations: an append the stream's state
    // refuses, perhaps after one that made the stream.
    let operations = failure
        .message
        .split("found (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no operation count in:\n{failure}"));
    assert!(operations <= 2, "{failure}");
}

#[test]
fn a_store_whose_failed_batches_write_part_of_them_is_caught() {
    caught(
        conformance::atomic_batches(Broken::new(Flaw::NotAtomic), &config()),
        "the stream afterwards",
    );
}

#[test]
fn a_store_that_refuses_re_sent_batches_is_caught() {
    caught(
        conformance::idempotent_appends(Broken::new(Flaw::ForgetsIdempotency), &config()),
        "Concurrency",
    );
    caught(
        conformance::model_based(Broken::new(Flaw::ForgetsIdempotency), &config()),
        "deduplicated",
    );
}

#[test]
fn a_store_that_writes_re_sent_batches_twice_is_caught() {
    caught(
        conformance::idempotent_appends(Broken::new(Flaw::DuplicatesResends), &config()),
        "deduplicated",
    );
}

#[test]
fn a_store_that_loses_metadata_is_caught() {
    caught(
        conformance::stream_reads(Broken::new(Flaw::LosesMetadata), &config()),
        "differs from what was appended",
    );
}

#[test]
fn a_store_that_reorders_the_global_log_is_caught() {
    caught(
        conformance::global_log(Broken::new(Flaw::ReordersReadAll), &config()),
        "strictly increasing position order",
    );
    caught(
        conformance::global_log_under_writes(Broken::new(Flaw::ReordersReadAll), &config()),
        "strictly increasing position order",
    );
    caught(
        conformance::model_based(Broken::new(Flaw::ReordersReadAll), &config()),
        "read_all",
    );
}

#[test]
fn a_store_that_skips_events_of_the_global_log_is_caught() {
    caught(
        conformance::global_log(Broken::new(Flaw::SkipsEvents), &config()),
        "expected",
    );
    caught(
        conformance::global_log_under_writes(Broken::new(Flaw::SkipsEvents), &config()),
        "never read",
    );
}

#[test]
fn a_store_that_panics_on_bad_data_is_caught() {
    caught(
        conformance::undecodable_events(Broken::new(Flaw::PanicsOnBinaryPayload), &config()),
        "panicked: payloads are UTF-8 JSON",
    );
}

#[test]
fn a_store_that_papers_over_a_damaged_row_is_caught() {
    let c = config().corrupt(corrupt);
    caught(
        conformance::corrupt_rows(Broken::new(Flaw::PapersOverCorruption), &c),
        "reads as a sound event",
    );
    // Without a hook the case cannot check anything, and says nothing.
    run(conformance::corrupt_rows(
        Broken::new(Flaw::PapersOverCorruption),
        &config(),
    ))
    .unwrap();
}

#[test]
fn a_store_whose_delete_records_no_marker_is_caught() {
    caught(
        conformance::delete_stream(Broken::new(Flaw::DeletesWithoutMarker), &config()),
        "no marker position",
    );
}

#[test]
fn a_store_where_an_older_snapshot_wins_is_caught() {
    caught(
        conformance::snapshots(Broken::new(Flaw::OlderSnapshotWins), &config()),
        "older one",
    );
}

#[test]
fn a_failure_names_its_case() {
    let failure = caught(
        conformance::expected_versions(Broken::new(Flaw::IgnoresExpectedVersion), &config()),
        "expected a concurrency error",
    );
    assert_eq!(failure.case, "expected_versions");
    assert!(
        failure
            .to_string()
            .starts_with("conformance case `expected_versions` failed: "),
        "{failure}"
    );
}

#[test]
fn run_all_reports_every_failing_case() {
    let failures = run(async {
        conformance::run_all(|| async { Broken::new(Flaw::LosesMetadata) }, &config())
            .await
            .map_err(|f| Failure {
                case: "run_all",
                message: f.to_string(),
            })
    })
    .unwrap_err();
    assert!(
        failures.message.contains("`stream_reads` failed"),
        "{failures}"
    );
    assert!(
        !failures.message.contains("`snapshots` failed"),
        "{failures}"
    );
    assert!(conformance::CASES.contains(&"stream_reads"));
}
