//! The demo behind `cargo run -p flight`: an afternoon of air traffic, told as a short
//! account.
//!
//! Three flight plans are filed; BAW117 is diverted to Paris, first along an arrival
//! route of the wrong airport (refused), then along one of Paris's own (accepted), and a
//! navigation database with a wrong entry is stopped by the aggregate's invariant; radar
//! reports for AFR1234 arrive out of order and only the newest counts, while a malformed
//! one is refused before it reaches the store; BAW117 collects 4,000 radar reports, is
//! snapshotted along the way and reloaded from its snapshot; the flight board ends it.
//!
//! [`run`] tells it on any store that keeps views (in-memory, SQLite, PostgreSQL) and
//! returns what happened as a [`DemoOutcome`], so that tests can check it;
//! [`on_temp_sqlite`] and [`on_postgres`] add the set-up and the clean-up the binary does.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use flight::demo::{self, Backend};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let mut account = Vec::new();
//! let outcome = demo::run(InMemoryEventStore::new(), Backend::InMemory, &mut account)
//!     .await
//!     .unwrap();
//! assert_eq!(outcome.board.len(), 3);
//! assert!(String::from_utf8(account).unwrap().contains("Flight board"));
//! # });
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use cqrs_core::StoreError;
use cqrs_core::invariant::InvariantViolation;
use cqrs_core::prelude::*;
use cqrs_core::projection::{ViewStore, ViewStoreExt};
use cqrs_core::store::postgres::PostgresOptions;
use cqrs_core::store::sqlite::SqliteEventStore;

use crate::board::FlightBoard;
use crate::flight::{Flight, FlightCommand, FlightError, FlightEvent, Position, clock};
use crate::geo::{AngleError, Latitude, Longitude};
use crate::navdb::{NavDatabase, Star};
use crate::{SNAPSHOT_EVERY, flight_runtime};

/// 2025-06-01 12:00:00 UTC, in seconds since the Unix epoch: when the demo's radar
/// reports start.
pub const START: u64 = 1_748_779_200;

/// How many radar reports BAW117 receives in the long-stream part.
pub const LONG_STREAM_REPORTS: usize = 4_000;

/// How many radar reports the feed delivers in one batch (one append).
pub const FEED_BATCH: usize = 200;

/// The flight plans filed: callsign, origin, destination, arrival route.
pub const PLANS: [(&str, &str, &str, &str); 3] = [
    ("BAW117", "EGLL", "EHAM", "ARTIP1A"),
    ("AFR1234", "LFPG", "EGLL", "OCK1A"),
    ("KLM1001", "EHAM", "ENGM", "ADOPI3M"),
];

/// Where the demo's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The in-memory store (tests).
    InMemory,
    /// A SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL schema.
    Postgres {
        /// The schema the demo created (and drops at the end).
        schema: String,
    },
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InMemory => f.write_str("the in-memory event store"),
            Self::Sqlite { path } => write!(f, "the SQLite event store in {}", path.display()),
            Self::Postgres { schema } => write!(f, "PostgreSQL, in schema `{schema}`"),
        }
    }
}

