//! Appends and reads, one writer at a time: expected versions, batches, idempotency, the
//! envelope, the global log.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_core::store::{ActualVersion, EventStore, ExpectedVersion, RETENTION_STREAM, StoreError};
use cqrs_core::{Metadata, NewEvent, RecordedEvent};

use super::support::{Cx, ensure, join, list, probe_event, probe_events, refs, show};
use super::{Config, Failure};

use ExpectedVersion::{Any, Exact, NoStream, StreamExists};

/// The expected-version table on a missing stream and on a stream at version 2.
///
/// | expected | missing stream | stream at version 2 |
/// |---|---|---|
/// | `Any` | appends | appends |
/// | `NoStream` | appends | conflict |
/// | `StreamExists` | conflict | appends |
/// | `Exact(0)` | appends | conflict |
/// | `Exact(1)` | conflict | conflict |
/// | `Exact(2)` | conflict | appends |
/// | `Exact(3)` | conflict | conflict |
///
/// An accepted append returns the next version and one position per event and is read
/// back; a refused one is a [`StoreError::Concurrency`] naming the stream, the expected
/// version and the actual one, and leaves the stream as it was. A batch of three appended
/// at `Exact(2)` takes versions 3 to 5.
pub async fn expected_versions<S: EventStore>(
    store: S,
    _config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("expected_versions");
    let table = [
        (Any, true, true),
        (NoStream, true, false),
        (StreamExists, false, true),
        (Exact(0), true, false),
        (Exact(1), false, false),
        (Exact(2), false, true),
        (Exact(3), false, false),
    ];
    for (i, (expected, on_missing, on_existing)) in table.into_iter().enumerate() {
        for existing in [false, true] {
            let accepted = if existing { on_existing } else { on_missing };
            let state = if existing { "existing" } else { "missing" };
            let stream = cx.stream(&format!("table{i}-{state}"));
            let before = if existing {
                probe_events(1, 2)
            } else {
                Vec::new()
            };
            if existing {
                let out = cx.append(&store, &stream, NoStream, &before).await?;
                ensure!(
                    cx,
                    out.stream_version == 2 && out.first_version() == 1 && !out.deduplicated,
                    "the first append of two events to `{stream}` should end at version 2: {out:?}"
                );
            }
            let actual = existing.then_some(2u64);
            let version = cx.ok(
                store.stream_version(&stream).await,
                &format!("asking the version of `{stream}`"),
            )?;
            ensure!(
                cx,
                version == actual,
                "the version of `{stream}` should be {actual:?}, the store says {version:?}"
            );

            let event = probe_event(10);
            let doing = format!(
                "appending to a {} expecting {expected:?}",
                if existing {
                    "stream at version 2"
                } else {
                    "missing stream"
                }
            );
            let result = store.append(&stream, expected, vec![event.clone()]).await;
            if accepted {
                let out = cx.ok(result, &doing)?;
                let next = actual.unwrap_or(0) + 1;
                ensure!(
                    cx,
                    !out.deduplicated && out.stream_version == next && out.positions.len() == 1,
                    "{doing}: expected a fresh commit at version {next} with one position, \
                     got {out:?}"
                );
                let stored = cx.read(&store, &stream, 1).await?;
                let mut all = refs(&before);
                all.push(&event);
                cx.same_events(&doing, &stored, &stream, 1, &all, None)?;
                ensure!(
                    cx,
                    stored[stored.len() - 1].position == out.positions[0],
                    "{doing}: the append said position {}, the event reads at {}",
                    out.positions[0],
                    stored[stored.len() - 1].position
                );
                if existing {
                    ensure!(
                        cx,
                        stored[1].position < out.positions[0],
                        "{doing}: a later commit must have a higher position:\n{}",
                        list(&stored)
                    );
                }
            } else {
                let e = cx.err(result, &doing, "a concurrency error")?;
                match &e {
                    StoreError::Concurrency {
                        stream_id,
                        expected: said_expected,
                        actual: said_actual,
                    } if *stream_id == stream
                        && *said_expected == expected
                        && *said_actual == ActualVersion(actual) => {}
                    other => {
                        return Err(cx.fail(format!(
                            "{doing}: expected Concurrency {{ stream_id: {stream:?}, expected: \
                             {expected:?}, actual: ActualVersion({actual:?}) }}, got {}",
                            show(other)
                        )));
                    }
                }
                let stored = cx.read(&store, &stream, 1).await?;
                cx.same_events(
                    &format!("{doing} (refused): the stream afterwards"),
                    &stored,
                    &stream,
                    1,
                    &refs(&before),
                    None,
                )?;
                let version = cx.ok(
                    store.stream_version(&stream).await,
                    &format!("asking the version of `{stream}`"),
                )?;
                ensure!(
                    cx,
                    version == actual,
                    "{doing} (refused): the version should still be {actual:?}, the store says \
                     {version:?}"
                );
            }
        }
    }

    // A batch continues at the expected version.
    let stream = cx.stream("batch");
    let first = probe_events(1, 2);
    cx.append(&store, &stream, NoStream, &first).await?;
    let batch = probe_events(3, 3);
    let out = cx.append(&store, &stream, Exact(2), &batch).await?;
    ensure!(
        cx,
        out.stream_version == 5 && out.first_version() == 3 && !out.deduplicated,
        "a batch of three appended at version 2 should take versions 3 to 5: {out:?}"
    );
    let stored = cx.read(&store, &stream, 3).await?;
    cx.same_events(
        "reading a batch of three",
        &stored,
        &stream,
        3,
        &refs(&batch),
        Some(&out.positions),
    )?;
    Ok(())
}

