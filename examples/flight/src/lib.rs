//! # The flight system: air traffic, event-sourced
//!
//! An example system of the `cqrs` framework, from the air-traffic domain. Run it with
//! `cargo run -p flight`: it tells a short account of an afternoon of traffic on a fresh
//! SQLite file (nothing to set up, removed at the end), or on PostgreSQL when
//! `DATABASE_URL` (or `--database-url`) is a `postgres://` URL.
//!
//! ## The parts
//!
//! | part | what it shows |
//! |---|---|
//! | [`Flight`] | an aggregate: a flight plan from filing to landing, decided by `#[handle]` methods and evolved by `#[apply]` methods |
//! | [`NavDatabase`] | the aggregate's **services**: airports and their standard arrival routes (STARs), consulted by the handlers |
//! | `arrival_route_serves_destination` | the rule air traffic control cares about, stated as a **Given/When/Shall invariant**: given a flight with a plan on file, when its destination changes, its STAR leads to the new destination. The runtime enforces it. |
//! | [`FlightEvent::RadarTrack`] | **external events**: radar reports ingested with [`Cqrs::ingest`] / [`Cqrs::ingest_json`] without a command. They may arrive out of order: each is stored, only the newest by measurement time counts |
//! | [`flight_runtime`] | **snapshots** every [`SNAPSHOT_EVERY`] events, because a flight under radar collects thousands of reports |
//! | [`FlightBoard`] | a **read model**, the flight board: callsign, origin, destination, status and last known position, one row per flight, updated inline |
//! | [`demo`] | the account `cargo run -p flight` prints, as a library function its tests run |
//!
//! ## Why the invariant, when the handler already checks?
//!
//! [`FlightCommand::ChangeDestination`] names an airport and a STAR; the handler looks
//! the STAR up under that airport in the navigation database and refuses one that is not
//! listed there ([`FlightError::StarOfAnotherAirport`]). But it trusts the database: if
//! a STAR is listed under the wrong airport by mistake, the handler lets it through. The
//! invariant compares the route the event records with the destination it sets, so such
//! a diversion is refused with [`CommandError::Invariant`](cqrs_core::CommandError::Invariant)
//! before anything is stored, and every scenario and property test checks the rule after
//! every event.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use flight::{Flight, FlightCommand, NavDatabase, Star};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = InMemoryEventStore::new();
//! let flights = flight::flight_runtime(store.clone(), NavDatabase::europe());
//! let plan = FlightCommand::FilePlan {
//!     callsign: "BAW117".into(),
//!     origin: "EGLL".into(),
//!     destination: "EHAM".into(),
//!     star: "ARTIP1A".into(),
//! };
//! flights.execute_routed(plan).await.unwrap();
//!
//! // A database that lists Amsterdam's SUGOL1A under Frankfurt by mistake.
//! let faulty = NavDatabase::europe().with_star("EDDF", Star::new("SUGOL1A", "EHAM"));
//! let divert = FlightCommand::ChangeDestination { airport: "EDDF".into(), star: "SUGOL1A".into() };
//! let refused = flight::flight_runtime(store.clone(), faulty)
//!     .execute("BAW117", divert)
//!     .await
//!     .unwrap_err();
//! assert!(matches!(
//!     refused,
//!     CommandError::Invariant { violation } if violation.name == "arrival_route_serves_destination"
//! ));
//! assert_eq!(store.stream_version("Flight-BAW117").await.unwrap(), Some(1));
//! # });
//! ```
//!
//! ## Radar reports out of order
//!
//! ```
//! use cqrs_core::prelude::*;
//! use flight::{FlightEvent, Latitude, Longitude, NavDatabase};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let flights = flight::flight_runtime(InMemoryEventStore::new(), NavDatabase::europe());
//! let track = |at, lat| FlightEvent::RadarTrack {
//!     at,
//!     lat: Latitude::new(lat).unwrap(),
//!     lon: Longitude::new(1.0).unwrap(),
//!     altitude_ft: 30_000,
//! };
//! flights.ingest("AFR1234", vec![track(30, 50.1)], Metadata::default()).await.unwrap();
//! flights.ingest("AFR1234", vec![track(10, 49.8)], Metadata::default()).await.unwrap(); // late
//!
//! let afr = flights.load("AFR1234").await.unwrap().state;
//! assert_eq!(afr.position.unwrap().lat.degrees(), 50.1);
//! assert_eq!((afr.radar_reports, afr.late_reports), (2, 1));
//!
//! // What does not decode as a radar report never reaches the store: a time that is not
//! // a number, a latitude beyond the pole.
//! for bad in [
//!     serde_json::json!({ "at": "soon", "lat": 1.0, "lon": 1.0, "altitude_ft": 0 }),
//!     serde_json::json!({ "at": 40, "lat": 123.0, "lon": 1.0, "altitude_ft": 0 }),
//! ] {
//!     let err = flights.ingest_json("AFR1234", "RadarTrack", 1, bad, Metadata::default()).await;
//!     assert!(matches!(err, Err(CommandError::InvalidExternal { .. })));
//! }
//! assert_eq!(flights.load("AFR1234").await.unwrap().version, 2);
//! # });
//! ```

pub mod board;
pub mod demo;
pub mod flight;
pub mod geo;
pub mod navdb;

pub use board::FlightBoard;
pub use flight::{Flight, FlightCommand, FlightError, FlightEvent, FlightStatus, Position, clock};
pub use geo::{AngleError, Latitude, Longitude};
pub use navdb::{Airport, NavDatabase, Star};

use cqrs_core::Cqrs;
use cqrs_core::projection::ViewProjection;
use cqrs_core::runtime::IntoEventStore;
use cqrs_core::snapshot::SnapshotPolicy;

/// How often the runtime of [`flight_runtime`] snapshots a flight: every this many
/// events.
pub const SNAPSHOT_EVERY: u64 = 1_000;

// ANCHOR: runtime
/// The flight system's runtime over `store`: handlers get `nav`; a snapshot is taken
/// every [`SNAPSHOT_EVERY`] events (loads start from the newest one); the
/// [`FlightBoard`] is updated inline, in each append's transaction (so `store` must keep
/// views: the in-memory, SQLite and PostgreSQL stores do); the STAR invariant is enforced.
///
/// ```
/// use cqrs_core::prelude::*;
/// use flight::{FlightEvent, Latitude, Longitude, NavDatabase};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let flights = flight::flight_runtime(store.clone(), NavDatabase::europe());
/// let (lat, lon) = (Latitude::new(50.0).unwrap(), Longitude::new(1.0).unwrap());
/// let tracks = (0..2_500)
///     .map(|at| FlightEvent::RadarTrack { at, lat, lon, altitude_ft: 30_000 })
///     .collect();
/// flights.ingest("BAW117", tracks, Metadata::default()).await.unwrap();
/// let snapshot = store.load_snapshot("Flight-BAW117").await.unwrap().unwrap();
/// assert_eq!(snapshot.stream_version, 2_500);
/// # });
/// ```
pub fn flight_runtime(store: impl IntoEventStore, nav: NavDatabase) -> Cqrs<Flight> {
    Cqrs::<Flight>::builder_with_services(store, nav)
        .snapshots(SnapshotPolicy::every(SNAPSHOT_EVERY))
        .inline_projection(ViewProjection::<FlightBoard>::new())
        .build()
}
// ANCHOR_END: runtime
