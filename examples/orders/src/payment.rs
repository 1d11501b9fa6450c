//! The `Payment` aggregate: money a customer's card holds for an order.
//!
//! A payment is *authorized* for an order (the bank holds the amount), then *captured*
//! when the order is confirmed (the money moves), or *voided* if the order cannot be
//! fulfilled; captured money can be *refunded*. Every payment event names its order, so
//! that readers (the [`OrderSummary`](crate::OrderSummary) read model, the fulfilment
//! process) need not look the payment up.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use orders::{Currency, Payment, PaymentCommand, PaymentError};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let payments = Cqrs::<Payment>::builder(InMemoryEventStore::new()).build();
//! let authorize = PaymentCommand::Authorize { order_id: "o-1".into(), amount: 500, currency: Currency::Eur };
//! payments.execute("pay-1", authorize).await.unwrap();
//! let err = payments.execute("pay-1", PaymentCommand::Capture { amount: 900 }).await.unwrap_err();
//! assert_eq!(err.rejection(), Some(&PaymentError::ExceedsAuthorization { authorized: 500, requested: 900 }));
//! # });
//! ```

use std::fmt;

use cqrs_core::prelude::*;

use crate::money::Currency;

/// What happened to a payment. Stored under the variant names, schema version 1.
#[allow(clippy::enum_variant_names)] // `PaymentAuthorized`…: distinct from other aggregates' names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum PaymentEvent {
    /// The card issuer holds `amount` for the order.
    PaymentAuthorized {
        /// The order paid for.
        order_id: String,
        /// The amount held, in minor units.
        amount: u64,
        /// Its currency.
        currency: Currency,
    },
    /// Held money was taken.
    PaymentCaptured {
        /// The order paid for.
        order_id: String,
        /// The amount taken.
        amount: u64,
    },
    /// The authorization was released without taking anything.
    PaymentVoided {
        /// The order paid for.
        order_id: String,
        /// Why.
        reason: String,
    },
    /// Captured money was given back.
    PaymentRefunded {
        /// The order paid for.
        order_id: String,
        /// The amount given back.
        amount: u64,
        /// Why.
        reason: String,
    },
}

/// What a payment can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Command)]
pub enum PaymentCommand {
    /// Authorizes `amount` for an order (the checkout, on the card issuer's answer).
    Authorize {
        /// The order paid for.
        order_id: String,
        /// The amount, above zero.
        amount: u64,
        /// Its currency.
        currency: Currency,
    },
    /// Takes `amount` of the authorized money (at most what is authorized and not yet
    /// captured).
    Capture {
        /// The amount.
        amount: u64,
    },
    /// Releases an authorization that captured nothing; a payment already voided stays
    /// as it is (no event).
    Void {
        /// Why.
        reason: String,
    },
    /// Gives back `amount` of the captured money.
    Refund {
        /// The amount, above zero and at most what was captured and not yet refunded.
        amount: u64,
        /// Why.
        reason: String,
    },
}

/// Why a payment refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// `Authorize` on a payment that exists.
    #[error("the payment is already authorized")]
    AlreadyAuthorized,
    /// An amount of zero.
    #[error("the amount must be above zero")]
    ZeroAmount,
    /// A command on a payment that was never authorized.
    #[error("the payment was never authorized")]
    NotAuthorized,
    /// A command on a voided payment.
    #[error("the payment was voided")]
    Voided,
    /// A capture beyond what is still authorized.
    #[error("{requested} cannot be captured: {authorized} is authorized and not yet captured")]
    ExceedsAuthorization {
        /// What is still authorized.
        authorized: u64,
        /// What was asked for.
        requested: u64,
    },
    /// `Void` on a payment that captured money (refund it instead).
    #[error("the payment captured money: refund it instead")]
    AlreadyCaptured,
    /// A refund beyond what was captured and not yet refunded.
    #[error("{requested} cannot be refunded: {refundable} is captured and not yet refunded")]
    ExceedsCapture {
        /// What can still be refunded.
        refundable: u64,
        /// What was asked for.
        requested: u64,
    },
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// No payment.
    #[default]
    None,
    /// Money is held.
    Authorized,
    /// Money was taken (some may be refunded since).
    Captured,
    /// The authorization was released.
    Voided,
    /// Everything captured was given back.
    Refunded,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PaymentStatus::None => "none",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Refunded => "refunded",
        })
    }
}

