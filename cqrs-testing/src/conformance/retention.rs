//! Snapshots and retention: deleting and truncating streams, time to live, and the markers
//! that tell readers of the global log what went.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_core::snapshot::Snapshot;
use cqrs_core::store::{
    EventStore, ExpectedVersion, RETENTION_STREAM, RetentionEvent, RetentionOutcome, StoreError,
};
use cqrs_core::{JsonCodec, NewEvent, RecordedEvent};

use super::appends::visit;
use super::support::{Cx, ensure, list, millis, probe_event, probe_events, refs, show};
use super::{Config, Failure};

use ExpectedVersion::{Any, Exact, NoStream, StreamExists};

/// A snapshot of `stream_id` at `version`.
fn snapshot(stream_id: &str, version: u64, snapshot_version: u32, payload: &[u8]) -> Snapshot {
    Snapshot {
        stream_id: Arc::from(stream_id),
        stream_version: version,
        snapshot_version,
        codec: Arc::from("conformance-codec"),
        taken_at: SystemTime::now(),
        payload: payload.to_vec().into(),
    }
}

/// Whether two snapshots are the same, `taken_at` to the millisecond.
fn same_snapshot(a: &Snapshot, b: &Snapshot) -> bool {
    let close = match a.taken_at.duration_since(b.taken_at) {
        Ok(d) => d,
        Err(e) => e.duration(),
    } < Duration::from_millis(1);
    a.stream_id == b.stream_id
        && a.stream_version == b.stream_version
        && a.snapshot_version == b.snapshot_version
        && a.codec == b.codec
        && a.payload == b.payload
        && close
}

async fn load<S: EventStore + ?Sized>(
    cx: &Cx,
    store: &S,
    stream_id: &str,
) -> Result<Option<Snapshot>, Failure> {
    cx.ok(
        store.load_snapshot(stream_id).await,
        &format!("loading the snapshot of `{stream_id}`"),
    )
}

async fn expect_snapshot<S: EventStore + ?Sized>(
    cx: &Cx,
    store: &S,
    what: &str,
    want: Option<&Snapshot>,
) -> Result<(), Failure> {
    let stream_id = match want {
        Some(s) => s.stream_id.to_string(),
        None => return Ok(()),
    };
    let got = load(cx, store, &stream_id).await?;
    let same = match (&got, want) {
        (Some(g), Some(w)) => same_snapshot(g, w),
        _ => false,
    };
    ensure!(
        cx,
        same,
        "{what}: expected the snapshot {want:#?}\nloaded {got:#?}"
    );
    Ok(())
}

/// Snapshots: a stream without one loads `None`; a saved one loads back field for field
/// (binary payload, snapshot version, codec name; `taken_at` to the millisecond); a later
/// save of an older stream version is ignored, a newer one replaces it; each stream keeps
/// its own.
pub async fn snapshots<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("snapshots");
    let s = cx.stream("snap");
    let t = cx.stream("other");
    cx.append(&store, &s, NoStream, &probe_events(1, 10))
        .await?;
    cx.append(&store, &t, NoStream, &probe_events(1, 3)).await?;

    let none = load(&cx, &store, &s).await?;
    ensure!(
        cx,
        none.is_none(),
        "a stream never snapshotted should load no snapshot, got {none:#?}"
    );
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let at5 = snapshot(&s, 5, 42, &binary);
    let save = |snap: Snapshot| {
        let store = &store;
        let cx = &cx;
        async move {
            cx.ok(
                store.save_snapshot(&snap).await,
                &format!(
                    "saving a snapshot of `{}` at version {}",
                    snap.stream_id, snap.stream_version
                ),
            )
        }
    };
    save(at5.clone()).await?;
    expect_snapshot(&cx, &store, "after saving one at version 5", Some(&at5)).await?;

    save(snapshot(&s, 3, 42, b"older")).await?;
    expect_snapshot(
        &cx,
        &store,
        "after a late save of an older one (version 3)",
        Some(&at5),
    )
    .await?;

    let at8 = snapshot(&s, 8, 43, br#"{"state":8}"#);
    save(at8.clone()).await?;
    expect_snapshot(
        &cx,
        &store,
        "after saving a newer one (version 8)",
        Some(&at8),
    )
    .await?;

    let none = load(&cx, &store, &t).await?;
    ensure!(
        cx,
        none.is_none(),
        "another stream's snapshot must not show for `{t}`, got {none:#?}"
    );
    let other = snapshot(&t, 2, 1, b"t");
    save(other.clone()).await?;
    expect_snapshot(&cx, &store, "the other stream's own snapshot", Some(&other)).await?;
    expect_snapshot(&cx, &store, "after another stream saved one", Some(&at8)).await
}