/// Batches the store must refuse before writing anything: an empty batch, one with an
/// event id twice (in a small and in a large batch), and any batch for a `$`-prefixed
/// stream, [`RETENTION_STREAM`] included. Each is a [`StoreError::InvalidBatch`] naming
/// the stream; the stream stays missing and none of the ids reaches the log. A batch of
/// 100 events then commits in one piece.
pub async fn invalid_batches<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("invalid_batches");
    let start = cx.head(&store).await?;
    let stream = cx.stream("invalid");
    let x = probe_event(1);
    let mut large = probe_events(2, 40);
    large.insert(0, x.clone());
    large.push(x.clone());
    let reserved = format!("${}", cx.stream("reserved"));
    let attempts: Vec<(String, &str, ExpectedVersion, Vec<NewEvent>)> = vec![
        (stream.clone(), "an empty batch", Any, Vec::new()),
        (
            stream.clone(),
            "a batch with one event id twice",
            Any,
            vec![x.clone(), probe_event(2), x.clone()],
        ),
        (
            stream.clone(),
            "a batch of 42 with its first event id again at the end",
            NoStream,
            large,
        ),
        (
            reserved.clone(),
            "a batch for a `$`-prefixed stream",
            Any,
            vec![x.clone()],
        ),
        (
            RETENTION_STREAM.to_owned(),
            "a batch for the retention stream",
            Any,
            vec![x.clone()],
        ),
    ];
    for (stream_id, what, expected, events) in attempts {
        let doing = format!("appending {what} to `{stream_id}`");
        let e = cx.err(
            store.append(&stream_id, expected, events).await,
            &doing,
            "an invalid batch error",
        )?;
        match &e {
            StoreError::InvalidBatch {
                stream_id: said, ..
            } if *said == stream_id => {}
            other => {
                return Err(cx.fail(format!(
                    "{doing}: expected InvalidBatch naming `{stream_id}`, got {}",
                    show(other)
                )));
            }
        }
    }
    for stream_id in [&stream, &reserved] {
        let version = cx.ok(
            store.stream_version(stream_id).await,
            &format!("asking the version of `{stream_id}`"),
        )?;
        ensure!(
            cx,
            version.is_none(),
            "refused batches must not create `{stream_id}`, yet its version is {version:?}"
        );
    }
    let log = cx.read_log(&store, start + 1).await?;
    ensure!(
        cx,
        !log.iter().any(|e| e.event_id == x.event_id),
        "an event of a refused batch reached the global log:\n{}",
        list(&log)
    );

    let hundred = probe_events(1, 100);
    let out = cx.append(&store, &stream, NoStream, &hundred).await?;
    ensure!(
        cx,
        out.stream_version == 100,
        "a batch of 100 on a new stream should end at version 100: {out:?}"
    );
    let stored = cx.read(&store, &stream, 1).await?;
    cx.same_events(
        "reading a batch of 100",
        &stored,
        &stream,
        1,
        &refs(&hundred),
        Some(&out.positions),
    )
}

