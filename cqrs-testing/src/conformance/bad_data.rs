//! Bad data: events no decoder accepts, and rows damaged behind the store's back, give
//! typed errors, never a panic.

use std::sync::Arc;

use cqrs_core::store::{EventStore, ExpectedVersion, StoreError};
use cqrs_core::{
    Aggregate, CommandError, DecodeReason, EventDecodeError, JsonCodec, NewEvent, ReadError,
    RecordedEvent,
};

use super::appends::visit;
use super::support::{
    Cx, Probe, ProbeEvent, ensure, list, no_panic, probe_events, refs, runtime_of,
};
use super::{Config, Failure};

/// How one kind of bad event is made, and the decode error it must give.
struct Kind {
    name: &'static str,
    damage: fn(&mut NewEvent),
    reason: fn(&DecodeReason) -> bool,
    wanted: &'static str,
}

const KINDS: [Kind; 5] = [
    Kind {
        name: "unknown-type",
        damage: |e| e.event_type = "NoSuchEvent".into(),
        reason: |r| matches!(r, DecodeReason::UnknownEventType { .. }),
        wanted: "UnknownEventType",
    },
    Kind {
        name: "not-json",
        damage: |e| e.payload = b"\xff\x00 not json \xc3\x28".to_vec().into(),
        reason: |r| matches!(r, DecodeReason::Payload(_)),
        wanted: "Payload",
    },
    Kind {
        name: "truncated-json",
        damage: |e| e.payload = br#"{"n":1"#.to_vec().into(),
        reason: |r| matches!(r, DecodeReason::Payload(_)),
        wanted: "Payload",
    },
    Kind {
        name: "wrong-shape",
        damage: |e| e.payload = br#"{"n":"one","extra":[1,2]}"#.to_vec().into(),
        reason: |r| matches!(r, DecodeReason::Payload(_)),
        wanted: "Payload",
    },
    Kind {
        name: "future-version",
        damage: |e| e.schema_version = 99,
        reason: |r| matches!(r, DecodeReason::UnsupportedSchemaVersion { found: 99, .. }),
        wanted: "UnsupportedSchemaVersion { found: 99, .. }",
    },
];

/// Whether `e` names `stream_id` version 2 with a reason `kind` accepts.
fn names(e: &EventDecodeError, stream_id: &str, kind: &Kind) -> bool {
    e.stream_id == stream_id && e.version == 2 && (kind.reason)(&e.reason)
}

/// Events no decoder accepts, written through the public API: an unknown type name, a
/// payload that is not JSON (nor UTF-8), truncated JSON, JSON of the wrong shape, an
/// unknown schema version; each between two sound events of a stream.
///
/// The store keeps them as it keeps any event (the payload is opaque bytes) and reads
/// them back unchanged, without panicking. Decoding with [`RecordedEvent::decode`] gives
/// an [`EventDecodeError`] naming the stream, version 2, the position, the stored type and
/// schema version, with the right [`DecodeReason`]; the sound events decode.
/// [`Cqrs::load`](cqrs_core::Cqrs::load) of the stream fails with
/// [`CommandError::Decode`] naming the event, and
/// [`Cqrs::read_log`](cqrs_core::Cqrs::read_log) with [`ReadError::Decode`].
pub async fn undecodable_events<S: EventStore>(
    store: S,
    _config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("undecodable_events");
    let store = Arc::new(store);
    let cqrs = runtime_of(&store);
    for kind in &KINDS {
        let id = cx.probe_id(kind.name);
        let stream = Probe::stream_id(&id);
        let mut events = probe_events(1, 3);
        (kind.damage)(&mut events[1]);
        let out = cx
            .append(&*store, &stream, ExpectedVersion::NoStream, &events)
            .await?;

        let doing = format!("reading `{stream}`, whose second event is {}", kind.name);
        let read = {
            let (store, stream) = (store.clone(), stream.clone());
            no_panic(
                &cx,
                &doing,
                async move { store.read_stream(&stream, 1).await },
            )
            .await?
        };
        let stored = cx.ok(read, &doing)?;
        cx.same_events(
            &doing,
            &stored,
            &stream,
            1,
            &refs(&events),
            Some(&out.positions),
        )?;

        for i in [0, 2] {
            let decoded = stored[i].decode::<ProbeEvent, _>(&JsonCodec);
            let n = i as u64 + 1;
            ensure!(
                cx,
                matches!(&decoded, Ok(d) if *d == [ProbeEvent::Probed { n }]),
                "{doing}: the sound event v{n} should decode, got {decoded:?}"
            );
        }
        match stored[1].decode::<ProbeEvent, _>(&JsonCodec) {
            Err(e)
                if names(&e, &stream, kind)
                    && e.position == out.positions[1]
                    && e.event_type == events[1].event_type
                    && e.schema_version == events[1].schema_version => {}
            other => {
                return Err(cx.fail(format!(
                    "decoding the {} event of `{stream}`: expected an EventDecodeError naming \
                     the stream, version 2, position {}, its type and schema version, with \
                     reason {}; got {other:?}",
                    kind.name, out.positions[1], kind.wanted
                )));
            }
        }

        let doing = format!("loading `{stream}` through the runtime");
        let loaded = {
            let (cqrs, id) = (cqrs.clone(), id.clone());
            no_panic(&cx, &doing, async move { cqrs.load(&id).await }).await?
        };
        match loaded {
            Err(CommandError::Decode(e)) if names(&e, &stream, kind) => {}
            other => {
                return Err(cx.fail(format!(
                    "{doing}: expected CommandError::Decode naming version 2 with reason {}, \
                     got {other:?}",
                    kind.wanted
                )));
            }
        }

        let doing = format!(
            "reading the log through the runtime from position {}",
            out.positions[0]
        );
        let page = {
            let (cqrs, from) = (cqrs.clone(), out.positions[0]);
            no_panic(&cx, &doing, async move { cqrs.read_log(from, 100).await }).await?
        };
        match page {
            Err(ReadError::Decode(e)) if names(&e, &stream, kind) => {}
            other => {
                return Err(cx.fail(format!(
                    "{doing}: expected ReadError::Decode naming `{stream}` version 2 with reason \
                     {}, got {other:?}",
                    kind.wanted
                )));
            }
        }
    }
    Ok(())
}

