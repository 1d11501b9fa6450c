//! The `Flight` aggregate: a flight plan from filing to landing, its arrival route, and
//! the newest radar position.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use flight::{Flight, FlightCommand, FlightError, FlightStatus, NavDatabase};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let flights = Cqrs::<Flight>::builder_with_services(InMemoryEventStore::new(), NavDatabase::europe())
//!     .build();
//! let plan = FlightCommand::FilePlan {
//!     callsign: "BAW117".into(),
//!     origin: "EGLL".into(),
//!     destination: "EHAM".into(),
//!     star: "ARTIP1A".into(),
//! };
//! flights.execute_routed(plan).await.unwrap();
//! flights.execute("BAW117", FlightCommand::Depart).await.unwrap();
//!
//! // A new destination needs one of its own arrival routes.
//! let wrong = FlightCommand::ChangeDestination { airport: "LFPG".into(), star: "SUGOL1A".into() };
//! let refused = flights.execute("BAW117", wrong).await.unwrap_err();
//! assert!(matches!(refused.rejection(), Some(FlightError::StarOfAnotherAirport { .. })));
//! let right = FlightCommand::ChangeDestination { airport: "LFPG".into(), star: "LORNI4W".into() };
//! flights.execute("BAW117", right).await.unwrap();
//!
//! let flight = flights.load("BAW117").await.unwrap().state;
//! assert_eq!((flight.destination.as_str(), flight.status), ("LFPG", FlightStatus::Airborne));
//! assert_eq!(flight.diverted_from.as_deref(), Some("EHAM"));
//! # });
//! ```

use std::fmt;

use cqrs_core::prelude::*;

use crate::geo::{Latitude, Longitude};
use crate::navdb::{NavDatabase, Star};

/// What happened to a flight. Every variant is stored under its own name, schema
/// version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum FlightEvent {
    /// The flight plan was filed.
    PlanFiled {
        /// The flight's callsign, e.g. `BAW117`.
        callsign: String,
        /// The ICAO code of the departure airport.
        origin: String,
        /// The ICAO code of the destination airport.
        destination: String,
        /// The arrival route into the destination, as the navigation database lists it.
        star: Star,
    },
    /// The flight took off.
    Departed,
    /// The destination changed (a diversion, once airborne), with the arrival route
    /// into the new one.
    DestinationChanged {
        /// The ICAO code of the new destination.
        airport: String,
        /// The arrival route into it, as the navigation database lists it.
        star: Star,
    },
    /// The flight landed.
    Landed {
        /// Where: its destination.
        airport: String,
    },
    /// A radar position report: an external event, ingested without a command. Reports
    /// may arrive out of order; only the newest by `at` moves the flight.
    RadarTrack {
        /// When the position was measured, in seconds since the Unix epoch (UTC).
        at: u64,
        /// Latitude.
        lat: Latitude,
        /// Longitude.
        lon: Longitude,
        /// Pressure altitude in feet.
        altitude_ft: u32,
    },
}

/// What a flight can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Command)]
pub enum FlightCommand {
    /// Files the flight plan. Names the flight, so it can be sent with
    /// [`Cqrs::execute_routed`](cqrs_core::Cqrs::execute_routed).
    FilePlan {
        /// The callsign: the flight's aggregate id.
        #[command(id)]
        callsign: String,
        /// The ICAO code of the departure airport.
        origin: String,
        /// The ICAO code of the destination airport.
        destination: String,
        /// The name of an arrival route into the destination.
        star: String,
    },
    /// Records the take-off.
    Depart,
    /// Sends the flight to another airport, along one of that airport's arrival routes.
    ChangeDestination {
        /// The ICAO code of the new destination.
        airport: String,
        /// The name of an arrival route into it.
        star: String,
    },
    /// Records the landing, at the destination.
    Land,
}

/// Why a flight refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlightError {
    /// `FilePlan` for a flight that already has one.
    #[error("flight {callsign} already has a flight plan")]
    AlreadyFiled {
        /// The callsign of the plan on file.
        callsign: String,
    },
    /// A command that needs a flight plan, on a flight without one.
    #[error("the flight has no flight plan")]
    NotFiled,
    /// `Depart` on a flight that already took off.
    #[error("the flight has already departed")]
    AlreadyDeparted,
    /// `Land` on a flight that is not in the air.
    #[error("the flight is not airborne")]
    NotAirborne,
    /// A command that changes the plan of a flight that has landed.
    #[error("the flight has already landed")]
    AlreadyLanded,
    /// An airport the navigation database does not know.
    #[error("airport {0} is not in the navigation database")]
    UnknownAirport(String),
    /// An arrival route of another airport.
    #[error("STAR {star} leads to {serves}, not to {airport}")]
    StarOfAnotherAirport {
        /// The route asked for.
        star: String,
        /// The airport it was asked for.
        airport: String,
        /// The airport it does lead to.
        serves: String,
    },
    /// An arrival route the navigation database does not know at all.
    #[error("STAR {star} is not in the navigation database (asked for {airport})")]
    UnknownStar {
        /// The route asked for.
        star: String,
        /// The airport it was asked for.
        airport: String,
    },
}