/// Reads the retention marker at `position` from the global log and from
/// [`RETENTION_STREAM`], and decodes it.
async fn marker<S: EventStore + ?Sized>(
    cx: &Cx,
    store: &S,
    position: u64,
) -> Result<RetentionEvent, Failure> {
    let page = cx.ok(
        store.read_all(position, 1).await,
        &format!("reading the retention marker at position {position}"),
    )?;
    ensure!(
        cx,
        page.len() == 1 && &*page[0].stream_id == RETENTION_STREAM && page[0].position == position,
        "the global log should hold a retention marker of `{RETENTION_STREAM}` at position \
         {position}, it reads:\n{}",
        list(&page)
    );
    let markers = cx.read(store, RETENTION_STREAM, 1).await?;
    ensure!(
        cx,
        markers.iter().any(|m| m.event_id == page[0].event_id),
        "the marker at position {position} is in the global log but not in the stream \
         `{RETENTION_STREAM}`:\n{}",
        list(&markers)
    );
    let mut decoded = page[0]
        .decode::<RetentionEvent, _>(&JsonCodec)
        .map_err(|e| cx.fail(format!("the retention marker does not decode: {e}")))?;
    ensure!(
        cx,
        decoded.len() == 1,
        "the retention marker decodes into {decoded:?}"
    );
    Ok(decoded.remove(0))
}

/// Checks `outcome` removed `removed` events and recorded `want` after `after`.
async fn expect_marker<S: EventStore + ?Sized>(
    cx: &Cx,
    store: &S,
    what: &str,
    outcome: RetentionOutcome,
    after: u64,
    want: &RetentionEvent,
) -> Result<(), Failure> {
    let Some(position) = outcome.marker_position else {
        return Err(cx.fail(format!(
            "{what}: the outcome names no marker position: {outcome:?}"
        )));
    };
    ensure!(
        cx,
        position > after,
        "{what}: the marker's position {position} should be after every event committed \
         before it (the last at {after})"
    );
    let got = marker(cx, store, position).await?;
    ensure!(
        cx,
        got == *want,
        "{what}: the marker should say {want:?}, it says {got:?}"
    );
    Ok(())
}

/// Expects `result` to be [`StoreError::StreamDeleted`] naming `stream_id`.
fn deleted<T: std::fmt::Debug>(
    cx: &Cx,
    doing: &str,
    stream_id: &str,
    result: Result<T, StoreError>,
) -> Result<(), Failure> {
    match cx.err(result, doing, "StreamDeleted")? {
        StoreError::StreamDeleted { stream_id: said } if said == stream_id => Ok(()),
        other => Err(cx.fail(format!(
            "{doing}: expected StreamDeleted naming `{stream_id}`, got {}",
            show(&other)
        ))),
    }
}

/// Expects `result` to be [`StoreError::StreamTruncated`] naming `stream_id` and
/// `first_version`.
fn truncated<T: std::fmt::Debug>(
    cx: &Cx,
    doing: &str,
    stream_id: &str,
    first_version: u64,
    result: Result<T, StoreError>,
) -> Result<(), Failure> {
    match cx.err(result, doing, "StreamTruncated")? {
        StoreError::StreamTruncated {
            stream_id: said,
            first_version: first,
        } if said == stream_id && first == first_version => Ok(()),
        other => Err(cx.fail(format!(
            "{doing}: expected StreamTruncated {{ stream_id: {stream_id:?}, first_version: \
             {first_version} }}, got {}",
            show(&other)
        ))),
    }
}