/// What a read of the damaged stream may give: an error, or the damaged event that then
/// does not decode. Never the event as if it were sound, never a gap.
fn damaged_read(
    cx: &Cx,
    doing: &str,
    stream_id: &str,
    result: Result<Vec<RecordedEvent>, StoreError>,
    must_hold: bool,
) -> Result<(), Failure> {
    let events = match result {
        Err(_) => return Ok(()),
        Ok(events) => events,
    };
    let damaged = events
        .iter()
        .find(|e| &*e.stream_id == stream_id && e.version == 2);
    match damaged {
        None if must_hold => Err(cx.fail(format!(
            "{doing}: the damaged event (v2) is missing from the read, with no error:\n{}",
            list(&events)
        ))),
        None => Ok(()),
        Some(e) => match e.decode::<ProbeEvent, _>(&JsonCodec) {
            Err(_) => Ok(()),
            Ok(decoded) => Err(cx.fail(format!(
                "{doing}: the damaged event reads as a sound event ({decoded:?}): either the \
                 corrupt hook changed nothing the store reads back, or the store papered over \
                 the damage; it should answer with an error (StoreError::Backend) or bytes \
                 that do not decode\nread: {e:?}"
            ))),
        },
    }
}

/// A row damaged behind the store's back, with the adapter's [`CorruptHook`](super::CorruptHook)
/// ([`Config::corrupt`]; without one this case checks nothing).
///
/// The hook damages version 2 of a stream of three. Then `read_stream`,
/// `read_stream_with`, `read_all` and [`Cqrs::load`](cqrs_core::Cqrs::load) must each
/// answer without panicking, with a typed error ([`StoreError`], or
/// [`CommandError::Decode`] / [`CommandError::Store`] from the runtime) or with the
/// damaged event whose bytes do not decode; never with the event read as sound and never
/// by leaving it out. Another stream still reads as written.
pub async fn corrupt_rows<S: EventStore>(store: S, config: &Config<S>) -> Result<(), Failure> {
    let Some(hook) = config.corrupt else {
        return Ok(());
    };
    let cx = Cx::new("corrupt_rows");
    let store = Arc::new(store);
    let start = cx.head(&*store).await?;
    let id = cx.probe_id("corrupt");
    let stream = Probe::stream_id(&id);
    let control = Probe::stream_id(&cx.probe_id("control"));
    let events = probe_events(1, 3);
    cx.append(&*store, &stream, ExpectedVersion::NoStream, &events)
        .await?;
    let sound = probe_events(1, 2);
    let out = cx
        .append(&*store, &control, ExpectedVersion::NoStream, &sound)
        .await?;

    hook(&store, &stream, 2).await.map_err(|e| {
        cx.fail(format!(
            "the corrupt hook failed to damage `{stream}` version 2: {e}"
        ))
    })?;

    let doing = format!("reading `{stream}` after its version 2 was damaged");
    let read = {
        let (store, stream) = (store.clone(), stream.clone());
        no_panic(
            &cx,
            &doing,
            async move { store.read_stream(&stream, 1).await },
        )
        .await?
    };
    damaged_read(&cx, &doing, &stream, read, true)?;

    let doing = format!("visiting `{stream}` after its version 2 was damaged");
    let read = {
        let (store, stream) = (store.clone(), stream.clone());
        no_panic(&cx, &doing, async move {
            visit(&*store, &stream, 1, usize::MAX).await
        })
        .await?
    };
    damaged_read(&cx, &doing, &stream, read, true)?;

    let doing = format!("reading the global log from {} after the damage", start + 1);
    let read = {
        let store = store.clone();
        no_panic(
            &cx,
            &doing,
            async move { store.read_all(start + 1, 1000).await },
        )
        .await?
    };
    damaged_read(&cx, &doing, &stream, read, false)?;

    let doing = format!("loading `{stream}` through the runtime after the damage");
    let loaded = {
        let (cqrs, id) = (runtime_of(&store), id.clone());
        no_panic(&cx, &doing, async move { cqrs.load(&id).await }).await?
    };
    match loaded {
        Err(CommandError::Store(_)) => {}
        Err(CommandError::Decode(e)) if e.stream_id == stream && e.version == 2 => {}
        other => {
            return Err(cx.fail(format!(
                "{doing}: expected CommandError::Store or CommandError::Decode naming version \
                 2, got {other:?}"
            )));
        }
    }

    let stored = cx.read(&*store, &control, 1).await?;
    cx.same_events(
        "reading another stream after the damage",
        &stored,
        &control,
        1,
        &refs(&sound),
        Some(&out.positions),
    )?;
    Ok(())
}