/// A batch that fails writes none of its events: refused for a conflict, for an event id
/// already committed in another stream, for an id twice, or for `StreamExists` on a
/// missing stream (which must not create it). After each, the stream and the global log
/// are as before and none of the batch's ids is stored. Nor are its ids burned: the batch
/// that conflicted then commits whole at the right version, not as a duplicate.
pub async fn atomic_batches<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("atomic_batches");
    let start = cx.head(&store).await?;
    let stream = cx.stream("atomic");
    let other = cx.stream("other");
    let missing = cx.stream("missing");
    let base = probe_events(1, 2);
    cx.append(&store, &stream, NoStream, &base).await?;
    let elsewhere = probe_events(100, 1);
    cx.append(&store, &other, NoStream, &elsewhere).await?;

    let conflicting = probe_events(3, 3);
    let mut duplicate = probe_events(3, 3);
    duplicate[2] = elsewhere[0].clone();
    let mut twice = probe_events(3, 3);
    twice[2] = twice[0].clone();
    let attempts: [(&str, &str, ExpectedVersion, &[NewEvent], &str); 4] = [
        (
            "a batch of three expecting version 1 of a stream at version 2",
            &stream,
            Exact(1),
            &conflicting,
            "Concurrency",
        ),
        (
            "a batch of three whose last event id is committed in another stream",
            &stream,
            Exact(2),
            &duplicate,
            "DuplicateEvent",
        ),
        (
            "a batch of three with an event id twice",
            &stream,
            Exact(2),
            &twice,
            "InvalidBatch",
        ),
        (
            "a batch of three expecting a missing stream to exist",
            &missing,
            StreamExists,
            &conflicting,
            "Concurrency",
        ),
    ];
    for (what, stream_id, expected, events, kind) in attempts {
        let doing = format!("appending {what}");
        let e = cx.err(
            store.append(stream_id, expected, events.to_vec()).await,
            &doing,
            kind,
        )?;
        let right = matches!(
            (&e, kind),
            (StoreError::Concurrency { .. }, "Concurrency")
                | (StoreError::DuplicateEvent { .. }, "DuplicateEvent")
                | (StoreError::InvalidBatch { .. }, "InvalidBatch")
        );
        ensure!(cx, right, "{doing}: expected {kind}, got {}", show(&e));

        let stored = cx.read(&store, &stream, 1).await?;
        cx.same_events(
            &format!("{doing}: the stream afterwards"),
            &stored,
            &stream,
            1,
            &refs(&base),
            None,
        )?;
        let version = cx.ok(
            store.stream_version(&missing).await,
            &format!("asking the version of `{missing}`"),
        )?;
        ensure!(
            cx,
            version.is_none(),
            "{doing}: a refused batch must not create `{missing}`, yet its version is {version:?}"
        );
        let log = cx.own_log(&store, start + 1).await?;
        let ids: Vec<_> = log.iter().map(|e| e.event_id).collect();
        let want = [base[0].event_id, base[1].event_id, elsewhere[0].event_id];
        ensure!(
            cx,
            ids == want,
            "{doing}: the global log should hold only the three events committed before, \
             it holds:\n{}",
            list(&log)
        );
    }

    let doing = "appending the batch that conflicted, now at the right version";
    let out = cx.append(&store, &stream, Exact(2), &conflicting).await?;
    ensure!(
        cx,
        !out.deduplicated && out.stream_version == 5,
        "{doing}: a failed batch must leave no trace, so this is a fresh commit at versions 3 \
         to 5; got {out:?}"
    );
    let stored = cx.read(&store, &stream, 3).await?;
    cx.same_events(
        doing,
        &stored,
        &stream,
        3,
        &refs(&conflicting),
        Some(&out.positions),
    )
}