/// Expects `result` to be a concurrency error naming `stream_id`, `expected`, `actual`.
fn conflict<T: std::fmt::Debug>(
    cx: &Cx,
    doing: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    actual: Option<u64>,
    result: Result<T, StoreError>,
) -> Result<(), Failure> {
    match cx.err(result, doing, "a concurrency error")? {
        StoreError::Concurrency {
            stream_id: said,
            expected: e,
            actual: a,
        } if said == stream_id && e == expected && a.0 == actual => Ok(()),
        other => Err(cx.fail(format!(
            "{doing}: expected Concurrency {{ stream_id: {stream_id:?}, expected: {expected:?}, \
             actual: {actual:?} }}, got {}",
            show(&other)
        ))),
    }
}

/// The events of `log` (in order) that belong to `stream_id`.
fn of<'a>(log: &'a [RecordedEvent], stream_id: &str) -> Vec<&'a RecordedEvent> {
    log.iter().filter(|e| &*e.stream_id == stream_id).collect()
}

/// Checks that the log holds exactly `events` of `stream_id`, at `positions`.
fn log_holds(
    cx: &Cx,
    what: &str,
    log: &[RecordedEvent],
    stream_id: &str,
    events: &[&NewEvent],
    positions: &[u64],
) -> Result<(), Failure> {
    let got = of(log, stream_id);
    let same = got.len() == events.len()
        && got
            .iter()
            .zip(events)
            .zip(positions)
            .all(|((g, e), p)| e.same_content_as(g) && g.position == *p);
    ensure!(
        cx,
        same,
        "{what}: the global log should hold {} event(s) of `{stream_id}` at positions \
         {positions:?}, it holds:\n{}",
        events.len(),
        list(&got.into_iter().cloned().collect::<Vec<_>>())
    );
    Ok(())
}