/// What the demo saw, for tests to check.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOutcome {
    /// Where it ran.
    pub backend: Backend,
    /// Why the diversion along another airport's STAR was refused.
    pub refused_diversion: FlightError,
    /// The invariant that stopped the diversion a faulty navigation database allowed.
    pub invariant_refusal: InvariantViolation,
    /// AFR1234's position after its out-of-order reports.
    pub afr_position: Position,
    /// How many of AFR1234's reports arrived after a newer one.
    pub afr_late_reports: u64,
    /// Why the malformed radar report was refused.
    pub invalid_report: String,
    /// BAW117's stream version at the end.
    pub baw_version: u64,
    /// How many of BAW117's reports arrived after a newer one.
    pub baw_late_reports: u64,
    /// The stream version BAW117's newest snapshot reflects.
    pub snapshot_version: u64,
    /// How many events a cold load of BAW117 replayed after that snapshot.
    pub replayed_after_snapshot: u64,
    /// Whether the state loaded from the snapshot equals the one replayed from all events.
    pub snapshot_matches_full_replay: bool,
    /// The flight board at the end, by callsign.
    pub board: Vec<FlightBoard>,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The store could not be opened or connected to.
    #[error("cannot open the event store: {0}")]
    Connect(#[source] StoreError),
    /// A command or an ingest failed where the story expects it to succeed.
    #[error(transparent)]
    Command(#[from] CommandError<FlightError>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the account failed.
    #[error("cannot write the account: {0}")]
    Io(#[from] std::io::Error),
    /// Something did not go as the domain says it must.
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// The demo ran, but what it set up could not be removed.
    #[error("cannot remove {what}: {reason}")]
    Cleanup {
        /// The directory or schema.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Tells the demo on `store`, which must hold no flights yet, writing the account to
/// `out`; `backend` says where that is, for the account.
///
/// # Errors
///
/// A [`DemoError`] if the store fails, or if the domain does not behave as the story
/// says (a refused command accepted, or the reverse).
pub async fn run<S>(
    store: S,
    backend: Backend,
    out: &mut (dyn Write + Send),
) -> Result<DemoOutcome, DemoError>
where
    S: EventStore + ViewStore + Clone,
{
    let nav = NavDatabase::europe();
    let flights = flight_runtime(store.clone(), nav.clone());
    writeln!(out, "Air traffic on {backend}.")?;

    writeln!(out, "\nFlight plans")?;
    for (callsign, origin, destination, star) in PLANS {
        let plan = FlightCommand::FilePlan {
            callsign: callsign.into(),
            origin: origin.into(),
            destination: destination.into(),
            star: star.into(),
        };
        flights.execute_routed(plan).await?;
        writeln!(
            out,
            "  {callsign:<8} {origin} -> {destination}, arrival route {star}: filed"
        )?;
    }
    for callsign in ["BAW117", "AFR1234"] {
        flights.execute(callsign, FlightCommand::Depart).await?;
    }
    writeln!(
        out,
        "  BAW117 and AFR1234 departed; KLM1001 waits at the gate"
    )?;

    let (refused_diversion, invariant_refusal) = diversion(&flights, &store, &nav, out).await?;
    let (afr_position, afr_late_reports, invalid_report) = radar(&flights, &store, out).await?;
    let long = long_stream(&flights, &store, &nav, out).await?;

    writeln!(out, "\nFlight board")?;
    writeln!(
        out,
        "  {:<8} {:<5} {:<5} {:<8} {:<9} LAST POSITION",
        "FLIGHT", "FROM", "TO", "STAR", "STATUS"
    )?;
    let board: Vec<FlightBoard> = store
        .all::<FlightBoard>()
        .await?
        .into_iter()
        .map(|(_, row)| row)
        .collect();
    for row in &board {
        let position = row
            .last_position
            .map_or_else(|| "-".to_owned(), |p| p.to_string());
        let diverted = row
            .diverted_from
            .as_ref()
            .map_or_else(String::new, |from| format!(" (diverted from {from})"));
        writeln!(
            out,
            "  {:<8} {:<5} {:<5} {:<8} {:<9} {position}{diverted}",
            row.callsign,
            row.origin,
            row.destination,
            row.star,
            row.status.to_string()
        )?;
    }

    Ok(DemoOutcome {
        backend,
        refused_diversion,
        invariant_refusal,
        afr_position,
        afr_late_reports,
        invalid_report,
        baw_version: long.version,
        baw_late_reports: long.late_reports,
        snapshot_version: long.snapshot_version,
        replayed_after_snapshot: long.replayed,
        snapshot_matches_full_replay: long.matches_full_replay,
        board,
    })
}

/// BAW117 diverts to Paris: along Amsterdam's SUGOL1A (refused by the handler), along
/// LORNI4W (accepted), and to Frankfurt along SUGOL1A with a database that lists it there
/// by mistake (refused by the invariant).
async fn diversion<S: EventStore + Clone>(
    flights: &Cqrs<Flight>,
    store: &S,
    nav: &NavDatabase,
    out: &mut (dyn Write + Send),
) -> Result<(FlightError, InvariantViolation), DemoError> {
    writeln!(out, "\nBAW117 diverts to Paris Charles de Gaulle (LFPG)")?;
    let change = |airport: &str, star: &str| FlightCommand::ChangeDestination {
        airport: airport.into(),
        star: star.into(),
    };

    let refused = match flights.execute("BAW117", change("LFPG", "SUGOL1A")).await {
        Err(CommandError::Rejected(e)) => e,
        Err(other) => return Err(other.into()),
        Ok(_) => return Err(unexpected("a STAR of Amsterdam took BAW117 to Paris")),
    };
    writeln!(out, "  via SUGOL1A: refused: {refused}")?;

    let done = flights.execute("BAW117", change("LFPG", "LORNI4W")).await?;
    writeln!(
        out,
        "  via LORNI4W: accepted (stream version {})",
        done.stream_version
    )?;

    // The same aggregate with a faulty database: its handler trusts the listing, the
    // invariant does not.
    let faulty = nav.clone().with_star("EDDF", Star::new("SUGOL1A", "EHAM"));
    let faulty_flights = flight_runtime(store.clone(), faulty);
    let violation = match faulty_flights
        .execute("BAW117", change("EDDF", "SUGOL1A"))
        .await
    {
        Err(CommandError::Invariant { violation }) => violation,
        Err(other) => return Err(other.into()),
        Ok(_) => return Err(unexpected("a faulty database diverted BAW117 onto SUGOL1A")),
    };
    let version = store.stream_version(&Flight::stream_id("BAW117")).await?;
    writeln!(
        out,
        "  to EDDF via SUGOL1A, which a faulty navigation database lists there: refused by\n    \
         invariant `{}`; nothing written, BAW117 stays at version {}",
        violation.name,
        version.unwrap_or(0)
    )?;
    Ok((refused, violation))
}

/// AFR1234's radar reports arrive out of order; a malformed one is refused.
async fn radar<S: EventStore>(
    flights: &Cqrs<Flight>,
    store: &S,
    out: &mut (dyn Write + Send),
) -> Result<(Position, u64, String), DemoError> {
    writeln!(out, "\nRadar reports for AFR1234 arrive out of order")?;
    let reports = [
        (30, 50.10, 1.20, 34_000),
        (10, 49.80, 1.60, 32_000),
        (50, 50.30, 0.95, 35_000),
    ];
    for (i, (seconds, lat, lon, altitude_ft)) in reports.into_iter().enumerate() {
        let at = START + seconds;
        let report = position(at, lat, lon, altitude_ft)?;
        let how = if i == reports.len() - 1 {
            // The feed's own format: JSON, validated against the event type.
            let json = serde_json::json!({
                "at": at, "lat": lat, "lon": lon, "altitude_ft": altitude_ft
            });
            flights
                .ingest_json("AFR1234", "RadarTrack", 1, json, Metadata::default())
                .await?;
            " (as JSON)"
        } else {
            let track = FlightEvent::RadarTrack {
                at,
                lat: report.lat,
                lon: report.lon,
                altitude_ft,
            };
            flights
                .ingest("AFR1234", vec![track], Metadata::default())
                .await?;
            ""
        };
        let now = flights.load("AFR1234").await?.state;
        let verdict = if now.position.is_some_and(|p| p.at == at) {
            "the newest so far: kept"
        } else {
            "older than the one kept: stored, ignored"
        };
        writeln!(out, "  {report}{how} -> {verdict}")?;
    }

    let stream = Flight::stream_id("AFR1234");
    let before = store.stream_version(&stream).await?;
    let malformed = serde_json::json!({
        "at": "12:01:10Z", "lat": 50.5, "lon": 0.7, "altitude_ft": 35_000
    });
    let invalid = match flights
        .ingest_json("AFR1234", "RadarTrack", 1, malformed, Metadata::default())
        .await
    {
        Err(e @ CommandError::InvalidExternal { .. }) => e.to_string(),
        Err(other) => return Err(other.into()),
        Ok(_) => return Err(unexpected("a malformed radar report was stored")),
    };
    let after = store.stream_version(&stream).await?;
    if before != after {
        return Err(unexpected("a refused radar report changed the stream"));
    }
    writeln!(
        out,
        "  a report with the time \"12:01:10Z\" is refused, nothing written:\n    {invalid}"
    )?;

    let afr = flights.load("AFR1234").await?.state;
    let position = afr
        .position
        .ok_or_else(|| unexpected("AFR1234 has no position"))?;
    writeln!(
        out,
        "  AFR1234 is at {position} ({} reports stored, {} ignored as late)",
        afr.radar_reports, afr.late_reports
    )?;
    Ok((position, afr.late_reports, invalid))
}

/// What the long-stream part saw.
struct LongStream {
    version: u64,
    late_reports: u64,
    snapshot_version: u64,
    replayed: u64,
    matches_full_replay: bool,
}

/// BAW117 flies to Paris under radar: thousands of reports, snapshots, a cold load.
async fn long_stream<S: EventStore + Clone>(
    flights: &Cqrs<Flight>,
    store: &S,
    nav: &NavDatabase,
    out: &mut (dyn Write + Send),
) -> Result<LongStream, DemoError> {
    let reports = baw117_reports(nav)?;
    let (first, last) = (START + 60, START + 60 + reports.len() as u64 - 1);
    writeln!(
        out,
        "\nA long stream: BAW117 under radar once a second, {} to {}",
        clock(first),
        clock(last)
    )?;
    let mut version = 0;
    let mut batches = 0;
    for batch in out_of_order(reports).chunks(FEED_BATCH) {
        version = flights
            .ingest("BAW117", batch.to_vec(), Metadata::default())
            .await?
            .stream_version;
        batches += 1;
    }
    let tracked = flights.load("BAW117").await?.state;
    writeln!(
        out,
        "  {} reports in {batches} batches, {} of them late: the stream is at version {}",
        thousands(LONG_STREAM_REPORTS as u64),
        thousands(tracked.late_reports),
        thousands(version)
    )?;

    let landed = flights.execute("BAW117", FlightCommand::Land).await?;
    writeln!(
        out,
        "  BAW117 landed at {} (version {})",
        tracked.destination,
        thousands(landed.stream_version)
    )?;

    // A cold runtime, as after a restart: nothing cached, so the load starts from the
    // newest snapshot and replays the events after it.
    let cold = flight_runtime(store.clone(), nav.clone())
        .load("BAW117")
        .await?;
    let Some(snapshot_version) = cold.from_snapshot else {
        return Err(unexpected("BAW117 was loaded without a snapshot"));
    };
    let replayed = cold.version - snapshot_version;
    let full = Cqrs::<Flight>::builder_with_services(store.clone(), nav.clone())
        .build()
        .load("BAW117")
        .await?;
    let matches_full_replay = (&cold.state, cold.version) == (&full.state, full.version);
    writeln!(
        out,
        "  snapshots every {} events; the newest reflects version {}",
        thousands(SNAPSHOT_EVERY),
        thousands(snapshot_version)
    )?;
    writeln!(
        out,
        "  a cold runtime loads BAW117 from it, replaying only the {} after it:\n    {}",
        plural(replayed, "event"),
        if matches_full_replay {
            format!(
                "the same state as replaying all {}",
                thousands(full.version)
            )
        } else {
            "NOT the state a full replay gives".to_owned()
        }
    )?;
    Ok(LongStream {
        version: cold.version,
        late_reports: cold.state.late_reports,
        snapshot_version,
        replayed,
        matches_full_replay,
    })
}

/// BAW117's reports in time order: one a second from London Heathrow to Paris Charles de
/// Gaulle, climbing to FL350 and descending.
fn baw117_reports(nav: &NavDatabase) -> Result<Vec<FlightEvent>, DemoError> {
    let (Some(from), Some(to)) = (nav.airport("EGLL"), nav.airport("LFPG")) else {
        return Err(unexpected(
            "EGLL or LFPG missing from the navigation database",
        ));
    };
    let n = LONG_STREAM_REPORTS;
    (0..n)
        .map(|i| {
            let f = i as f64 / (n - 1) as f64;
            let edge = i.min(n - 1 - i) as u32;
            let p = position(
                START + 60 + i as u64,
                from.lat + (to.lat - from.lat) * f,
                from.lon + (to.lon - from.lon) * f,
                (edge * 40).min(35_000),
            )?;
            Ok(FlightEvent::RadarTrack {
                at: p.at,
                lat: p.lat,
                lon: p.lon,
                altitude_ft: p.altitude_ft,
            })
        })
        .collect()
}

/// A position from degrees.
fn position(at: u64, lat: f64, lon: f64, altitude_ft: u32) -> Result<Position, DemoError> {
    let angle = |e: AngleError| DemoError::Unexpected(e.to_string());
    Ok(Position {
        at,
        lat: Latitude::new(lat).map_err(angle)?,
        lon: Longitude::new(lon).map_err(angle)?,
        altitude_ft,
    })
}

/// The order a radar feed delivers `reports` in: every tenth pair swapped, so the
/// second of each such pair is older than one already delivered.
fn out_of_order(mut reports: Vec<FlightEvent>) -> Vec<FlightEvent> {
    for i in (0..reports.len().saturating_sub(1)).step_by(10) {
        reports.swap(i, i + 1);
    }
    reports
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// `1 event`, `2 events`.
fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{} {what}s", thousands(n))
    }
}

fn unexpected(what: &str) -> DemoError {
    DemoError::Unexpected(what.to_owned())
}

/// A name no earlier run used: `prefix`, the process id and the time in nanoseconds.
fn fresh_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Runs the demo on a fresh SQLite file in a new temporary directory, and removes the
/// directory at the end, whatever happened: nothing to set up, nothing left behind.
///
/// # Errors
///
/// See [`run`]; also [`DemoError::Connect`] if the file cannot be created and
/// [`DemoError::Cleanup`] if the directory cannot be removed.
pub async fn on_temp_sqlite(out: &mut (dyn Write + Send)) -> Result<DemoOutcome, DemoError> {
    let dir = std::env::temp_dir().join(fresh_name("flight_demo"));
    std::fs::create_dir_all(&dir).map_err(|e| DemoError::Cleanup {
        what: format!("(creating) {}", dir.display()),
        reason: e.to_string(),
    })?;
    let result = on_sqlite_file(&dir.join("flight.db"), out).await;
    let removed = match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DemoError::Cleanup {
            what: dir.display().to_string(),
            reason: e.to_string(),
        }),
        _ => Ok(()),
    };
    let outcome = result?;
    removed.map(|()| outcome)
}

async fn on_sqlite_file(
    path: &Path,
    out: &mut (dyn Write + Send),
) -> Result<DemoOutcome, DemoError> {
    // Opening creates the schema: blocking I/O, kept off the async workers.
    let owned = path.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteEventStore::open(owned))
        .await
        .map_err(|e| DemoError::Unexpected(format!("opening the SQLite file panicked: {e}")))?
        .map_err(DemoError::Connect)?;
    let backend = Backend::Sqlite {
        path: path.to_path_buf(),
    };
    run(store, backend, out).await
}

/// Runs the demo on the PostgreSQL server at `url`, in a schema of its own
/// (`flight_demo_<pid>_<nanos>`), which it drops at the end, whatever happened: a second
/// run starts clean, and other schemas are never touched.
///
/// # Errors
///
/// See [`run`]; also [`DemoError::Connect`] if the server cannot be reached or refuses
/// the connection, and [`DemoError::Cleanup`] if the schema cannot be dropped.
pub async fn on_postgres(
    url: &str,
    out: &mut (dyn Write + Send),
) -> Result<DemoOutcome, DemoError> {
    let schema = fresh_name("flight_demo");
    let store = PostgresOptions::new(url)
        .schema(&schema)
        .pool_size(4)
        .connect()
        .await
        .map_err(DemoError::Connect)?;
    let result = run(
        store.clone(),
        Backend::Postgres {
            schema: schema.clone(),
        },
        out,
    )
    .await;
    let cleanup = |reason: String| DemoError::Cleanup {
        what: format!("schema `{schema}`"),
        reason,
    };
    let dropped = store
        .drop_schema()
        .await
        .map_err(|e| cleanup(e.to_string()));
    let outcome = result?;
    dropped.map(|()| outcome)
}
