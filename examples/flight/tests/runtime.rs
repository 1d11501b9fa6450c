//! The flight system through its runtime (`flight_runtime`) on the in-memory store: the
//! invariant enforced before anything is stored, radar reports ingested out of order and
//! validated, the flight board, and loads that start from a snapshot.

use cqrs_core::prelude::*;
use cqrs_core::projection::ViewStoreExt;
use cqrs_core::store::StoreError;
use flight::{
    Flight, FlightBoard, FlightCommand, FlightError, FlightEvent, FlightStatus, Latitude,
    Longitude, NavDatabase, SNAPSHOT_EVERY, Star, flight_runtime,
};

fn plan(callsign: &str, origin: &str, destination: &str, star: &str) -> FlightCommand {
    FlightCommand::FilePlan {
        callsign: callsign.into(),
        origin: origin.into(),
        destination: destination.into(),
        star: star.into(),
    }
}

fn change(airport: &str, star: &str) -> FlightCommand {
    FlightCommand::ChangeDestination {
        airport: airport.into(),
        star: star.into(),
    }
}

fn track(at: u64, lat: f64) -> FlightEvent {
    FlightEvent::RadarTrack {
        at,
        lat: Latitude::new(lat).unwrap(),
        lon: Longitude::new(1.0).unwrap(),
        altitude_ft: 30_000,
    }
}

async fn airborne(flights: &Cqrs<Flight>, callsign: &str) {
    flights
        .execute_routed(plan(callsign, "EGLL", "EHAM", "ARTIP1A"))
        .await
        .unwrap();
    flights
        .execute(callsign, FlightCommand::Depart)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_runtime_refuses_a_diversion_that_breaks_the_star_rule_and_stores_nothing() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "BAW117").await;

    let faulty = NavDatabase::europe().with_star("EDDF", Star::new("SUGOL1A", "EHAM"));
    let faulty_flights = flight_runtime(store.clone(), faulty);
    let err = faulty_flights
        .execute("BAW117", change("EDDF", "SUGOL1A"))
        .await
        .unwrap_err();
    match &err {
        CommandError::Invariant { violation } => {
            assert_eq!(violation.name, "arrival_route_serves_destination");
            assert_eq!(violation.event_type, Some("DestinationChanged"));
        }
        other => panic!("expected an invariant refusal, got {other:?}"),
    }
    assert_eq!(
        store.stream_version("Flight-BAW117").await.unwrap(),
        Some(2)
    );
    let row = store.get::<FlightBoard>("BAW117").await.unwrap().unwrap();
    assert_eq!(row.destination, "EHAM");

    // The same runtime still takes a valid diversion afterwards.
    faulty_flights
        .execute("BAW117", change("LFPG", "LORNI4W"))
        .await
        .unwrap();
    let flight = flights.load("BAW117").await.unwrap().state;
    assert_eq!(flight.destination, "LFPG");
}

#[tokio::test]
async fn a_handler_rejection_is_typed_and_stores_nothing() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "BAW117").await;
    let err = flights
        .execute("BAW117", change("LFPG", "SUGOL1A"))
        .await
        .unwrap_err();
    assert_eq!(
        err.rejection(),
        Some(&FlightError::StarOfAnotherAirport {
            star: "SUGOL1A".into(),
            airport: "LFPG".into(),
            serves: "EHAM".into(),
        })
    );
    assert_eq!(
        store.stream_version("Flight-BAW117").await.unwrap(),
        Some(2)
    );
}

#[tokio::test]
async fn late_radar_reports_are_stored_but_the_newest_position_stands() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "AFR1234").await;
    for report in [track(30, 50.1), track(10, 49.8)] {
        flights
            .ingest("AFR1234", vec![report], Metadata::default())
            .await
            .unwrap();
    }
    let json = serde_json::json!({"at": 20, "lat": 49.9, "lon": 1.0, "altitude_ft": 31_000});
    let late = flights
        .ingest_json("AFR1234", "RadarTrack", 1, json, Metadata::default())
        .await
        .unwrap();
    assert_eq!(late.stream_version, 5);

    let afr = flights.load("AFR1234").await.unwrap().state;
    assert_eq!(
        afr.position.map(|p| (p.at, p.lat.degrees())),
        Some((30, 50.1))
    );
    assert_eq!((afr.radar_reports, afr.late_reports), (3, 2));
    let row = store.get::<FlightBoard>("AFR1234").await.unwrap().unwrap();
    assert_eq!(row.last_position, afr.position);
}