/// Where a flight is in its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlightStatus {
    /// No flight plan yet (radar may already see it).
    #[default]
    NotFiled,
    /// Plan filed, on the ground.
    Filed,
    /// In the air.
    Airborne,
    /// Landed at its destination.
    Landed,
}

impl fmt::Display for FlightStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotFiled => "not filed",
            Self::Filed => "filed",
            Self::Airborne => "airborne",
            Self::Landed => "landed",
        })
    }
}

/// A position from a radar report.
///
/// Displayed as `12:00:30Z 50.10N 1.20E FL340`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// When it was measured, in seconds since the Unix epoch (UTC).
    pub at: u64,
    /// Latitude.
    pub lat: Latitude,
    /// Longitude.
    pub lon: Longitude,
    /// Pressure altitude in feet.
    pub altitude_ft: u32,
}

impl Position {
    /// Keeps `report` in `newest` if it is newer than what `newest` holds, and says
    /// whether it did: an older (or equally old) report leaves it as it is.
    ///
    /// ```
    /// use flight::{Latitude, Longitude, Position};
    /// let at = |at| Position {
    ///     at,
    ///     lat: Latitude::new(50.0).unwrap(),
    ///     lon: Longitude::new(1.0).unwrap(),
    ///     altitude_ft: 30_000,
    /// };
    /// let mut newest = None;
    /// assert!(Position::keep_newest(&mut newest, at(30)));
    /// assert!(!Position::keep_newest(&mut newest, at(10)));
    /// assert_eq!(newest.unwrap().at, 30);
    /// ```
    pub fn keep_newest(newest: &mut Option<Position>, report: Position) -> bool {
        match newest {
            Some(kept) if kept.at >= report.at => false,
            _ => {
                *newest = Some(report);
                true
            }
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lat, lon) = (self.lat.degrees(), self.lon.degrees());
        let (ns, ew) = (
            if lat < 0.0 { 'S' } else { 'N' },
            if lon < 0.0 { 'W' } else { 'E' },
        );
        write!(
            f,
            "{} {:.2}{ns} {:.2}{ew} FL{:03}",
            clock(self.at),
            lat.abs(),
            lon.abs(),
            self.altitude_ft / 100
        )
    }
}

/// The UTC time of day of `at` (seconds since the Unix epoch), as `HH:MM:SSZ`.
///
/// ```
/// assert_eq!(flight::clock(1_748_779_230), "12:00:30Z");
/// ```
pub fn clock(at: u64) -> String {
    let s = at % 86_400;
    format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

// ANCHOR: flight_rule
/// A flight: the fold of its events. Its aggregate type name (the prefix of its stream
/// ids) is `Flight`; its aggregate id is its callsign.
///
/// Its handlers look routes up in the [`NavDatabase`] (the aggregate's services). The
/// rule that matters most to air traffic control is stated as a Given/When/Shall
/// invariant, `arrival_route_serves_destination`: *given a flight with a plan on file,
/// when its destination changes, its arrival route leads to the new destination*. The
/// runtime enforces it (`enforce_invariants`): even with a navigation database that lists
/// a route under the wrong airport, no such diversion is ever stored.
///
/// Radar reports are [`FlightEvent::RadarTrack`] facts: every one is stored, but only
/// the newest by measurement time becomes [`position`](Self::position).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    command = FlightCommand,
    event = FlightEvent,
    error = FlightError,
    services = NavDatabase,
    enforce_invariants
)]
#[invariant(
    given = has_plan,
    when = DestinationChanged,
    shall = arrival_route_serves_destination,
    "given a flight with a plan on file, when its destination changes, its arrival route \
     (STAR) leads to the new destination"
)]
pub struct Flight {
    /// The callsign on the flight plan (empty until one is filed).
    pub callsign: String,
    /// The ICAO code of the departure airport.
    pub origin: String,
    /// The ICAO code of the current destination.
    pub destination: String,
    /// The arrival route into the destination.
    pub star: Option<Star>,
    /// Where the flight is in its life.
    pub status: FlightStatus,
    /// The destination before the last change, if it changed.
    pub diverted_from: Option<String>,
    /// The newest radar position.
    pub position: Option<Position>,
    /// How many radar reports the stream holds.
    pub radar_reports: u64,
    /// How many of them arrived after a newer one and were ignored.
    pub late_reports: u64,
}
// ANCHOR_END: flight_rule