/// Re-sending a committed batch, exactly, succeeds with `deduplicated` set, the original
/// positions and stream version, and writes nothing: whatever the expected version
/// (`NoStream`, `Any`, a stale or a wrong `Exact`), and for an older batch after later
/// ones. Eight copies of a new batch sent at once commit it once: every copy succeeds, one
/// of them fresh and the others deduplicated, all with the same positions.
pub async fn idempotent_appends<S: EventStore>(
    store: S,
    _config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("idempotent_appends");
    let store = Arc::new(store);
    let start = cx.head(&*store).await?;
    let stream = cx.stream("idem");
    let b1 = probe_events(1, 2);
    let out1 = cx.append(&*store, &stream, NoStream, &b1).await?;
    let b2 = probe_events(3, 1);
    let out2 = cx.append(&*store, &stream, Exact(2), &b2).await?;

    let resends: [(&[NewEvent], &_, ExpectedVersion); 8] = [
        (&b1, &out1, NoStream),
        (&b1, &out1, Any),
        (&b1, &out1, StreamExists),
        (&b1, &out1, Exact(0)),
        (&b1, &out1, Exact(2)),
        (&b1, &out1, Exact(9)),
        (&b2, &out2, Exact(0)),
        (&b2, &out2, Exact(3)),
    ];
    for (batch, original, expected) in resends {
        let doing = format!(
            "re-sending the committed batch of {} event(s) at versions {}..={} expecting \
             {expected:?}",
            batch.len(),
            original.first_version(),
            original.stream_version
        );
        let again = cx.ok(
            store.append(&stream, expected, batch.to_vec()).await,
            &doing,
        )?;
        ensure!(
            cx,
            again.deduplicated
                && again.positions == original.positions
                && again.stream_version == original.stream_version,
            "{doing}: expected a deduplicated outcome with the original positions {:?} and \
             stream version {}, got {again:?}",
            original.positions,
            original.stream_version
        );
    }
    let mut all: Vec<NewEvent> = b1.iter().chain(&b2).cloned().collect();
    let stored = cx.read(&*store, &stream, 1).await?;
    cx.same_events(
        "after the re-sends, the stream",
        &stored,
        &stream,
        1,
        &refs(&all),
        None,
    )?;

    // An older batch re-sent after later ones.
    let b3 = probe_events(4, 3);
    let out3 = cx.append(&*store, &stream, Exact(3), &b3).await?;
    let b4 = probe_events(7, 1);
    cx.append(&*store, &stream, Exact(6), &b4).await?;
    let doing = "re-sending the batch at versions 4..=6 after version 7 was appended";
    let again = cx.ok(store.append(&stream, NoStream, b3.clone()).await, doing)?;
    ensure!(
        cx,
        again.deduplicated && again.positions == out3.positions && again.stream_version == 6,
        "{doing}: expected a deduplicated outcome with positions {:?} and stream version 6, \
         got {again:?}",
        out3.positions
    );
    all.extend(b3.iter().chain(&b4).cloned());

    // Copies of one batch racing.
    let race = probe_events(10, 2);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let stream = stream.clone();
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            store.append(&stream, Exact(7), race).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        let doing = "sending one of eight copies of a batch at once";
        let result = join(&cx, doing, task).await?;
        outcomes.push(cx.ok(result, doing)?);
    }
    let fresh = outcomes.iter().filter(|o| !o.deduplicated).count();
    ensure!(
        cx,
        fresh == 1,
        "eight copies of one batch sent at once: exactly one should commit and the others be \
         deduplicated, but {fresh} say they committed: {outcomes:#?}"
    );
    ensure!(
        cx,
        outcomes
            .iter()
            .all(|o| o.positions == outcomes[0].positions && o.stream_version == 9),
        "eight copies of one batch sent at once should all report the same positions and \
         stream version 9: {outcomes:#?}"
    );
    all.extend(race.iter().cloned());

    let stored = cx.read(&*store, &stream, 1).await?;
    cx.same_events(
        "at the end, the stream",
        &stored,
        &stream,
        1,
        &refs(&all),
        None,
    )?;
    let log = cx.own_log(&*store, start + 1).await?;
    ensure!(
        cx,
        log.len() == all.len()
            && log
                .iter()
                .zip(&all)
                .all(|(got, want)| want.same_content_as(got)),
        "the global log should hold each of the {} events once, in order, it holds:\n{}",
        all.len(),
        list(&log)
    );
    Ok(())
}