/// Deleting a stream.
///
/// Expecting the wrong version (`Exact(2)` of a stream at 3, `NoStream`, `Exact(0)`) is a
/// concurrency error that changes nothing. Deleting at the right version removes its
/// three events from stream reads and the global log, drops its snapshot, keeps other
/// streams as they were, and records [`RetentionEvent::StreamDeleted`] (version 3,
/// removed 3) at the position the outcome names, after every earlier event. The id stays
/// tombstoned: appending (any expected version, even an exact re-send of its first
/// batch), `read_stream`, `read_stream_with` and `stream_version` give
/// [`StoreError::StreamDeleted`]; its snapshot loads `None` (or `StreamDeleted`).
///
/// A missing stream: deleting it with anything but `Any` is a concurrency error (and
/// leaves it missing); with `Any` it removes nothing and tombstones the id. Deleting
/// [`RETENTION_STREAM`] fails.
pub async fn delete_stream<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("delete_stream");
    let start = cx.head(&store).await?;
    let s = cx.stream("doomed");
    let o = cx.stream("kept");
    let doomed = probe_events(1, 3);
    cx.append(&store, &s, NoStream, &doomed).await?;
    let kept = probe_events(10, 2);
    let out_o = cx.append(&store, &o, NoStream, &kept).await?;
    let snap = snapshot(&s, 2, 1, b"state");
    cx.ok(store.save_snapshot(&snap).await, "saving a snapshot")?;

    for expected in [Exact(2), NoStream, Exact(0)] {
        let doing = format!("deleting `{s}` (at version 3) expecting {expected:?}");
        conflict(
            &cx,
            &doing,
            &s,
            expected,
            Some(3),
            store.delete_stream(&s, expected).await,
        )?;
        let stored = cx.read(&store, &s, 1).await?;
        cx.same_events(&doing, &stored, &s, 1, &refs(&doomed), None)?;
        expect_snapshot(&cx, &store, &doing, Some(&snap)).await?;
    }

    let head = cx.head(&store).await?;
    let doing = format!("deleting `{s}` expecting version 3");
    let outcome = cx.ok(store.delete_stream(&s, Exact(3)).await, &doing)?;
    ensure!(
        cx,
        outcome.removed == 3,
        "{doing}: expected 3 events removed, got {outcome:?}"
    );
    expect_marker(
        &cx,
        &store,
        &doing,
        outcome,
        head,
        &RetentionEvent::StreamDeleted {
            stream_id: s.clone(),
            version: 3,
            removed: 3,
        },
    )
    .await?;

    for expected in [Any, NoStream, StreamExists, Exact(3), Exact(0)] {
        let doing = format!("appending to the deleted `{s}` expecting {expected:?}");
        deleted(
            &cx,
            &doing,
            &s,
            store.append(&s, expected, vec![probe_event(20)]).await,
        )?;
    }
    deleted(
        &cx,
        "re-sending the first batch of the deleted stream",
        &s,
        store.append(&s, NoStream, doomed.clone()).await,
    )?;
    for from in [1, 2, 4] {
        deleted(
            &cx,
            &format!("reading the deleted stream from version {from}"),
            &s,
            store.read_stream(&s, from).await,
        )?;
    }
    deleted(
        &cx,
        "visiting the deleted stream",
        &s,
        visit(&store, &s, 1, usize::MAX).await,
    )?;
    deleted(
        &cx,
        "asking the version of the deleted stream",
        &s,
        store.stream_version(&s).await,
    )?;
    match store.load_snapshot(&s).await {
        Ok(None) | Err(StoreError::StreamDeleted { .. }) => {}
        other => {
            return Err(cx.fail(format!(
                "loading the snapshot of the deleted stream: expected None or StreamDeleted, \
                 got {other:?}"
            )));
        }
    }
    match store.delete_stream(&s, Any).await {
        Ok(RetentionOutcome { removed: 0, .. }) | Err(StoreError::StreamDeleted { .. }) => {}
        other => {
            return Err(cx.fail(format!(
                "deleting the deleted stream again: expected StreamDeleted (or nothing \
                 removed), got {other:?}"
            )));
        }
    }

    let log = cx.read_log(&store, start + 1).await?;
    log_holds(&cx, "after the delete", &log, &s, &[], &[])?;
    log_holds(
        &cx,
        "after deleting another stream",
        &log,
        &o,
        &refs(&kept),
        &out_o.positions,
    )?;
    let stored = cx.read(&store, &o, 1).await?;
    cx.same_events(
        "reading another stream after the delete",
        &stored,
        &o,
        1,
        &refs(&kept),
        Some(&out_o.positions),
    )?;

    let missing = cx.stream("missing");
    for expected in [NoStream, Exact(0), StreamExists, Exact(1)] {
        let doing = format!("deleting the missing `{missing}` expecting {expected:?}");
        conflict(
            &cx,
            &doing,
            &missing,
            expected,
            None,
            store.delete_stream(&missing, expected).await,
        )?;
    }
    let version = cx.ok(
        store.stream_version(&missing).await,
        "asking the version of a stream a refused delete named",
    )?;
    ensure!(
        cx,
        version.is_none(),
        "a refused delete of a missing stream must leave it missing, its version is {version:?}"
    );
    cx.append(&store, &missing, NoStream, &probe_events(1, 1))
        .await?;

    let never = cx.stream("never-written");
    let doing = format!("deleting the missing `{never}` expecting any version");
    let outcome = cx.ok(store.delete_stream(&never, Any).await, &doing)?;
    ensure!(
        cx,
        outcome.removed == 0,
        "{doing}: nothing can be removed, got {outcome:?}"
    );
    deleted(
        &cx,
        "appending to a stream deleted before it was written",
        &never,
        store.append(&never, NoStream, vec![probe_event(1)]).await,
    )?;
    deleted(
        &cx,
        "asking the version of a stream deleted before it was written",
        &never,
        store.stream_version(&never).await,
    )?;

    let refused = store.delete_stream(RETENTION_STREAM, Any).await;
    ensure!(
        cx,
        refused.is_err(),
        "deleting `{RETENTION_STREAM}` must fail, it gave {refused:?}"
    );
    Ok(())
}

