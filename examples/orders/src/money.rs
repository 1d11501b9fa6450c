//! Amounts of money: whole numbers of the currency's minor unit (cents), never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The currency an order is priced in (ISO 4217 code on the wire).
///
/// Orders placed before `OrderPlaced` went to version 2 carry no currency: the shop
/// sold in euros only, so the upcast fills in [`Currency::Eur`], the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    /// Euro.
    #[default]
    #[serde(rename = "EUR")]
    Eur,
    /// Pound sterling.
    #[serde(rename = "GBP")]
    Gbp,
    /// Norwegian krone.
    #[serde(rename = "NOK")]
    Nok,
}

impl Currency {
    /// The ISO 4217 code.
    ///
    /// ```
    /// assert_eq!(orders::Currency::Nok.code(), "NOK");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Nok => "NOK",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units with its currency, for display: `EUR 119.70`.
///
/// ```
/// use orders::{Currency, Money};
/// assert_eq!(Money(11970, Currency::Eur).to_string(), "EUR 119.70");
/// assert_eq!(Money(5, Currency::Nok).to_string(), "NOK 0.05");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money(pub u64, pub Currency);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{:02}", self.1, self.0 / 100, self.0 % 100)
    }
}