/// Event ids that come back wrong are a [`StoreError::DuplicateEvent`] naming the id and
/// the stream of the rejected batch, and write nothing: a committed event with another
/// payload, metadata, type or schema version; the batch or one of its events in another
/// stream; a new event before or after the committed ones; the batch in another order.
/// Re-sending part of a batch is [`partial_resends`].
pub async fn conflicting_resends<S: EventStore>(
    store: S,
    _config: &Config<S>,
) -> Result<(), Failure> {
    let cx = Cx::new("conflicting_resends");
    let start = cx.head(&store).await?;
    let stream = cx.stream("committed");
    let other = cx.stream("other");
    let committed = probe_events(1, 3);
    cx.append(&store, &stream, NoStream, &committed).await?;
    let [a, b, c] = [0, 1, 2].map(|i| committed[i].clone());
    let x = probe_event(99);

    let changed = |f: &dyn Fn(&mut NewEvent)| {
        let mut e = c.clone();
        f(&mut e);
        vec![a.clone(), b.clone(), e]
    };
    let mut other_payload = a.clone();
    other_payload.payload = br#"{"n":1000}"#.to_vec().into();
    let attempts: Vec<(&str, &str, Vec<NewEvent>)> = vec![
        (
            "its first event with another payload",
            &stream,
            vec![other_payload],
        ),
        (
            "the batch with other metadata on its last event",
            &stream,
            changed(&|e| e.metadata = e.metadata.clone().with("changed", "yes")),
        ),
        (
            "the batch with another type on its last event",
            &stream,
            changed(&|e| e.event_type = "Changed".into()),
        ),
        (
            "the batch with another schema version on its last event",
            &stream,
            changed(&|e| e.schema_version = 2),
        ),
        ("the batch to another stream", &other, committed.clone()),
        (
            "its middle event to another stream",
            &other,
            vec![b.clone()],
        ),
        (
            "the batch after a new event",
            &stream,
            vec![x.clone(), a.clone(), b.clone(), c.clone()],
        ),
        (
            "the batch followed by a new event",
            &stream,
            vec![a.clone(), b.clone(), c.clone(), x.clone()],
        ),
        (
            "the batch in another order",
            &stream,
            vec![b.clone(), a.clone(), c.clone()],
        ),
    ];
    let ids = [a.event_id, b.event_id, c.event_id];
    for (what, stream_id, events) in attempts {
        let doing = format!("re-sending {what} of the committed batch of three");
        let sent: Vec<_> = events.iter().map(|e| e.event_id).collect();
        let e = cx.err(
            store.append(stream_id, Any, events).await,
            &doing,
            "a duplicate event error",
        )?;
        match &e {
            StoreError::DuplicateEvent {
                event_id,
                stream_id: said,
                ..
            } if sent.contains(event_id) && said == stream_id => {}
            other => {
                return Err(cx.fail(format!(
                    "{doing}: expected DuplicateEvent naming one of the re-sent ids {sent:?} \
                     and the stream `{stream_id}`, got {}",
                    show(other)
                )));
            }
        }
        let stored = cx.read(&store, &stream, 1).await?;
        cx.same_events(
            &format!("{doing}: the stream afterwards"),
            &stored,
            &stream,
            1,
            &refs(&committed),
            None,
        )?;
        let version = cx.ok(
            store.stream_version(&other).await,
            &format!("asking the version of `{other}`"),
        )?;
        ensure!(
            cx,
            version.is_none(),
            "{doing}: a refused batch must not create `{other}`, yet its version is {version:?}"
        );
        let log = cx.own_log(&store, start + 1).await?;
        ensure!(
            cx,
            log.iter().map(|e| e.event_id).eq(ids),
            "{doing}: the global log should hold only the committed batch, it holds:\n{}",
            list(&log)
        );
    }
    Ok(())
}

