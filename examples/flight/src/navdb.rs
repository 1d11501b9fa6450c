//! The navigation database: airports and their standard arrival routes (STARs).
//!
//! A STAR is the published route an aircraft follows from the en-route airspace to one
//! airport's approach. A flight may only be sent to an airport along one of that airport's
//! own STARs: the [`Flight`](crate::Flight) aggregate receives this database as its
//! services and looks every route up in it.
//!
//! [`NavDatabase::europe`] (also its `Default`) is the small built-in database of this
//! example: five European airports with a few STARs each. The names follow real
//! procedures but are illustrative, not for navigation.
//!
//! ```
//! use flight::{FlightError, NavDatabase};
//!
//! let nav = NavDatabase::europe();
//! assert_eq!(nav.arrival("LFPG", "LORNI4W").unwrap().airport, "LFPG");
//! // SUGOL1A is an arrival into Amsterdam, not Paris.
//! assert_eq!(
//!     nav.arrival("LFPG", "SUGOL1A").unwrap_err(),
//!     FlightError::StarOfAnotherAirport {
//!         star: "SUGOL1A".into(),
//!         airport: "LFPG".into(),
//!         serves: "EHAM".into(),
//!     }
//! );
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FlightError;

/// A standard arrival route, as the navigation database records it: its name and the
/// airport it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Star {
    /// The procedure's name, e.g. `LORNI4W`.
    pub name: String,
    /// The ICAO code of the airport it leads to, e.g. `LFPG`.
    pub airport: String,
}

impl Star {
    /// The route `name` leading to `airport`.
    pub fn new(name: impl Into<String>, airport: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            airport: airport.into(),
        }
    }
}

/// An airport of the navigation database.
#[derive(Debug, Clone, PartialEq)]
pub struct Airport {
    /// Its ICAO code, e.g. `EGLL`.
    pub icao: String,
    /// Its name, e.g. `London Heathrow`.
    pub name: String,
    /// Latitude of the aerodrome reference point, in degrees (north positive).
    pub lat: f64,
    /// Longitude of the aerodrome reference point, in degrees (east positive).
    pub lon: f64,
    /// The arrival routes listed for it.
    pub stars: Vec<Star>,
}

/// Airports and their arrival routes, keyed by ICAO code: the services of the
/// [`Flight`](crate::Flight) aggregate.
///
/// Its `Default` is the built-in [`europe`](Self::europe) database, so that scenarios and
/// property tests get it without saying so.
#[derive(Debug, Clone, PartialEq)]
pub struct NavDatabase {
    airports: BTreeMap<String, Airport>,
}

impl Default for NavDatabase {
    fn default() -> Self {
        Self::europe()
    }
}

impl NavDatabase {
    /// A database with no airport.
    pub fn empty() -> Self {
        Self {
            airports: BTreeMap::new(),
        }
    }

    /// The built-in database of this example: London Heathrow, Amsterdam Schiphol,
    /// Paris Charles de Gaulle, Frankfurt and Oslo Gardermoen, three STARs each.
    pub fn europe() -> Self {
        Self::empty()
            .with_airport(
                "EGLL",
                "London Heathrow",
                (51.4700, -0.4543),
                &["BIG1E", "LAM3A", "OCK1A"],
            )
            .with_airport(
                "EHAM",
                "Amsterdam Schiphol",
                (52.3086, 4.7639),
                &["ARTIP1A", "RIVER1A", "SUGOL1A"],
            )
            .with_airport(
                "LFPG",
                "Paris Charles de Gaulle",
                (49.0097, 2.5479),
                &["LORNI4W", "MOPAR6W", "OKIPA4E"],
            )
            .with_airport(
                "EDDF",
                "Frankfurt",
                (50.0333, 8.5706),
                &["KERAX3A", "PSA3A", "UNOKO3A"],
            )
            .with_airport(
                "ENGM",
                "Oslo Gardermoen",
                (60.1939, 11.1004),
                &["ADOPI3M", "ESEBA3M", "INREX3M"],
            )
    }

    /// Adds (or replaces) airport `icao` with its name, its reference point `(lat, lon)`
    /// and the STARs named in `stars`, each leading to it.
    #[must_use]
    pub fn with_airport(
        mut self,
        icao: &str,
        name: &str,
        (lat, lon): (f64, f64),
        stars: &[&str],
    ) -> Self {
        let airport = Airport {
            icao: icao.to_owned(),
            name: name.to_owned(),
            lat,
            lon,
            stars: stars.iter().map(|s| Star::new(*s, icao)).collect(),
        };
        self.airports.insert(icao.to_owned(), airport);
        self
    }

    /// Lists `star` under airport `listed_under` as it is, even if it leads elsewhere: how
    /// a data-entry mistake gets into a navigation database. Tests use it to show that the
    /// aggregate's invariant catches what the database lets through.
    ///
    /// # Panics
    ///
    /// If `listed_under` is not in the database.
    #[must_use]
    pub fn with_star(mut self, listed_under: &str, star: Star) -> Self {
        let Some(airport) = self.airports.get_mut(listed_under) else {
            panic!("NavDatabase::with_star: no airport `{listed_under}` in the database");
        };
        airport.stars.push(star);
        self
    }

    /// The airport `icao`, if the database has it.
    pub fn airport(&self, icao: &str) -> Option<&Airport> {
        self.airports.get(icao)
    }

    /// Every airport, by ICAO code.
    pub fn airports(&self) -> impl Iterator<Item = &Airport> {
        self.airports.values()
    }

    /// Every STAR of every airport, in airport order.
    pub fn stars(&self) -> impl Iterator<Item = &Star> {
        self.airports.values().flat_map(|a| a.stars.iter())
    }

    /// The arrival route `star` listed for `airport`, as the database records it.
    ///
    /// # Errors
    ///
    /// [`FlightError::UnknownAirport`] if the airport is not in the database;
    /// [`FlightError::StarOfAnotherAirport`] if `star` is listed for another airport only;
    /// [`FlightError::UnknownStar`] if it is listed nowhere.
    pub fn arrival(&self, airport: &str, star: &str) -> Result<Star, FlightError> {
        let Some(listed) = self.airports.get(airport) else {
            return Err(FlightError::UnknownAirport(airport.to_owned()));
        };
        if let Some(found) = listed.stars.iter().find(|s| s.name == star) {
            return Ok(found.clone());
        }
        match self.stars().find(|s| s.name == star) {
            Some(other) => Err(FlightError::StarOfAnotherAirport {
                star: star.to_owned(),
                airport: airport.to_owned(),
                serves: other.airport.clone(),
            }),
            None => Err(FlightError::UnknownStar {
                star: star.to_owned(),
                airport: airport.to_owned(),
            }),
        }
    }
}
