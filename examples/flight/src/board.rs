//! The flight board: the read model a controller's or a terminal's screen shows, one row
//! per flight.
//!
//! It is an inline projection (see [`flight_runtime`](crate::flight_runtime)): its row
//! changes in the same transaction as the flight's events, so it never lags behind them.
//! Like the aggregate, it keeps only the newest radar position, whatever order the
//! reports arrive in.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::projection::ViewStoreExt;
//! use flight::{FlightBoard, FlightCommand, FlightEvent, FlightStatus, Latitude, Longitude, NavDatabase};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = InMemoryEventStore::new();
//! let flights = flight::flight_runtime(store.clone(), NavDatabase::europe());
//! let plan = FlightCommand::FilePlan {
//!     callsign: "AFR1234".into(),
//!     origin: "LFPG".into(),
//!     destination: "EGLL".into(),
//!     star: "OCK1A".into(),
//! };
//! flights.execute_routed(plan).await.unwrap();
//! flights.execute("AFR1234", FlightCommand::Depart).await.unwrap();
//! let (lat, lon) = (Latitude::new(50.1).unwrap(), Longitude::new(1.2).unwrap());
//! let track = |at| FlightEvent::RadarTrack { at, lat, lon, altitude_ft: 34_000 };
//! flights.ingest("AFR1234", vec![track(30), track(10)], Metadata::default()).await.unwrap();
//!
//! let row = store.get::<FlightBoard>("AFR1234").await.unwrap().unwrap();
//! assert_eq!((row.origin.as_str(), row.destination.as_str()), ("LFPG", "EGLL"));
//! assert_eq!(row.status, FlightStatus::Airborne);
//! assert_eq!(row.last_position.unwrap().at, 30);
//! # });
//! ```

use cqrs_core::prelude::*;

use crate::flight::{FlightEvent, FlightStatus, Position};
use crate::geo::{Latitude, Longitude};
use crate::navdb::Star;

/// One row of the flight board, keyed by the flight's aggregate id (its callsign).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightBoard {
    /// The callsign.
    pub callsign: String,
    /// The ICAO code of the departure airport.
    pub origin: String,
    /// The ICAO code of the destination.
    pub destination: String,
    /// The arrival route into the destination.
    pub star: String,
    /// The destination before the last change, if it changed.
    pub diverted_from: Option<String>,
    /// Where the flight is in its life.
    pub status: FlightStatus,
    /// The newest radar position.
    pub last_position: Option<Position>,
}

// ANCHOR: board
#[projection(name = "flight_board")]
impl FlightBoard {
    #[on(FlightEvent::PlanFiled)]
    fn filed(&mut self, callsign: &str, origin: &str, destination: &str, star: &Star) {
        self.callsign = callsign.to_owned();
        self.origin = origin.to_owned();
        self.destination = destination.to_owned();
        self.star = star.name.clone();
        self.status = FlightStatus::Filed;
    }

    #[on(FlightEvent::Departed)]
    fn departed(&mut self) {
        self.status = FlightStatus::Airborne;
    }

    #[on(FlightEvent::DestinationChanged)]
    fn destination_changed(&mut self, airport: &str, star: &Star) {
        if self.destination != airport {
            self.diverted_from = Some(std::mem::replace(&mut self.destination, airport.to_owned()));
        }
        self.star = star.name.clone();
    }

    #[on(FlightEvent::Landed)]
    fn landed(&mut self) {
        self.status = FlightStatus::Landed;
    }

    #[on(FlightEvent::RadarTrack)]
    fn radar_track(&mut self, at: &u64, lat: &Latitude, lon: &Longitude, altitude_ft: &u32) {
        let report = Position {
            at: *at,
            lat: *lat,
            lon: *lon,
            altitude_ft: *altitude_ft,
        };
        Position::keep_newest(&mut self.last_position, report);
    }
}
// ANCHOR_END: board