/// Re-sending committed events in their stored order is idempotent whatever the batch
/// boundaries were: with batches `[a, b, c]` and `[d, e]` committed one after the other,
/// `[a, b]`, `[b, c]`, `[b]`, `[c, d]` (across the two batches) and `[a, b, c, d, e]` (the
/// two as one) are each deduplicated with the original positions and write nothing, as
/// are `[a, b, c]` and `[d, e]` re-sent whole. (A client retrying after an ambiguous
/// failure may have regrouped its events; what matters is that they are already stored,
/// identical and in order. Mixed with new events or reordered, they are refused: see
/// [`conflicting_resends`].)
pub async fn partial_resends<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("partial_resends");
    let start = cx.head(&store).await?;
    let stream = cx.stream("batches");
    let first = probe_events(1, 3);
    let out1 = cx.append(&store, &stream, NoStream, &first).await?;
    let second = probe_events(4, 2);
    let out2 = cx.append(&store, &stream, Exact(3), &second).await?;
    let all: Vec<NewEvent> = first.iter().chain(&second).cloned().collect();
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| all[i].clone());

    let attempts: [(&str, Vec<NewEvent>); 5] = [
        (
            "the first two events of a batch of three",
            vec![a.clone(), b.clone()],
        ),
        (
            "the last two events of a batch of three",
            vec![b.clone(), c.clone()],
        ),
        ("the middle event of a batch of three", vec![b.clone()]),
        (
            "the last event of one batch and the first of the next",
            vec![c.clone(), d.clone()],
        ),
        (
            "two committed batches as one",
            vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()],
        ),
    ];
    let all_positions: Vec<u64> = out1
        .positions
        .iter()
        .chain(&out2.positions)
        .copied()
        .collect();
    for (what, events) in attempts {
        let doing = format!("re-sending {what}");
        // Which stored events these are, by id: their original positions come back.
        let expected: Vec<u64> = events
            .iter()
            .map(|e| {
                let k = all
                    .iter()
                    .position(|o| o.event_id == e.event_id)
                    .expect("known");
                all_positions[k]
            })
            .collect();
        let again = cx.ok(store.append(&stream, Any, events).await, &doing)?;
        ensure!(
            cx,
            again.deduplicated && again.positions == expected,
            "{doing}: expected a deduplicated outcome with the original positions \
             {expected:?}, got {again:?}"
        );
        let stored = cx.read(&store, &stream, 1).await?;
        cx.same_events(
            &format!("{doing}: the stream afterwards"),
            &stored,
            &stream,
            1,
            &refs(&all),
            None,
        )?;
    }
    for (batch, original) in [(&first, &out1), (&second, &out2)] {
        let doing = format!(
            "re-sending the whole batch at versions {}..={}",
            original.first_version(),
            original.stream_version
        );
        let again = cx.ok(store.append(&stream, Any, batch.clone()).await, &doing)?;
        ensure!(
            cx,
            again.deduplicated && again.positions == original.positions,
            "{doing}: expected a deduplicated outcome with positions {:?}, got {again:?}",
            original.positions
        );
    }
    let log = cx.own_log(&store, start + 1).await?;
    ensure!(
        cx,
        log.iter()
            .map(|e| e.event_id)
            .eq(all.iter().map(|e| e.event_id)),
        "the global log should hold the two batches once, it holds:\n{}",
        list(&log)
    );
    Ok(())
}

