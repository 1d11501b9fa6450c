//! Upcasting on every read path of the runtime: loading an aggregate (cached or not) and
//! reading the global log; and the typed errors of bad stored data.

use bytes::Bytes;
use cqrs_core::prelude::*;
use cqrs_core::upcast::{StoredValue, Upcast};
use cqrs_core::{CommandError, DecodeReason, ReadError};
use serde_json::{Value, json};
use std::borrow::Cow;

#[derive(Debug, Deserialize)]
struct CountedV1 {
    count: u64,
}

impl From<CountedV1> for MeterEvent {
    fn from(v1: CountedV1) -> Self {
        MeterEvent::Counted { by: v1.count }
    }
}

/// A removed `Batch` event stood for several counts.
fn batch(v: Value) -> Result<Upcast, String> {
    let counts = v["counts"].as_array().ok_or("`counts` must be a list")?;
    Ok(Upcast::Split(
        counts
            .iter()
            .map(|c| StoredValue::new("Counted", 2, json!({ "by": c })))
            .collect(),
    ))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(removed = "Batch", upcast = batch)]
#[event(removed = "Noise")]
enum MeterEvent {
    #[event(version = 2, alias = "Ticked")]
    #[upcast(1 -> 2, from = CountedV1)]
    Counted { by: u64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum MeterCommand {
    Count { by: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct MeterError;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    command = MeterCommand,
    event = MeterEvent,
    error = MeterError,
    name = "Meter",
    snapshot_version = 2
)]
struct Meter {
    total: u64,
    applied: u64,
}

#[aggregate_impl]
impl Meter {
    #[handle]
    fn count(&self, by: u64) -> MeterEvent {
        MeterEvent::Counted { by }
    }

    #[apply]
    fn counted(&mut self, by: &u64) {
        self.total += by;
        self.applied += 1;
    }
}

fn stored(event_type: &'static str, version: u32, payload: Value) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7(),
        event_type: Cow::Borrowed(event_type),
        schema_version: version,
        metadata: Metadata::default(),
        payload: Bytes::from(serde_json::to_vec(&payload).unwrap()),
    }
}

/// A stream written over the years: v1, an alias, a removed batch (split into three),
/// a removed event that is dropped, and today's version.
async fn history(store: &InMemoryEventStore, stream: &str) {
    store
        .append(
            stream,
            ExpectedVersion::NoStream,
            vec![
                stored("Counted", 1, json!({"count": 1})),
                stored("Ticked", 2, json!({"by": 10})),
                stored("Batch", 1, json!({"counts": [100, 200, 300]})),
                stored("Noise", 7, json!("anything")),
                stored("Counted", 2, json!({"by": 1000})),
            ],
        )
        .await
        .unwrap();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn loading_upcasts_splits_and_drops_yet_keeps_the_stored_version() {
    rt().block_on(async {
        let store = InMemoryEventStore::new();
        history(&store, "Meter-m1").await;
        for cache in [0, 100] {
            let meters = Cqrs::<Meter>::builder(store.clone())
                .cache_capacity(cache)
                .build();
            let loaded = meters.load("m1").await.unwrap();
            assert_eq!(loaded.state.total, 1611);
            // v1, alias, three from the split, none for the drop, today's.
            assert_eq!(loaded.state.applied, 6);
            // The version is the stream's: five stored events.
            assert_eq!(loaded.version, 5);
        }
        // A command on top of the old history appends at version 6.
        let meters = Cqrs::<Meter>::builder(store.clone()).build();
        let done = meters
            .execute("m1", MeterCommand::Count { by: 5 })
            .await
            .unwrap();
        assert_eq!(done.stream_version, 6);
        assert_eq!(meters.load("m1").await.unwrap().state.total, 1616);
    });
}

#[test]
fn the_global_log_is_read_upcast() {
    rt().block_on(async {
        let store = InMemoryEventStore::new();
        history(&store, "Meter-m1").await;
        // Another aggregate's event in between is not ours to decode.
        store
            .append(
                "Other-1",
                ExpectedVersion::Any,
                vec![stored("Whatever", 1, json!({}))],
            )
            .await
            .unwrap();
        let meters = Cqrs::<Meter>::builder(store.clone()).build();
        let page = meters.read_log(1, 100).await.unwrap();
        let bys: Vec<(u64, u64)> = page
            .events
            .iter()
            .map(|e| match e.event {
                MeterEvent::Counted { by } => (e.position, by),
            })
            .collect();
        assert_eq!(
            bys,
            [(1, 1), (2, 10), (3, 100), (3, 200), (3, 300), (5, 1000)]
        );
        assert_eq!(page.events[0].event_type, "Counted");
        assert_eq!(page.events[0].schema_version, 1);
        assert_eq!(page.next_position, 7);
        // Paging resumes where the last page stopped.
        let first = meters.read_log(1, 2).await.unwrap();
        assert_eq!(first.events.len(), 2);
        let rest = meters.read_log(first.next_position, 100).await.unwrap();
        assert_eq!(rest.events.len(), 4);
        assert!(meters.read_log(7, 10).await.unwrap().events.is_empty());
    });
}

#[test]
fn bad_stored_data_is_a_typed_error_naming_the_event() {
    rt().block_on(async {
        let cases = [
            (
                stored("Vanished", 1, json!({})),
                "no variant of `MeterEvent`",
            ),
            (
                stored("Counted", 3, json!({"by": 1})),
                "reads versions 1 to 2",
            ),
            (
                stored("Counted", 1, json!({"count": "many"})),
                "v1 -> v2 (typed `CountedV1`)",
            ),
            (
                stored("Batch", 1, json!({"counts": 5})),
                "`counts` must be a list",
            ),
            (
                stored("Counted", 2, json!({"by": -1})),
                "payload does not decode",
            ),
        ];
        for (i, (bad, why)) in cases.into_iter().enumerate() {
            let store = InMemoryEventStore::new();
            let stream = format!("Meter-bad{i}");
            store
                .append(
                    &stream,
                    ExpectedVersion::NoStream,
                    vec![stored("Counted", 2, json!({"by": 1})), bad],
                )
                .await
                .unwrap();
            let meters = Cqrs::<Meter>::builder(store.clone()).build();
            let err = meters.load(&format!("bad{i}")).await.unwrap_err();
            let CommandError::Decode(e) = &err else {
                panic!("{err:?}")
            };
            assert_eq!((e.stream_id.as_str(), e.version), (stream.as_str(), 2));
            let text = err.to_string();
            assert!(text.contains(why), "case {i}: `{why}` not in {text}");
            // A command on it fails the same way and writes nothing.
            let err = meters
                .execute(&format!("bad{i}"), MeterCommand::Count { by: 1 })
                .await
                .unwrap_err();
            assert!(matches!(err, CommandError::Decode(_)), "{err:?}");
            assert_eq!(store.stream_version(&stream).await.unwrap(), Some(2));
            // Reading the log stops at it too, never skipping it.
            let err = meters.read_log(1, 10).await.unwrap_err();
            let ReadError::Decode(e) = err else {
                panic!("{err:?}")
            };
            assert_eq!(e.version, 2);
            assert!(!matches!(e.reason, DecodeReason::SplitTooDeep { .. }));
        }
    });
}

#[test]
fn a_snapshot_of_another_version_or_codec_or_shape_is_ignored_not_misread() {
    use cqrs_core::Aggregate;
    use cqrs_core::codec::{Codec, CodecError};
    use cqrs_core::snapshot::{Snapshot, SnapshotRead};

    assert_eq!(Meter::SNAPSHOT_VERSION, 2);
    let state = Meter {
        total: 7,
        applied: 2,
    };
    let snap = Snapshot::take("Meter-1", 2, &state, &JsonCodec).unwrap();
    assert_eq!((snap.stream_version, snap.snapshot_version), (2, 2));
    assert_eq!(&*snap.codec, "json");
    match snap.read::<Meter, _>(&JsonCodec) {
        SnapshotRead::Usable(m) => assert_eq!(m, state),
        other => panic!("{other:?}"),
    }

    let older = Snapshot {
        snapshot_version: 1,
        ..snap.clone()
    };
    assert!(matches!(
        older.read::<Meter, _>(&JsonCodec),
        SnapshotRead::OtherVersion {
            found: 1,
            current: 2
        }
    ));

    /// JSON under another name, as a different codec would be.
    struct OtherJson;
    impl Codec for OtherJson {
        fn name(&self) -> &'static str {
            "other"
        }
        fn encode_event<E: Serialize + ?Sized>(
            &self,
            event: &E,
            out: &mut Vec<u8>,
        ) -> Result<(), CodecError> {
            JsonCodec.encode_event(event, out)
        }
        fn decode_event<E: serde::de::DeserializeOwned>(
            &self,
            index: u32,
            payload: &[u8],
        ) -> Result<E, CodecError> {
            JsonCodec.decode_event(index, payload)
        }
        fn encode_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
            JsonCodec.encode_value(value)
        }
        fn decode_value<T: serde::de::DeserializeOwned>(
            &self,
            bytes: &[u8],
        ) -> Result<T, CodecError> {
            JsonCodec.decode_value(bytes)
        }
    }
    assert!(matches!(
        snap.read::<Meter, _>(&OtherJson),
        SnapshotRead::OtherCodec { ref found, current: "other" } if &**found == "json"
    ));

    let reshaped = Snapshot {
        payload: Bytes::from_static(br#"{"sum":7}"#),
        ..snap
    };
    assert!(matches!(
        reshaped.read::<Meter, _>(&JsonCodec),
        SnapshotRead::Corrupt(_)
    ));
}