/// Truncating a stream.
///
/// Removing the events of a stream of five before version 3 removes two and records
/// [`RetentionEvent::StreamTruncated`] (before 3, removed 2). The stream keeps its
/// version; reading from version 0, 1 or 2 (also with `read_stream_with`) gives
/// [`StoreError::StreamTruncated`] with first version 3; reading from 3 gives versions 3
/// to 5 at their positions; the global log no longer holds the removed events. Truncating
/// again at or below the first version removes nothing and records no marker; beyond the
/// version + 1 is [`StoreError::InvalidBatch`]. Appends continue at version 6. Truncating
/// before version + 1 removes every event: reads from the end are empty, earlier ones
/// `StreamTruncated` with first version 7, the stream still exists (`NoStream` conflicts)
/// and the next append is version 7.
pub async fn truncate_stream<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("truncate_stream");
    let start = cx.head(&store).await?;
    let s = cx.stream("trunc");
    let events = probe_events(1, 5);
    let out = cx.append(&store, &s, NoStream, &events).await?;

    let head = cx.head(&store).await?;
    let doing = format!("truncating `{s}` (at version 5) before version 3");
    let outcome = cx.ok(store.truncate_stream(&s, 3).await, &doing)?;
    ensure!(
        cx,
        outcome.removed == 2,
        "{doing}: expected 2 events removed, got {outcome:?}"
    );
    expect_marker(
        &cx,
        &store,
        &doing,
        outcome,
        head,
        &RetentionEvent::StreamTruncated {
            stream_id: s.clone(),
            before_version: 3,
            removed: 2,
        },
    )
    .await?;

    for from in [0, 1, 2] {
        truncated(
            &cx,
            &format!("reading the truncated stream from version {from}"),
            &s,
            3,
            store.read_stream(&s, from).await,
        )?;
    }
    truncated(
        &cx,
        "visiting the truncated stream from version 1",
        &s,
        3,
        visit(&store, &s, 1, usize::MAX).await,
    )?;
    let stored = cx.read(&store, &s, 3).await?;
    cx.same_events(
        "reading the truncated stream from version 3",
        &stored,
        &s,
        3,
        &refs(&events[2..]),
        Some(&out.positions[2..]),
    )?;
    let version = cx.ok(store.stream_version(&s).await, "asking the version")?;
    ensure!(
        cx,
        version == Some(5),
        "truncation keeps the stream's version (5), the store says {version:?}"
    );
    let log = cx.read_log(&store, start + 1).await?;
    log_holds(
        &cx,
        "after the truncation",
        &log,
        &s,
        &refs(&events[2..]),
        &out.positions[2..],
    )?;

    for before in [0, 1, 2, 3] {
        let doing = format!("truncating `{s}` (first version 3) before version {before}");
        let outcome = cx.ok(store.truncate_stream(&s, before).await, &doing)?;
        ensure!(
            cx,
            outcome.removed == 0 && outcome.marker_position.is_none(),
            "{doing}: nothing is left to remove, so nothing is removed or recorded; got \
             {outcome:?}"
        );
    }
    let doing = format!("truncating `{s}` (at version 5) before version 7");
    let e = cx.err(
        store.truncate_stream(&s, 7).await,
        &doing,
        "an invalid batch error",
    )?;
    ensure!(
        cx,
        matches!(&e, StoreError::InvalidBatch { stream_id, .. } if *stream_id == s),
        "{doing}: expected InvalidBatch naming the stream, got {}",
        show(&e)
    );
    let stored = cx.read(&store, &s, 3).await?;
    cx.same_events(&doing, &stored, &s, 3, &refs(&events[2..]), None)?;

    let sixth = probe_events(6, 1);
    let out6 = cx.append(&store, &s, Exact(5), &sixth).await?;
    ensure!(
        cx,
        out6.stream_version == 6,
        "after a truncation, appends continue at the next version (6): {out6:?}"
    );

    let head = cx.head(&store).await?;
    let doing = format!("truncating `{s}` (at version 6) before version 7");
    let outcome = cx.ok(store.truncate_stream(&s, 7).await, &doing)?;
    ensure!(
        cx,
        outcome.removed == 4,
        "{doing}: expected the 4 remaining events removed, got {outcome:?}"
    );
    expect_marker(
        &cx,
        &store,
        &doing,
        outcome,
        head,
        &RetentionEvent::StreamTruncated {
            stream_id: s.clone(),
            before_version: 7,
            removed: 4,
        },
    )
    .await?;
    for from in [1, 6] {
        truncated(
            &cx,
            &format!("reading the emptied stream from version {from}"),
            &s,
            7,
            store.read_stream(&s, from).await,
        )?;
    }
    let stored = cx.read(&store, &s, 7).await?;
    ensure!(
        cx,
        stored.is_empty(),
        "reading the emptied stream from its next version should give nothing:\n{}",
        list(&stored)
    );
    let version = cx.ok(store.stream_version(&s).await, "asking the version")?;
    ensure!(
        cx,
        version == Some(6),
        "an emptied stream keeps its version (6), the store says {version:?}"
    );
    conflict(
        &cx,
        "appending to the emptied stream expecting no stream",
        &s,
        NoStream,
        Some(6),
        store.append(&s, NoStream, vec![probe_event(7)]).await,
    )?;
    let seventh = probe_events(7, 1);
    let out7 = cx.append(&store, &s, Exact(6), &seventh).await?;
    ensure!(
        cx,
        out7.stream_version == 7,
        "after emptying the stream, appends continue at version 7: {out7:?}"
    );
    let stored = cx.read(&store, &s, 7).await?;
    cx.same_events(
        "reading the emptied stream's new event",
        &stored,
        &s,
        7,
        &refs(&seventh),
        Some(&out7.positions),
    )
}