impl Flight {
    // ANCHOR: flight_rule_fns
    /// Whether a flight plan is on file (the flight may have departed or landed since).
    pub fn has_plan(&self) -> bool {
        self.status != FlightStatus::NotFiled
    }

    /// The invariant: the arrival route leads to the destination.
    pub fn arrival_route_serves_destination(&self) -> bool {
        self.star
            .as_ref()
            .is_some_and(|star| star.airport == self.destination)
    }
    // ANCHOR_END: flight_rule_fns
}

#[aggregate_impl]
impl Flight {
    #[handle]
    fn file_plan(
        &self,
        callsign: String,
        origin: String,
        destination: String,
        star: String,
        #[services] nav: &NavDatabase,
    ) -> Result<FlightEvent, FlightError> {
        if self.has_plan() {
            return Err(FlightError::AlreadyFiled {
                callsign: self.callsign.clone(),
            });
        }
        if nav.airport(&origin).is_none() {
            return Err(FlightError::UnknownAirport(origin));
        }
        let star = nav.arrival(&destination, &star)?;
        Ok(FlightEvent::PlanFiled {
            callsign,
            origin,
            destination,
            star,
        })
    }

    #[handle]
    fn depart(&self) -> Result<FlightEvent, FlightError> {
        match self.status {
            FlightStatus::NotFiled => Err(FlightError::NotFiled),
            FlightStatus::Filed => Ok(FlightEvent::Departed),
            FlightStatus::Airborne => Err(FlightError::AlreadyDeparted),
            FlightStatus::Landed => Err(FlightError::AlreadyLanded),
        }
    }

    // ANCHOR: change_destination
    /// Trusts the navigation database's listing: the invariant is what guarantees that
    /// the route leads to the new destination, whatever the database says.
    #[handle]
    fn change_destination(
        &self,
        airport: String,
        star: String,
        #[services] nav: &NavDatabase,
    ) -> Result<Option<FlightEvent>, FlightError> {
        match self.status {
            FlightStatus::NotFiled => return Err(FlightError::NotFiled),
            FlightStatus::Landed => return Err(FlightError::AlreadyLanded),
            FlightStatus::Filed | FlightStatus::Airborne => {}
        }
        let star = nav.arrival(&airport, &star)?;
        if airport == self.destination && self.star.as_ref() == Some(&star) {
            // Already going there that way: nothing changes.
            return Ok(None);
        }
        Ok(Some(FlightEvent::DestinationChanged { airport, star }))
    }
    // ANCHOR_END: change_destination

    #[handle]
    fn land(&self) -> Result<FlightEvent, FlightError> {
        match self.status {
            FlightStatus::Airborne => Ok(FlightEvent::Landed {
                airport: self.destination.clone(),
            }),
            FlightStatus::Landed => Err(FlightError::AlreadyLanded),
            FlightStatus::NotFiled | FlightStatus::Filed => Err(FlightError::NotAirborne),
        }
    }

    #[apply]
    fn plan_filed(&mut self, callsign: &str, origin: &str, destination: &str, star: &Star) {
        self.callsign = callsign.to_owned();
        self.origin = origin.to_owned();
        self.destination = destination.to_owned();
        self.star = Some(star.clone());
        self.status = FlightStatus::Filed;
    }

    #[apply]
    fn departed(&mut self) {
        self.status = FlightStatus::Airborne;
    }

    #[apply]
    fn destination_changed(&mut self, airport: &str, star: &Star) {
        if self.destination != airport {
            self.diverted_from = Some(std::mem::replace(&mut self.destination, airport.to_owned()));
        }
        self.star = Some(star.clone());
    }

    #[apply]
    fn landed(&mut self) {
        self.status = FlightStatus::Landed;
    }

    // ANCHOR: radar_apply
    #[apply]
    fn radar_track(&mut self, at: &u64, lat: &Latitude, lon: &Longitude, altitude_ft: &u32) {
        self.radar_reports += 1;
        let report = Position {
            at: *at,
            lat: *lat,
            lon: *lon,
            altitude_ft: *altitude_ft,
        };
        if !Position::keep_newest(&mut self.position, report) {
            self.late_reports += 1;
        }
    }
    // ANCHOR_END: radar_apply
}