/// Reads `stream_id` from `from` with [`EventStore::read_stream_with`], breaking after
/// `take` events.
pub(super) async fn visit<S: EventStore + ?Sized>(
    store: &S,
    stream_id: &str,
    from: u64,
    take: usize,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut seen = Vec::new();
    let mut visitor = |e: &RecordedEvent| {
        seen.push(e.clone());
        if seen.len() >= take {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    store
        .read_stream_with(stream_id, from, &mut visitor)
        .await?;
    Ok(seen)
}

/// The envelope survives the round trip and a stream reads from any version.
///
/// Every field comes back as appended: event id, type (with non-ASCII characters), schema
/// version, metadata (correlation and causation ids, a non-ASCII actor, custom entries
/// with an empty value and quotes), the payload bytes: JSON, all 256 byte values, empty,
/// 64 KiB. The stream id has a space and non-ASCII characters. Versions run 1, 2, 3, …,
/// positions are those the append returned, `recorded_at` is a plausible time.
/// `read_stream` from 0 and 1 reads everything, from a middle version the tail, from past
/// the end (up to `u64::MAX`) nothing; `read_stream_with` visits the same events and stops
/// when the visitor breaks; a missing stream reads empty and has no version.
pub async fn stream_reads<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("stream_reads");
    let stream = cx.stream("ünï côdé");
    let missing = cx.stream("missing");

    let mut e1 = probe_event(1);
    e1.metadata = Metadata::default()
        .with_correlation_id(probe_event(0).event_id)
        .with_causation_id(probe_event(0).event_id)
        .with_actor("ünïcødé actor ✓")
        .with("tenant", "acme")
        .with("empty", "")
        .with("quotes", "\"'\\\n");
    let mut e2 = probe_event(2);
    e2.event_type = "Conformance.Binary/ü".into();
    e2.schema_version = 7;
    e2.payload = (0..=255u8).collect::<Vec<u8>>().into();
    let mut e3 = probe_event(3);
    e3.event_type = "Conformance.Empty".into();
    e3.payload = Vec::new().into();
    let mut e4 = probe_event(4);
    e4.payload = format!(r#"{{"blob":"{}"}}"#, "x".repeat(64 * 1024))
        .into_bytes()
        .into();
    let batch = vec![e1, e2, e3, e4];

    let out = cx.append(&store, &stream, NoStream, &batch).await?;
    ensure!(
        cx,
        out.stream_version == 4 && !out.deduplicated,
        "four events on a new stream should end at version 4: {out:?}"
    );
    let all = refs(&batch);
    for from in [0, 1] {
        let stored = cx.read(&store, &stream, from).await?;
        cx.same_events(
            &format!("reading from version {from}"),
            &stored,
            &stream,
            1,
            &all,
            Some(&out.positions),
        )?;
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        for e in &stored {
            ensure!(
                cx,
                e.recorded_at > now - day && e.recorded_at < now + day,
                "event v{} was recorded at {:?}, more than a day from now ({now:?})",
                e.version,
                e.recorded_at
            );
        }
    }
    for from in [2u64, 3, 4] {
        let stored = cx.read(&store, &stream, from).await?;
        let skip = from as usize - 1;
        cx.same_events(
            &format!("reading from version {from}"),
            &stored,
            &stream,
            from,
            &all[skip..],
            Some(&out.positions[skip..]),
        )?;
    }
    for from in [5, 6, 1000, u64::MAX] {
        let stored = cx.read(&store, &stream, from).await?;
        ensure!(
            cx,
            stored.is_empty(),
            "reading a stream at version 4 from version {from} should give nothing, got:\n{}",
            list(&stored)
        );
    }

    for (from, take) in [(1u64, usize::MAX), (1, 2), (1, 1), (3, usize::MAX), (2, 2)] {
        let doing = format!("visiting from version {from}, breaking after {take} event(s)");
        let seen = cx.ok(visit(&store, &stream, from, take).await, &doing)?;
        let skip = from as usize - 1;
        let end = all.len().min(skip.saturating_add(take));
        cx.same_events(&doing, &seen, &stream, from, &all[skip..end], None)?;
    }
    let seen = cx.ok(
        visit(&store, &stream, 5, usize::MAX).await,
        "visiting from past the end",
    )?;
    ensure!(
        cx,
        seen.is_empty(),
        "visiting from past the end visited:\n{}",
        list(&seen)
    );

    let stored = cx.read(&store, &missing, 1).await?;
    ensure!(
        cx,
        stored.is_empty(),
        "a missing stream should read empty, got:\n{}",
        list(&stored)
    );
    let seen = cx.ok(
        visit(&store, &missing, 1, usize::MAX).await,
        "visiting a missing stream",
    )?;
    ensure!(
        cx,
        seen.is_empty(),
        "visiting a missing stream visited:\n{}",
        list(&seen)
    );
    let version = cx.ok(
        store.stream_version(&missing).await,
        "asking the version of a missing stream",
    )?;
    ensure!(
        cx,
        version.is_none(),
        "a missing stream should have no version, the store says {version:?}"
    );
    let version = cx.ok(
        store.stream_version(&stream).await,
        "asking the version of a stream",
    )?;
    ensure!(
        cx,
        version == Some(4),
        "the stream should be at version 4, the store says {version:?}"
    );

    for (i, position) in out.positions.iter().enumerate() {
        let page = cx.ok(
            store.read_all(*position, 1).await,
            &format!("reading the global log at position {position}"),
        )?;
        ensure!(
            cx,
            page.len() == 1 && batch[i].same_content_as(&page[0]) && page[0].position == *position,
            "reading one event of the global log at position {position} should give event v{} \
             of the stream, got:\n{}",
            i + 1,
            list(&page)
        );
    }

    let more = probe_events(5, 2);
    let out2 = cx.append(&store, &stream, Exact(4), &more).await?;
    let stored = cx.read(&store, &stream, 1).await?;
    let mut all = refs(&batch);
    all.extend(refs(&more));
    let positions: Vec<u64> = out
        .positions
        .iter()
        .chain(&out2.positions)
        .copied()
        .collect();
    cx.same_events(
        "reading after a second append",
        &stored,
        &stream,
        1,
        &all,
        Some(&positions),
    )
}

/// The global log, one writer at a time: thirty batches of one to three events over three
/// streams appear in `read_all` exactly once each, in position order, with the positions
/// the appends returned. Paging with limits 1, 2, 3, 7 and 50 gives the same sequence;
/// reading from the position of any event starts with that event and continues in order;
/// reading past the head, or with limit 0, gives nothing; position 0 reads like position 1;
/// the head position is the last event's.
pub async fn global_log<S: EventStore>(store: S, _config: &Config<S>) -> Result<(), Failure> {
    let cx = Cx::new("global_log");
    let start = cx.head(&store).await?;
    let from = start + 1;
    let streams = [cx.stream("a"), cx.stream("b"), cx.stream("c")];
    // (event, stream, version, position)
    let mut acked: Vec<(NewEvent, String, u64, u64)> = Vec::new();
    let mut last_position = start;
    for i in 0..30usize {
        let stream = &streams[i % 3];
        let batch = probe_events(i as u64 * 10, 1 + i % 3);
        let out = cx.append(&store, stream, Any, &batch).await?;
        ensure!(
            cx,
            out.positions[0] > last_position,
            "positions must increase with commit order: batch {i} starts at position {} after \
             an earlier event at {last_position}",
            out.positions[0]
        );
        last_position = out.positions[out.positions.len() - 1];
        for (k, e) in batch.into_iter().enumerate() {
            acked.push((
                e,
                stream.clone(),
                out.first_version() + k as u64,
                out.positions[k],
            ));
        }
    }
    let check = |what: &str, got: &[RecordedEvent], want: &[(NewEvent, String, u64, u64)]| {
        let same = got.len() == want.len()
            && got.iter().zip(want).all(|(g, (e, s, v, p))| {
                e.same_content_as(g) && *g.stream_id == **s && g.version == *v && g.position == *p
            });
        if same {
            Ok(())
        } else {
            let want: Vec<String> = want
                .iter()
                .map(|(e, s, v, p)| format!("  `{s}` v{v} @{p} id {}\n", e.event_id))
                .collect();
            Err(cx.fail(format!(
                "{what}: expected\n{}read\n{}",
                want.concat(),
                list(got)
            )))
        }
    };

    let everything = cx.read_log(&store, from).await?;
    let own: Vec<RecordedEvent> = everything
        .iter()
        .filter(|e| cx.owns(&e.stream_id))
        .cloned()
        .collect();
    check("reading the whole log", &own, &acked)?;
    let head = cx.head(&store).await?;
    let top = everything.last().map_or(start, |e| e.position);
    ensure!(
        cx,
        head == top && head >= last_position,
        "the head position should be the last event's, {top}; the store says {head}"
    );

    for limit in [1usize, 2, 3, 7, 50] {
        let mut next = from;
        let mut seen = Vec::new();
        loop {
            let page = cx.ok(
                store.read_all(next, limit).await,
                &format!("reading the global log from {next}, limit {limit}"),
            )?;
            super::support::check_page(&cx, &page, next, limit)?;
            let Some(last) = page.last() else { break };
            next = last.position + 1;
            seen.extend(page.into_iter().filter(|e| cx.owns(&e.stream_id)));
        }
        check(&format!("paging with limit {limit}"), &seen, &acked)?;
    }

    for (k, (_, _, _, position)) in acked.iter().enumerate() {
        let page = cx.ok(
            store.read_all(*position, 4).await,
            &format!("reading the global log from position {position}, limit 4"),
        )?;
        super::support::check_page(&cx, &page, *position, 4)?;
        ensure!(
            cx,
            page.first().is_some_and(|e| e.position == *position),
            "reading from position {position}, where an event was committed, should start with \
             it; got:\n{}",
            list(&page)
        );
        let end = page.last().map_or(0, |e| e.position);
        let own: Vec<RecordedEvent> = page.into_iter().filter(|e| cx.owns(&e.stream_id)).collect();
        let want: Vec<_> = acked[k..]
            .iter()
            .filter(|(_, _, _, p)| *p <= end)
            .cloned()
            .collect();
        check(&format!("resuming from position {position}"), &own, &want)?;
    }

    for (at, limit) in [(head + 1, 10usize), (u64::MAX, 10), (from, 0)] {
        let page = cx.ok(
            store.read_all(at, limit).await,
            &format!("reading the global log from {at}, limit {limit}"),
        )?;
        ensure!(
            cx,
            page.is_empty(),
            "reading the global log from {at} with limit {limit} should give nothing, got:\n{}",
            list(&page)
        );
    }
    let zero = cx.ok(store.read_all(0, 5).await, "reading the global log from 0")?;
    let one = cx.ok(store.read_all(1, 5).await, "reading the global log from 1")?;
    ensure!(
        cx,
        zero == one,
        "reading from position 0 should read like position 1:\nfrom 0:\n{}from 1:\n{}",
        list(&zero),
        list(&one)
    );
    Ok(())
}
