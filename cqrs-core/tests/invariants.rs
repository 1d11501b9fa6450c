//! Invariants declared with `#[invariant(..)]`: checked by `apply_checked`, enforced by
//! the runtime when the aggregate opts in, and never leaving a partial write.

use cqrs_core::invariant::{InvariantGate, InvariantKind, InvariantViolation};
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum FlightEvent {
    TookOff,
    Landed,
    DestinationChanged { airport: String },
    RouteAssigned { star: String },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum FlightCommand {
    TakeOff,
    Land,
    /// Changes the destination; `with_route` also assigns a matching arrival route.
    Divert {
        airport: String,
        with_route: bool,
    },
    /// A buggy command: four events, the last lands once more than the flight took off.
    Crash,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct FlightError;

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = FlightCommand, event = FlightEvent, error = FlightError, enforce_invariants)]
#[invariant(
    landings_follow_take_offs,
    "a flight never lands more often than it took off"
)]
#[invariant(
    given = is_airborne,
    when = DestinationChanged | RouteAssigned,
    shall = route_matches_destination,
    "given an airborne flight, when its destination changes, its arrival route leads there"
)]
struct Flight {
    take_offs: u32,
    landings: u32,
    destination: String,
    star: String,
}

impl Flight {
    fn landings_follow_take_offs(&self) -> bool {
        self.landings <= self.take_offs
    }
    fn is_airborne(&self) -> bool {
        self.take_offs > self.landings
    }
    fn route_matches_destination(&self) -> bool {
        self.star.starts_with(&self.destination)
    }
}

#[aggregate_impl]
impl Flight {
    #[handle]
    fn take_off(&self) -> FlightEvent {
        FlightEvent::TookOff
    }
    #[handle]
    fn land(&self) -> FlightEvent {
        FlightEvent::Landed
    }
    #[handle]
    fn divert(&self, airport: String, with_route: bool) -> Vec<FlightEvent> {
        // Every event must leave the flight valid: the route comes first.
        let mut events = Vec::new();
        if with_route {
            events.push(FlightEvent::RouteAssigned {
                star: format!("{airport}-STAR1"),
            });
        }
        events.push(FlightEvent::DestinationChanged { airport });
        events
    }
    #[handle]
    fn crash(&self) -> Vec<FlightEvent> {
        vec![
            FlightEvent::Landed,
            FlightEvent::TookOff,
            FlightEvent::Landed,
            FlightEvent::Landed,
        ]
    }
    #[apply]
    fn took_off(&mut self) {
        self.take_offs += 1;
    }
    #[apply]
    fn landed(&mut self) {
        self.landings += 1;
    }
    #[apply]
    fn destination_changed(&mut self, airport: &str) {
        self.destination = airport.to_owned();
    }
    #[apply]
    fn route_assigned(&mut self, star: &str) {
        self.star = star.to_owned();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_derive_lists_the_rules_in_order() {
    use cqrs_core::Aggregate;
    const { assert!(Flight::ENFORCE_INVARIANTS) };
    let [always, gws] = Flight::INVARIANTS else {
        panic!()
    };
    assert_eq!(always.name, "landings_follow_take_offs");
    assert_eq!(always.kind, InvariantKind::Always);
    assert_eq!(gws.name, "route_matches_destination");
    assert_eq!(
        gws.kind,
        InvariantKind::GivenWhenShall {
            given: Some("is_airborne"),
            when: &["DestinationChanged", "RouteAssigned"],
        }
    );
}

#[test]
fn a_given_when_shall_rule_applies_only_when_given_holds_and_the_event_matches() {
    use cqrs_core::Aggregate;
    let on_ground = Flight::default();
    let change = FlightEvent::DestinationChanged {
        airport: "OSL".into(),
    };
    // On the ground the precondition fails: the rule is not triggered.
    assert_eq!(on_ground.invariant_gate(&change), InvariantGate::NONE);
    let mut ground = on_ground.clone();
    ground.apply_checked(&change).unwrap();

    let mut airborne = Flight::default();
    airborne.apply_checked(&FlightEvent::TookOff).unwrap();
    // An event the rule does not concern does not trigger it.
    assert_eq!(
        airborne.invariant_gate(&FlightEvent::Landed),
        InvariantGate::NONE
    );
    assert!(airborne.invariant_gate(&change).has(0));
    let broken = airborne.apply_checked(&change).unwrap_err();
    assert_eq!(
        broken,
        InvariantViolation {
            name: "route_matches_destination",
            rule: "given an airborne flight, when its destination changes, its arrival route leads there",
            event_type: Some("DestinationChanged"),
        }
    );
    // The state is the broken one, for the caller to show.
    assert_eq!(airborne.destination, "OSL");
    airborne
        .apply_checked(&FlightEvent::RouteAssigned {
            star: "OSL-STAR2".into(),
        })
        .unwrap();
}

#[test]
fn an_enforcing_runtime_refuses_events_that_break_a_rule_and_writes_nothing() {
    rt().block_on(async {
        let store = InMemoryEventStore::new();
        let flights = Cqrs::<Flight>::builder(store.clone()).build();
        flights.execute("f1", FlightCommand::TakeOff).await.unwrap();

        // The first event alone breaks the Given/When/Shall rule.
        let err = flights
            .execute(
                "f1",
                FlightCommand::Divert {
                    airport: "BGO".into(),
                    with_route: false,
                },
            )
            .await
            .unwrap_err();
        let CommandError::Invariant { violation } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(violation.name, "route_matches_destination");
        assert_eq!(
            err.to_string(),
            "command refused: its events would break invariant `route_matches_destination` \
             broken by `DestinationChanged`: given an airborne flight, when its destination \
             changes, its arrival route leads there"
        );
        // The last of four events breaks the always-rule: none is written.
        let err = flights.execute("f1", FlightCommand::Crash).await.unwrap_err();
        assert!(
            matches!(&err, CommandError::Invariant { violation } if violation.name == "landings_follow_take_offs"),
            "{err:?}"
        );
        assert_eq!(store.stream_version("Flight-f1").await.unwrap(), Some(1));

        // The refused commands left nothing behind in the cache either.
        let done = flights
            .execute(
                "f1",
                FlightCommand::Divert {
                    airport: "BGO".into(),
                    with_route: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(done.stream_version, 3);
        let loaded = flights.load("f1").await.unwrap();
        assert_eq!(
            (loaded.state.take_offs, loaded.state.destination.as_str()),
            (1, "BGO")
        );
        flights.execute("f1", FlightCommand::Land).await.unwrap();
        assert_eq!(store.stream_version("Flight-f1").await.unwrap(), Some(4));
    });
}

#[test]
fn the_builder_can_turn_enforcement_off() {
    rt().block_on(async {
        let flights = Cqrs::<Flight>::builder(InMemoryEventStore::new())
            .enforce_invariants(false)
            .build();
        let done = flights.execute("f2", FlightCommand::Crash).await.unwrap();
        assert_eq!(done.events.len(), 4);
    });
}