/// A payment: the fold of its events. Its stream ids are `Payment-<id>`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Aggregate)]
#[aggregate(
    command = PaymentCommand,
    event = PaymentEvent,
    error = PaymentError,
    enforce_invariants
)]
#[invariant(
    captured_within_authorized,
    "a payment never captures more than was authorized"
)]
#[invariant(
    refunded_within_captured,
    "a payment never refunds more than it captured"
)]
pub struct Payment {
    /// Where it stands.
    pub status: PaymentStatus,
    /// The order it pays for.
    pub order_id: String,
    /// The currency.
    pub currency: Currency,
    /// The amount authorized.
    pub authorized: u64,
    /// The amount captured so far.
    pub captured: u64,
    /// The amount refunded so far.
    pub refunded: u64,
}

impl Payment {
    /// Invariant: captured ≤ authorized.
    pub fn captured_within_authorized(&self) -> bool {
        self.captured <= self.authorized
    }

    /// Invariant: refunded ≤ captured.
    pub fn refunded_within_captured(&self) -> bool {
        self.refunded <= self.captured
    }

    fn usable(&self) -> Result<(), PaymentError> {
        match self.status {
            PaymentStatus::None => Err(PaymentError::NotAuthorized),
            PaymentStatus::Voided => Err(PaymentError::Voided),
            _ => Ok(()),
        }
    }
}

#[aggregate_impl]
impl Payment {
    #[handle]
    fn authorize(
        &self,
        order_id: String,
        amount: u64,
        currency: Currency,
    ) -> Result<PaymentEvent, PaymentError> {
        if self.status != PaymentStatus::None {
            return Err(PaymentError::AlreadyAuthorized);
        }
        if amount == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        Ok(PaymentEvent::PaymentAuthorized {
            order_id,
            amount,
            currency,
        })
    }

    #[handle]
    fn capture(&self, amount: u64) -> Result<PaymentEvent, PaymentError> {
        self.usable()?;
        if amount == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        let authorized = self.authorized.saturating_sub(self.captured);
        if amount > authorized {
            return Err(PaymentError::ExceedsAuthorization {
                authorized,
                requested: amount,
            });
        }
        Ok(PaymentEvent::PaymentCaptured {
            order_id: self.order_id.clone(),
            amount,
        })
    }

    #[handle]
    fn void(&self, reason: String) -> Result<Option<PaymentEvent>, PaymentError> {
        match self.status {
            PaymentStatus::None => Err(PaymentError::NotAuthorized),
            PaymentStatus::Voided => Ok(None),
            PaymentStatus::Authorized => Ok(Some(PaymentEvent::PaymentVoided {
                order_id: self.order_id.clone(),
                reason,
            })),
            PaymentStatus::Captured | PaymentStatus::Refunded => Err(PaymentError::AlreadyCaptured),
        }
    }

    #[handle]
    fn refund(&self, amount: u64, reason: String) -> Result<PaymentEvent, PaymentError> {
        self.usable()?;
        if amount == 0 {
            return Err(PaymentError::ZeroAmount);
        }
        let refundable = self.captured.saturating_sub(self.refunded);
        if amount > refundable {
            return Err(PaymentError::ExceedsCapture {
                refundable,
                requested: amount,
            });
        }
        Ok(PaymentEvent::PaymentRefunded {
            order_id: self.order_id.clone(),
            amount,
            reason,
        })
    }

    #[apply]
    fn payment_authorized(&mut self, order_id: &str, amount: &u64, currency: &Currency) {
        self.status = PaymentStatus::Authorized;
        self.order_id = order_id.to_owned();
        self.authorized = *amount;
        self.currency = *currency;
    }

    #[apply]
    fn payment_captured(&mut self, amount: &u64) {
        self.status = PaymentStatus::Captured;
        self.captured = self.captured.saturating_add(*amount);
    }

    #[apply]
    fn payment_voided(&mut self) {
        self.status = PaymentStatus::Voided;
    }

    #[apply]
    fn payment_refunded(&mut self, amount: &u64) {
        self.refunded = self.refunded.saturating_add(*amount);
        if self.refunded == self.captured {
            self.status = PaymentStatus::Refunded;
        }
    }
}