#[tokio::test]
async fn a_radar_report_that_does_not_decode_is_refused_and_never_stored() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "AFR1234").await;
    for (event_type, payload) in [
        (
            "RadarTrack",
            serde_json::json!({"at": "12:01:10Z", "lat": 50.5, "lon": 0.7, "altitude_ft": 35_000}),
        ),
        (
            "RadarTrack",
            serde_json::json!({"at": 1, "lat": 50.5, "lon": 0.7}),
        ),
        (
            "RadarTrack",
            serde_json::json!({"at": 1, "lat": 50.5, "lon": 180.5, "altitude_ft": 0}),
        ),
        ("Teleported", serde_json::json!({})),
    ] {
        let err = flights
            .ingest_json("AFR1234", event_type, 1, payload, Metadata::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CommandError::InvalidExternal { event_type: t, .. } if t == event_type),
            "{err:?}"
        );
    }
    assert_eq!(
        store.stream_version("Flight-AFR1234").await.unwrap(),
        Some(2)
    );
}

#[tokio::test]
async fn the_flight_board_follows_every_flight() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "BAW117").await;
    flights
        .execute_routed(plan("KLM1001", "EHAM", "ENGM", "ADOPI3M"))
        .await
        .unwrap();
    flights
        .execute("BAW117", change("LFPG", "LORNI4W"))
        .await
        .unwrap();
    flights
        .ingest(
            "BAW117",
            vec![track(9, 49.5), track(3, 51.0)],
            Metadata::default(),
        )
        .await
        .unwrap();
    flights
        .execute("BAW117", FlightCommand::Land)
        .await
        .unwrap();

    let board = store.all::<FlightBoard>().await.unwrap();
    let keys: Vec<&str> = board.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["BAW117", "KLM1001"]);
    let baw = &board[0].1;
    assert_eq!(
        (
            baw.origin.as_str(),
            baw.destination.as_str(),
            baw.star.as_str()
        ),
        ("EGLL", "LFPG", "LORNI4W")
    );
    assert_eq!(baw.diverted_from.as_deref(), Some("EHAM"));
    assert_eq!(baw.status, FlightStatus::Landed);
    assert_eq!(baw.last_position.map(|p| p.at), Some(9));
    let klm = &board[1].1;
    assert_eq!((klm.status, klm.last_position), (FlightStatus::Filed, None));
}

#[tokio::test]
async fn a_long_stream_loads_from_its_snapshot() {
    let store = InMemoryEventStore::new();
    let flights = flight_runtime(store.clone(), NavDatabase::europe());
    airborne(&flights, "BAW117").await;
    // 2,500 reports in batches of 100, newest first within each batch.
    for batch in (0..25u64).map(|b| (0..100).rev().map(|i| track(b * 100 + i, 50.0)).collect()) {
        flights
            .ingest("BAW117", batch, Metadata::default())
            .await
            .unwrap();
    }
    flights
        .execute("BAW117", FlightCommand::Land)
        .await
        .unwrap();
    let snapshot = store.load_snapshot("Flight-BAW117").await.unwrap().unwrap();
    // Versions 102, 202, ..., 2502: the last batch crossing a multiple of 1,000 ends at 2,002.
    assert_eq!(snapshot.stream_version, 2 * SNAPSHOT_EVERY + 2);

    let plain = Cqrs::<Flight>::builder_with_services(store.clone(), NavDatabase::europe()).build();
    let full = plain.load("BAW117").await.unwrap();
    assert_eq!(full.version, 2_503);
    assert_eq!(full.state.late_reports, 25 * 99);

    // Remove the events the snapshot covers: a load that did not start from the snapshot
    // could not rebuild the flight any more.
    store
        .truncate_stream("Flight-BAW117", snapshot.stream_version + 1)
        .await
        .unwrap();
    let cold = flight_runtime(store.clone(), NavDatabase::europe())
        .load("BAW117")
        .await
        .unwrap();
    assert_eq!((&cold.state, cold.version), (&full.state, full.version));
    assert_eq!(cold.from_snapshot, Some(snapshot.stream_version));
    assert_eq!(full.from_snapshot, None);

    let without_snapshots = plain.load("BAW117").await.unwrap_err();
    assert!(
        matches!(
            without_snapshots,
            CommandError::Store(StoreError::StreamTruncated { .. })
        ),
        "{without_snapshots:?}"
    );
}
