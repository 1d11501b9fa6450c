//! Coordinates as radar reports carry them: latitude and longitude in whole
//! microdegrees (about 0.1 m), written as decimal degrees.
//!
//! Why not a plain `f64`? Two reasons, both about facts that come from outside:
//!
//! - **Exact round trips.** An event is stored as JSON and decoded on every load, and
//!   must come back equal (the scenarios and property tests check it). A 17-digit `f64`
//!   does not always survive a JSON round trip exactly (`serde_json` without its
//!   `float_roundtrip` feature may be one unit in the last place off); a whole number of
//!   microdegrees, written with at most six decimals, always does.
//! - **Validation at the boundary.** A latitude of 123° or a `NaN` is refused when the
//!   report is decoded, so [`Cqrs::ingest_json`](cqrs_core::Cqrs::ingest_json) turns it
//!   into `CommandError::InvalidExternal` and nothing is stored.
//!
//! ```
//! use flight::{Latitude, Longitude};
//!
//! let lat = Latitude::new(50.1).unwrap();
//! assert_eq!(serde_json::to_string(&lat).unwrap(), "50.1");
//! assert_eq!(serde_json::from_str::<Latitude>("50.1000001").unwrap(), lat);
//! assert!(serde_json::from_str::<Latitude>("123.0").is_err());
//! assert_eq!(Longitude::new(-0.4543).unwrap().micro(), -454_300);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// A coordinate outside its range, or not a number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{what} {value} is out of range: it must lie within ±{limit} degrees")]
pub struct AngleError {
    /// `latitude` or `longitude`.
    pub what: &'static str,
    /// The value given, in degrees.
    pub value: f64,
    /// The largest magnitude allowed, in degrees.
    pub limit: u32,
}

/// Whole microdegrees of `degrees`, if it lies within `±limit`.
fn micro(what: &'static str, degrees: f64, limit: u32) -> Result<i32, AngleError> {
    if degrees.is_finite() && degrees.abs() <= f64::from(limit) {
        // At most 180,000,000 in magnitude: fits an i32.
        Ok((degrees * 1e6).round() as i32)
    } else {
        Err(AngleError {
            what,
            value: degrees,
            limit,
        })
    }
}

macro_rules! angle {
    ($(#[$doc:meta])* $name:ident, $what:literal, $limit:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(i32);

        impl $name {
            #[doc = concat!("The ", $what, " `degrees`, rounded to the nearest microdegree.")]
            ///
            /// # Errors
            ///
            #[doc = concat!("If it is not a number or lies outside ±", stringify!($limit), "°.")]
            pub fn new(degrees: f64) -> Result<Self, AngleError> {
                micro($what, degrees, $limit).map(Self)
            }

            /// In degrees.
            pub fn degrees(self) -> f64 {
                f64::from(self.0) / 1e6
            }

            /// In whole microdegrees.
            pub fn micro(self) -> i32 {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = AngleError;
            fn try_from(degrees: f64) -> Result<Self, AngleError> {
                Self::new(degrees)
            }
        }

        impl From<$name> for f64 {
            fn from(angle: $name) -> f64 {
                angle.degrees()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.degrees())
            }
        }
    };
}

angle!(
    /// A latitude in degrees, north positive, to the microdegree; within ±90°.
    Latitude,
    "latitude",
    90
);

angle!(
    /// A longitude in degrees, east positive, to the microdegree; within ±180°.
    Longitude,
    "longitude",
    180
);
