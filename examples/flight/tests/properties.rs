//! Property tests of the flight: random command sequences keep every rule (and a faulty
//! navigation database is caught by the invariant), and radar reports in any order, in
//! any batches, with snapshots anywhere, leave the newest position.

use std::collections::BTreeMap;

use cqrs_core::prelude::*;
use cqrs_core::snapshot::SnapshotPolicy;
use cqrs_testing::prelude::*;
use cqrs_testing::properties::{Properties, Property};
use flight::{
    Flight, FlightCommand, FlightEvent, Latitude, Longitude, NavDatabase, Position, Star,
};
use proptest::prelude::*;

const AIRPORTS: [&str; 6] = ["EGLL", "EHAM", "LFPG", "EDDF", "ENGM", "KJFK"];

/// Every STAR of the built-in database, plus one it does not know.
fn star_names() -> Vec<String> {
    let mut names: Vec<String> = NavDatabase::europe()
        .stars()
        .map(|s| s.name.clone())
        .collect();
    names.push("NOWHERE9Z".into());
    names
}

/// Commands a dispatcher might send: most routes are wrong for their airport, so
/// refusals are as common as acceptances.
fn commands() -> impl Strategy<Value = FlightCommand> {
    let airport = proptest::sample::select(AIRPORTS.to_vec()).prop_map(String::from);
    let star = proptest::sample::select(star_names());
    prop_oneof![
        1 => (airport.clone(), airport.clone(), star.clone()).prop_map(|(origin, destination, star)| {
            FlightCommand::FilePlan { callsign: "BAW117".into(), origin, destination, star }
        }),
        2 => Just(FlightCommand::Depart),
        4 => (airport, star).prop_map(|(airport, star)| FlightCommand::ChangeDestination { airport, star }),
        1 => Just(FlightCommand::Land),
    ]
}

fn filed() -> FlightEvent {
    FlightEvent::PlanFiled {
        callsign: "BAW117".into(),
        origin: "EGLL".into(),
        destination: "EHAM".into(),
        star: Star::new("ARTIP1A", "EHAM"),
    }
}

#[test]
fn the_flight_keeps_its_rules_under_random_commands() {
    let stats = Properties::<Flight>::new(commands())
        .given_history([filed()])
        .given_history([filed(), FlightEvent::Departed])
        .cases(256)
        .run();
    assert_eq!(stats.cases, 256);
    assert!(stats.accepted > 0 && stats.rejected > 0, "{stats:?}");
}

#[test]
fn random_commands_find_what_a_faulty_database_lets_through() {
    let faulty = || NavDatabase::europe().with_star("EDDF", Star::new("SUGOL1A", "EHAM"));
    let failure = Properties::<Flight>::with_services(commands(), faulty)
        .given_history([filed(), FlightEvent::Departed])
        .cases(256)
        .try_run()
        .unwrap_err();
    assert!(
        matches!(
            failure.property(),
            Property::Invariant(v) if v.name == "arrival_route_serves_destination"
        ),
        "{failure}"
    );
    // Shrunk to the one command that matters.
    let paste = failure.given_when_then().unwrap();
    assert!(paste.contains("ChangeDestination"), "{paste}");
    assert!(paste.contains("\"EDDF\""), "{paste}");
    assert!(paste.contains("\"SUGOL1A\""), "{paste}");
}

/// Reports with distinct times (a time maps to one position), in time order; any
/// coordinates, rounded to the microdegree as the feed's decoder does.
fn reports() -> impl Strategy<Value = Vec<FlightEvent>> {
    let position = (-90.0..=90.0f64, -180.0..=180.0f64, 0..45_000u32);
    prop::collection::btree_map(0..100_000u64, position, 1..60).prop_map(|by_time| {
        by_time
            .into_iter()
            .map(|(at, (lat, lon, altitude_ft))| FlightEvent::RadarTrack {
                at,
                lat: Latitude::new(lat).unwrap(),
                lon: Longitude::new(lon).unwrap(),
                altitude_ft,
            })
            .collect()
    })
}

fn newest(reports: &[FlightEvent]) -> Option<Position> {
    let by_time: BTreeMap<u64, Position> = reports
        .iter()
        .map(|e| match e {
            FlightEvent::RadarTrack {
                at,
                lat,
                lon,
                altitude_ft,
            } => (
                *at,
                Position {
                    at: *at,
                    lat: *lat,
                    lon: *lon,
                    altitude_ft: *altitude_ft,
                },
            ),
            other => panic!("not a radar report: {other:?}"),
        })
        .collect();
    by_time.values().last().copied()
}

/// How many reports of `arrived` come after a newer one.
fn late(arrived: &[FlightEvent]) -> u64 {
    let mut newest = None;
    let mut late = 0;
    for e in arrived {
        if let FlightEvent::RadarTrack { at, .. } = e {
            if newest.is_some_and(|n| n >= *at) {
                late += 1;
            } else {
                newest = Some(*at);
            }
        }
    }
    late
}

proptest! {
    #[test]
    fn in_any_order_the_newest_radar_report_is_the_position(
        (in_time_order, arrived) in reports().prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle()))
    ) {
        let expected = newest(&in_time_order);
        let late = late(&arrived);
        let count = arrived.len() as u64;
        // `given` also checks the invariant after each report and each report's codec
        // round trip.
        Flight::given(std::iter::once(filed()).chain(arrived))
            .then_state(|f| {
                assert_eq!(f.position, expected);
                assert_eq!((f.radar_reports, f.late_reports), (count, late));
            });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn in_any_batches_with_snapshots_anywhere_a_load_gives_the_newest_position(
        arrived in reports().prop_flat_map(|r| Just(r).prop_shuffle()),
        batch in 1..8usize,
        every in 1..10u64,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let store = InMemoryEventStore::new();
            let flights = Cqrs::<Flight>::builder_with_services(store.clone(), NavDatabase::europe())
                .snapshots(SnapshotPolicy::every(every))
                .build();
            for chunk in arrived.chunks(batch) {
                flights.ingest("BAW117", chunk.to_vec(), Metadata::default()).await.unwrap();
            }
            let cold = Cqrs::<Flight>::builder_with_services(store.clone(), NavDatabase::europe())
                .snapshots(SnapshotPolicy::every(every))
                .build()
                .load("BAW117")
                .await
                .unwrap();
            let mut folded = Flight::default();
            for e in &arrived {
                folded.apply(e);
            }
            assert_eq!(cold.version, arrived.len() as u64);
            assert_eq!(cold.state, folded);
            assert_eq!(cold.state.position, newest(&arrived));
        });
    }
}

proptest! {
    #[test]
    fn any_coordinate_survives_json_exactly_and_out_of_range_ones_are_refused(
        lat in proptest::num::f64::ANY,
        lon in proptest::num::f64::ANY,
    ) {
        let in_range = |x: f64, limit: f64| x.is_finite() && x.abs() <= limit;
        prop_assert_eq!(Latitude::new(lat).is_ok(), in_range(lat, 90.0));
        prop_assert_eq!(Longitude::new(lon).is_ok(), in_range(lon, 180.0));
        if let (Ok(la), Ok(lo)) = (Latitude::new(lat), Longitude::new(lon)) {
            let json = serde_json::to_string(&(la, lo)).unwrap();
            let back: (Latitude, Longitude) = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, (la, lo));
            prop_assert!((la.degrees() - lat).abs() <= 0.5e-6);
            prop_assert!((lo.degrees() - lon).abs() <= 0.5e-6);
        }
    }
}
