//! A flight with invariants, shared by the tests of invariant checks in scenarios.

#![allow(dead_code)]

use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub(crate) enum FlightEvent {
    TookOff,
    Landed,
    DestinationChanged { airport: String },
    RouteAssigned { star: String },
}

#[derive(Debug, Clone, PartialEq, Command)]
pub(crate) enum FlightCommand {
    TakeOff,
    Land,
    /// Changes the destination; `with_route` first assigns a matching arrival route.
    Divert {
        airport: String,
        with_route: bool,
    },
    /// A buggy command: lands twice, then takes off again; the second landing breaks a
    /// rule even though the third event makes the counts agree again.
    Bounce,
    /// Refused unless airborne.
    Hold,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum FlightError {
    #[error("the flight is not airborne")]
    NotAirborne,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = FlightCommand, event = FlightEvent, error = FlightError)]
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
pub(crate) struct Flight {
    pub(crate) take_offs: u32,
    pub(crate) landings: u32,
    pub(crate) destination: String,
    pub(crate) star: String,
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
    // A bug: nothing stops landing a flight on the ground.
    #[handle]
    fn land(&self) -> FlightEvent {
        FlightEvent::Landed
    }
    #[handle]
    fn divert(&self, airport: String, with_route: bool) -> Vec<FlightEvent> {
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
    fn bounce(&self) -> Vec<FlightEvent> {
        vec![
            FlightEvent::Landed,
            FlightEvent::Landed,
            FlightEvent::TookOff,
        ]
    }
    #[handle]
    fn hold(&self) -> Result<Vec<FlightEvent>, FlightError> {
        if !self.is_airborne() {
            return Err(FlightError::NotAirborne);
        }
        Ok(vec![])
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

pub(crate) fn divert(airport: &str) -> FlightEvent {
    FlightEvent::DestinationChanged {
        airport: airport.into(),
    }
}

pub(crate) fn route(star: &str) -> FlightEvent {
    FlightEvent::RouteAssigned { star: star.into() }
}