/// Time to live across streams.
///
/// Stream `a` gets two events and `b` one, and `t` three of which the first is truncated
/// away (a marker); then, after a pause, `a` gets a third event and `c` one. Expiring
/// everything recorded before a cut-off between the two groups (taken from the store's
/// own `recorded_at` times, halfway) removes `a` v1–2, `b` v1 and `t` v2–3 (exactly five
/// when the store was empty) and records one [`RetentionEvent::EventsExpired`] with the
/// cut-off in milliseconds and the count. Afterwards `a` reads from version 3
/// ([`StoreError::StreamTruncated`] before) and keeps version 3, `b` and `t` are emptied
/// but keep their versions and take their next append there, `c` is whole, the earlier
/// truncation marker is still in the global log, and expiring again removes nothing.
pub async fn expire<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("expire");
    let start = cx.head(&store).await?;
    let (a, b, c, t) = (
        cx.stream("a"),
        cx.stream("b"),
        cx.stream("c"),
        cx.stream("t"),
    );
    let a_old = probe_events(1, 2);
    cx.append(&store, &a, NoStream, &a_old).await?;
    cx.append(&store, &b, NoStream, &probe_events(1, 1)).await?;
    cx.append(&store, &t, NoStream, &probe_events(1, 3)).await?;
    let trunc = cx.ok(
        store.truncate_stream(&t, 2).await,
        "truncating `t` before version 2",
    )?;
    let Some(old_marker) = trunc.marker_position else {
        return Err(cx.fail(format!(
            "truncating `{t}` before version 2 recorded no marker: {trunc:?}"
        )));
    };
    let mut old: Vec<RecordedEvent> = Vec::new();
    for (stream, from) in [(&a, 1), (&b, 1), (&t, 2)] {
        old.extend(cx.read(&store, stream, from).await?);
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let a_new = probe_events(3, 1);
    cx.append(&store, &a, Exact(2), &a_new).await?;
    let c_events = probe_events(1, 1);
    let out_c = cx.append(&store, &c, NoStream, &c_events).await?;
    let mut new = cx.read(&store, &a, 3).await?;
    new.extend(cx.read(&store, &c, 1).await?);

    let latest_old = old.iter().map(|e| e.recorded_at).max();
    let earliest_new = new.iter().map(|e| e.recorded_at).min();
    let (Some(latest_old), Some(earliest_new)) = (latest_old, earliest_new) else {
        return Err(cx.fail("the events just appended read back empty"));
    };
    let Ok(gap) = earliest_new.duration_since(latest_old) else {
        return Err(cx.fail(format!(
            "events appended 30 ms later were recorded earlier: {earliest_new:?} < \
             {latest_old:?}"
        )));
    };
    ensure!(
        cx,
        gap > Duration::ZERO,
        "events appended 30 ms apart were recorded at the same time ({latest_old:?}): \
         recorded_at needs at least millisecond precision"
    );
    let cut = latest_old + gap / 2;

    let head = cx.head(&store).await?;
    let doing = format!("expiring events recorded before {cut:?}");
    let outcome = cx.ok(store.expire(cut).await, &doing)?;
    let exact = start == 0;
    ensure!(
        cx,
        if exact {
            outcome.removed == 5
        } else {
            outcome.removed >= 5
        },
        "{doing}: expected {} events removed (a v1-2, b v1, t v2-3), got {outcome:?}",
        if exact { "5" } else { "at least 5" }
    );
    let Some(position) = outcome.marker_position else {
        return Err(cx.fail(format!("{doing}: the outcome names no marker: {outcome:?}")));
    };
    ensure!(
        cx,
        position > head,
        "{doing}: the marker's position {position} should be after the head {head}"
    );
    match marker(&cx, &store, position).await? {
        RetentionEvent::EventsExpired {
            recorded_before_ms,
            removed,
        } if u128::from(recorded_before_ms).abs_diff(millis(cut)) <= 1
            && removed == outcome.removed => {}
        other => {
            return Err(cx.fail(format!(
                "{doing}: the marker should say EventsExpired {{ recorded_before_ms: {}, \
                 removed: {} }}, it says {other:?}",
                millis(cut),
                outcome.removed
            )));
        }
    }

    truncated(
        &cx,
        "reading `a` after the expiry",
        &a,
        3,
        store.read_stream(&a, 1).await,
    )?;
    let stored = cx.read(&store, &a, 3).await?;
    cx.same_events(
        "reading `a` from version 3 after the expiry",
        &stored,
        &a,
        3,
        &refs(&a_new),
        None,
    )?;
    truncated(
        &cx,
        "reading `b` after the expiry",
        &b,
        2,
        store.read_stream(&b, 1).await,
    )?;
    truncated(
        &cx,
        "reading `t` after the expiry",
        &t,
        4,
        store.read_stream(&t, 2).await,
    )?;
    for (stream, version) in [(&a, 3), (&b, 1), (&t, 3), (&c, 1)] {
        let got = cx.ok(
            store.stream_version(stream).await,
            &format!("asking the version of `{stream}`"),
        )?;
        ensure!(
            cx,
            got == Some(version),
            "after the expiry `{stream}` should keep version {version}, the store says {got:?}"
        );
    }
    let stored = cx.read(&store, &c, 1).await?;
    cx.same_events(
        "reading `c` after the expiry",
        &stored,
        &c,
        1,
        &refs(&c_events),
        Some(&out_c.positions),
    )?;
    let out_b = cx.append(&store, &b, Exact(1), &probe_events(2, 1)).await?;
    ensure!(
        cx,
        out_b.stream_version == 2,
        "an expired stream takes its next append at its next version (2): {out_b:?}"
    );

    let log = cx.read_log(&store, start + 1).await?;
    ensure!(
        cx,
        log.iter()
            .any(|e| e.position == old_marker && &*e.stream_id == RETENTION_STREAM),
        "the truncation marker at position {old_marker}, recorded before the cut-off, must \
         survive the expiry; the log holds:\n{}",
        list(&log)
    );
    for e in &old {
        ensure!(
            cx,
            !log.iter().any(|l| l.event_id == e.event_id),
            "the expired event `{}` v{} is still in the global log",
            e.stream_id,
            e.version
        );
    }

    let doing = "expiring again with the same cut-off";
    let again = cx.ok(store.expire(cut).await, doing)?;
    ensure!(
        cx,
        again.removed == 0 && again.marker_position.is_none(),
        "{doing}: nothing is left to remove, so nothing is removed or recorded; got {again:?}"
    );
    Ok(())
}
