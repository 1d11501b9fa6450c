//! The flight's rules, stated Given/When/Then: filing, departing, diverting along a
//! valid arrival route only, landing, and radar reports in any order. Every scenario also
//! checks the aggregate's invariant after each event, the purity of `apply` and the codec
//! round trip of every event.

use cqrs_testing::prelude::*;
use flight::{
    Flight, FlightCommand, FlightError, FlightEvent, FlightStatus, Latitude, Longitude,
    NavDatabase, Position, Star,
};

fn filed() -> FlightEvent {
    FlightEvent::PlanFiled {
        callsign: "BAW117".into(),
        origin: "EGLL".into(),
        destination: "EHAM".into(),
        star: Star::new("ARTIP1A", "EHAM"),
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

/// The built-in database, with Amsterdam's SUGOL1A listed under Frankfurt by mistake.
fn faulty_database() -> NavDatabase {
    NavDatabase::europe().with_star("EDDF", Star::new("SUGOL1A", "EHAM"))
}

#[test]
fn a_plan_is_filed_with_the_arrival_route_the_database_lists() {
    Flight::given_no_events()
        .when(FlightCommand::FilePlan {
            callsign: "BAW117".into(),
            origin: "EGLL".into(),
            destination: "EHAM".into(),
            star: "ARTIP1A".into(),
        })
        .then_events([filed()])
        .then_state(|f| {
            assert_eq!(f.status, FlightStatus::Filed);
            assert!(f.arrival_route_serves_destination());
        });
}

#[test]
fn a_plan_needs_known_airports_and_a_star_of_its_destination() {
    let plan = |origin: &str, destination: &str, star: &str| FlightCommand::FilePlan {
        callsign: "BAW117".into(),
        origin: origin.into(),
        destination: destination.into(),
        star: star.into(),
    };
    Flight::given_no_events()
        .when(plan("KJFK", "EHAM", "ARTIP1A"))
        .then_error(FlightError::UnknownAirport("KJFK".into()));
    Flight::given_no_events()
        .when(plan("EGLL", "LFPG", "ARTIP1A"))
        .then_error(FlightError::StarOfAnotherAirport {
            star: "ARTIP1A".into(),
            airport: "LFPG".into(),
            serves: "EHAM".into(),
        });
    Flight::given_no_events()
        .when(plan("EGLL", "EHAM", "NOWHERE9Z"))
        .then_error(FlightError::UnknownStar {
            star: "NOWHERE9Z".into(),
            airport: "EHAM".into(),
        });
}

#[test]
fn a_plan_is_filed_once() {
    Flight::given([filed()])
        .when(FlightCommand::FilePlan {
            callsign: "BAW117".into(),
            origin: "EGLL".into(),
            destination: "LFPG".into(),
            star: "LORNI4W".into(),
        })
        .then_error(FlightError::AlreadyFiled {
            callsign: "BAW117".into(),
        });
}

#[test]
fn a_flight_departs_once_and_only_with_a_plan() {
    Flight::given_no_events()
        .when(FlightCommand::Depart)
        .then_error(FlightError::NotFiled);
    Flight::given([filed()])
        .when(FlightCommand::Depart)
        .then_events([FlightEvent::Departed])
        .then_state(|f| assert_eq!(f.status, FlightStatus::Airborne));
    Flight::given([filed(), FlightEvent::Departed])
        .when(FlightCommand::Depart)
        .then_error(FlightError::AlreadyDeparted);
}

#[test]
fn a_diversion_along_a_star_of_another_airport_is_refused() {
    Flight::given([filed(), FlightEvent::Departed])
        .when(change("LFPG", "SUGOL1A"))
        .then_error(FlightError::StarOfAnotherAirport {
            star: "SUGOL1A".into(),
            airport: "LFPG".into(),
            serves: "EHAM".into(),
        })
        .then_state(|f| assert_eq!(f.destination, "EHAM"));
}

#[test]
fn a_diversion_along_a_star_of_the_new_airport_is_accepted() {
    Flight::given([filed(), FlightEvent::Departed])
        .when(change("LFPG", "LORNI4W"))
        .then_events([FlightEvent::DestinationChanged {
            airport: "LFPG".into(),
            star: Star::new("LORNI4W", "LFPG"),
        }])
        .then_state(|f| {
            assert_eq!(f.destination, "LFPG");
            assert_eq!(f.diverted_from.as_deref(), Some("EHAM"));
            assert_eq!(f.status, FlightStatus::Airborne);
        });
}

#[test]
fn a_new_star_into_the_same_airport_is_recorded_but_is_no_diversion() {
    Flight::given([filed()])
        .when(change("EHAM", "RIVER1A"))
        .then_events([FlightEvent::DestinationChanged {
            airport: "EHAM".into(),
            star: Star::new("RIVER1A", "EHAM"),
        }])
        .then_state(|f| assert_eq!(f.diverted_from, None));
    // Asking for the route it already has changes nothing.
    Flight::given([filed()])
        .when(change("EHAM", "ARTIP1A"))
        .then_no_events();
}

#[test]
fn the_destination_cannot_change_without_a_plan_or_after_landing() {
    Flight::given_no_events()
        .when(change("LFPG", "LORNI4W"))
        .then_error(FlightError::NotFiled);
    Flight::given([
        filed(),
        FlightEvent::Departed,
        FlightEvent::Landed {
            airport: "EHAM".into(),
        },
    ])
    .when(change("LFPG", "LORNI4W"))
    .then_error(FlightError::AlreadyLanded);
}

#[test]
fn the_invariant_catches_a_star_the_database_lists_under_the_wrong_airport() {
    // The handler trusts the faulty listing; the Given/When/Shall rule does not.
    let then = Flight::given([filed(), FlightEvent::Departed])
        .with_services(faulty_database())
        .expect_violation("arrival_route_serves_destination")
        .when(change("EDDF", "SUGOL1A"))
        .then_events([FlightEvent::DestinationChanged {
            airport: "EDDF".into(),
            star: Star::new("SUGOL1A", "EHAM"),
        }])
        .then_state(|f| assert!(!f.arrival_route_serves_destination()));
    let violation = then.violation().unwrap();
    assert_eq!(violation.event_type, Some("DestinationChanged"));
}

#[test]
fn with_the_faulty_database_a_valid_diversion_still_passes() {
    Flight::given([filed(), FlightEvent::Departed])
        .with_services(faulty_database())
        .when(change("LFPG", "LORNI4W"))
        .then_events_match(|events| events.len() == 1);
}

#[test]
#[should_panic(expected = "arrival_route_serves_destination")]
fn a_history_that_breaks_the_rule_is_refused_as_a_given() {
    let _ = Flight::given([
        filed(),
        FlightEvent::DestinationChanged {
            airport: "LFPG".into(),
            star: Star::new("SUGOL1A", "EHAM"),
        },
    ]);
}

#[test]
fn a_flight_lands_at_its_destination_once_airborne() {
    Flight::given([filed()])
        .when(FlightCommand::Land)
        .then_error(FlightError::NotAirborne);
    Flight::given([
        filed(),
        FlightEvent::Departed,
        FlightEvent::DestinationChanged {
            airport: "LFPG".into(),
            star: Star::new("LORNI4W", "LFPG"),
        },
    ])
    .when(FlightCommand::Land)
    .then_events([FlightEvent::Landed {
        airport: "LFPG".into(),
    }])
    .then_state(|f| assert_eq!(f.status, FlightStatus::Landed));
}

#[test]
fn only_the_newest_radar_report_moves_the_flight() {
    Flight::given([filed(), track(30, 50.1), track(10, 49.8), track(20, 49.9)]).then_state(|f| {
        assert_eq!(
            f.position,
            Some(Position {
                at: 30,
                lat: Latitude::new(50.1).unwrap(),
                lon: Longitude::new(1.0).unwrap(),
                altitude_ft: 30_000
            })
        );
        assert_eq!((f.radar_reports, f.late_reports), (3, 2));
    });
    // A report with the same time as the kept one does not replace it.
    Flight::given([track(30, 50.1), track(30, 40.0)])
        .then_state(|f| assert_eq!(f.position.map(|p| p.lat.degrees()), Some(50.1)));
}

#[test]
fn radar_may_see_a_flight_before_its_plan_is_filed() {
    Flight::given([track(5, 51.4)])
        .when(FlightCommand::FilePlan {
            callsign: "BAW117".into(),
            origin: "EGLL".into(),
            destination: "EHAM".into(),
            star: "ARTIP1A".into(),
        })
        .then_events([filed()])
        .then_state(|f| assert_eq!(f.position.map(|p| p.at), Some(5)));
}

#[test]
fn a_radar_report_from_the_feed_decodes_from_its_stored_shape() {
    Flight::given_stored(
        "RadarTrack",
        1,
        serde_json::json!({"at": 7, "lat": 50.5, "lon": -0.5, "altitude_ft": 12_000}),
    )
    .then_given_events([FlightEvent::RadarTrack {
        at: 7,
        lat: Latitude::new(50.5).unwrap(),
        lon: Longitude::new(-0.5).unwrap(),
        altitude_ft: 12_000,
    }]);
}

#[test]
#[should_panic(expected = "latitude 91 is out of range")]
fn a_stored_radar_report_beyond_the_pole_does_not_decode() {
    let _ = Flight::given_stored(
        "RadarTrack",
        1,
        serde_json::json!({"at": 7, "lat": 91.0, "lon": 0.0, "altitude_ft": 0}),
    );
}
