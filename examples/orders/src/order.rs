//! The `Order` aggregate: what a customer bought, and where the order stands.
//!
//! An order is placed with its lines; it stays *pending* until stock is reserved for every
//! line and a payment covering the total is secured, and then confirms itself. The
//! fulfilment process manager reports both facts to it
//! ([`OrderCommand::RecordReservation`], [`OrderCommand::RecordPayment`]); the order, not
//! the process, decides when it is confirmed.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use orders::{Currency, Order, OrderCommand, OrderEvent, OrderLine, OrderStatus};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let orders = Cqrs::<Order>::builder(InMemoryEventStore::new()).build();
//! let lines = vec![OrderLine::new("mouse", 2, 1990)];
//! let place = OrderCommand::Place { customer: "Ada".into(), lines, currency: Currency::Eur };
//! orders.execute("o-1", place).await.unwrap();
//! orders.execute("o-1", OrderCommand::RecordReservation { sku: "mouse".into(), quantity: 2 }).await.unwrap();
//! let paid = OrderCommand::RecordPayment { payment_id: "pay-1".into(), amount: 3980 };
//! let done = orders.execute("o-1", paid).await.unwrap();
//! // The last missing fact confirms the order.
//! assert_eq!(done.events[1].event, OrderEvent::OrderConfirmed);
//! assert_eq!(orders.load("o-1").await.unwrap().state.status, OrderStatus::Confirmed);
//! # });
//! ```

use std::collections::BTreeSet;
use std::fmt;

use cqrs_core::prelude::*;

use crate::money::{Currency, Money};

/// One line of an order: so many units of one SKU at a unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The stock-keeping unit: which product (the id of its [`Inventory`](crate::Inventory)).
    pub sku: String,
    /// How many units.
    pub quantity: u32,
    /// The price of one unit, in minor units of the order's currency.
    pub unit_price: u64,
}

impl OrderLine {
    /// A line of `quantity` × `sku` at `unit_price` (minor units).
    pub fn new(sku: impl Into<String>, quantity: u32, unit_price: u64) -> Self {
        Self {
            sku: sku.into(),
            quantity,
            unit_price,
        }
    }

    /// What the line costs (saturating: [`OrderCommand::Place`] refuses totals that
    /// overflow, so a stored line never does).
    ///
    /// ```
    /// assert_eq!(orders::OrderLine::new("mouse", 3, 1990).amount(), 5970);
    /// ```
    pub fn amount(&self) -> u64 {
        self.unit_price.saturating_mul(u64::from(self.quantity))
    }
}

/// The sum of the lines' amounts (saturating).
pub fn total_of(lines: &[OrderLine]) -> u64 {
    lines.iter().fold(0u64, |t, l| t.saturating_add(l.amount()))
}

/// What happened to an order. Stored under the variant names; `OrderPlaced` is at schema
/// version 2, the others at 1.
///
/// `OrderPlaced` evolved: version 1, written while the shop sold in euros only, had no
/// currency and no total, and called the lines `items` (each with `qty` and `price`).
/// Stored version-1 events still load: the typed step reads them as [`OrderPlacedV1`] and
/// lifts them with `From`, in euros, with the total computed from the items (the golden
/// files under `examples/orders/tests/golden/order` pin what they become).
///
/// ```
/// use cqrs_core::prelude::*;
/// use orders::{Currency, OrderEvent, OrderLine};
///
/// let v1 = br#"{"customer":"Ada","items":[{"sku":"mouse","qty":2,"price":1990}]}"#;
/// let today = OrderEvent::decode_all(&JsonCodec, "OrderPlaced", 1, v1).unwrap();
/// assert_eq!(today, [OrderEvent::OrderPlaced {
///     customer: "Ada".into(),
///     lines: vec![OrderLine::new("mouse", 2, 1990)],
///     currency: Currency::Eur,
///     total: 3980,
/// }]);
/// ```
// ANCHOR: order_event
#[allow(clippy::enum_variant_names)] // `OrderPlaced`, `OrderConfirmed`…: the shop's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum OrderEvent {
    /// A customer placed the order.
    #[event(version = 2)]
    #[upcast(1 -> 2, from = OrderPlacedV1)]
    OrderPlaced {
        /// Who ordered.
        customer: String,
        /// What they ordered.
        lines: Vec<OrderLine>,
        /// The currency of the prices.
        currency: Currency,
        /// The sum of the lines, in minor units.
        total: u64,
    },
    /// Stock was reserved for one line.
    LineReserved {
        /// The line's SKU.
        sku: String,
        /// How many units were reserved.
        quantity: u32,
    },
    /// A payment covering the total was authorized for the order.
    PaymentSecured {
        /// The [`Payment`](crate::Payment) that holds the money.
        payment_id: String,
        /// The amount authorized.
        amount: u64,
    },
    /// Every line is reserved and the payment secured: the order will be fulfilled.
    OrderConfirmed,
    /// The order cannot be fulfilled (a line is out of stock).
    OrderRejected {
        /// Why.
        reason: String,
    },
    /// The customer cancelled the order before it shipped.
    OrderCancelled {
        /// Why.
        reason: String,
    },
    /// The order left the warehouse.
    OrderShipped {
        /// Who carries it.
        carrier: String,
    },
}
// ANCHOR_END: order_event

/// Version 1 of [`OrderEvent::OrderPlaced`], as it was stored while the shop sold in
/// euros only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderPlacedV1 {
    /// Who ordered.
    pub customer: String,
    /// What they ordered (today's `lines`).
    pub items: Vec<OrderItemV1>,
}

/// A line of [`OrderPlacedV1`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderItemV1 {
    /// The SKU.
    pub sku: String,
    /// How many units (today's `quantity`).
    pub qty: u32,
    /// The unit price in euro cents (today's `unit_price`).
    pub price: u64,
}

// ANCHOR: upcast
impl From<OrderPlacedV1> for OrderEvent {
    fn from(v1: OrderPlacedV1) -> Self {
        let lines: Vec<OrderLine> = v1
            .items
            .into_iter()
            .map(|i| OrderLine::new(i.sku, i.qty, i.price))
            .collect();
        OrderEvent::OrderPlaced {
            customer: v1.customer,
            total: total_of(&lines),
            lines,
            currency: Currency::Eur,
        }
    }
}
// ANCHOR_END: upcast

/// What an order can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Command)]
pub enum OrderCommand {
    /// Places the order (a customer at the checkout).
    Place {
        /// Who orders.
        customer: String,
        /// What: at least one line, each SKU once, each quantity above zero.
        lines: Vec<OrderLine>,
        /// The currency of the prices.
        currency: Currency,
    },
    /// Records that stock is reserved for the line of `sku` (the fulfilment process).
    RecordReservation {
        /// The line's SKU.
        sku: String,
        /// How many units were reserved: the line's quantity.
        quantity: u32,
    },
    /// Records an authorized payment for the order (the fulfilment process).
    RecordPayment {
        /// The payment.
        payment_id: String,
        /// The amount authorized: the order's total.
        amount: u64,
    },
    /// Rejects a pending order (the fulfilment process, when a line is out of stock).
    Reject {
        /// Why.
        reason: String,
    },
    /// Cancels an order that has not shipped (the customer).
    Cancel {
        /// Why.
        reason: String,
    },
    /// Ships a confirmed order (the warehouse).
    Ship {
        /// Who carries it.
        carrier: String,
    },
}

/// Why an order refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `Place` on an order that exists.
    #[error("the order is already placed")]
    AlreadyPlaced,
    /// `Place` without lines.
    #[error("an order needs at least one line")]
    NoLines,
    /// `Place` with a line of zero units.
    #[error("the line of `{sku}` orders no units")]
    ZeroQuantity {
        /// The line's SKU.
        sku: String,
    },
    /// `Place` with two lines of one SKU.
    #[error("`{sku}` appears on two lines: order it on one")]
    DuplicateSku {
        /// The SKU.
        sku: String,
    },
    /// `Place` with a total too large to represent.
    #[error("the order's total overflows")]
    TotalOverflow,
    /// A command on an order that was never placed.
    #[error("the order has not been placed")]
    NotPlaced,
    /// A command that needs a pending order.
    #[error("the order is {status}, not pending")]
    NotPending {
        /// Where the order stands.
        status: OrderStatus,
    },
    /// A reservation for a SKU the order does not have, or for another quantity.
    #[error("the order has no line of {quantity} × `{sku}`")]
    NoSuchLine {
        /// The SKU reported.
        sku: String,
        /// The quantity reported.
        quantity: u32,
    },
    /// A payment that does not cover the total exactly.
    #[error("the payment of {amount} does not match the total of {total}")]
    AmountMismatch {
        /// The order's total.
        total: u64,
        /// The amount authorized.
        amount: u64,
    },
    /// A second payment.
    #[error("the order is already paid by `{payment_id}`")]
    AlreadyPaid {
        /// The payment recorded first.
        payment_id: String,
    },
    /// `Cancel` on an order that shipped, or that is already rejected or cancelled.
    #[error("a {status} order cannot be cancelled")]
    NotCancellable {
        /// Where the order stands.
        status: OrderStatus,
    },
    /// `Ship` on an order that is not confirmed.
    #[error("only a confirmed order ships; this one is {status}")]
    NotConfirmed {
        /// Where the order stands.
        status: OrderStatus,
    },
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Not placed yet.
    #[default]
    New,
    /// Placed; waiting for stock and payment.
    Pending,
    /// Stock reserved and payment secured.
    Confirmed,
    /// Shipped to the customer.
    Shipped,
    /// Refused (out of stock).
    Rejected,
    /// Cancelled by the customer.
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrderStatus::New => "new",
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
        })
    }
}

// ANCHOR: order_rules
/// An order: the fold of its events. Its stream ids are `Order-<id>`.
///
/// Its rules are invariants, checked after every event by the scenarios and property
/// tests, and enforced by the runtime (`enforce_invariants`): a command whose events
/// would break one is refused before anything is written.
#[derive(Debug, Default, Clone, PartialEq, Eq, Aggregate)]
#[aggregate(
    command = OrderCommand,
    event = OrderEvent,
    error = OrderError,
    enforce_invariants
)]
#[invariant(
    total_is_the_sum_of_the_lines,
    "an order's total is the sum of its lines"
)]
#[invariant(
    when = [OrderConfirmed, OrderShipped],
    shall = is_reserved_and_paid,
    "when an order is confirmed or shipped, stock is reserved for every line and a payment covers its total"
)]
// ANCHOR_END: order_rules
pub struct Order {
    /// Where the order stands.
    pub status: OrderStatus,
    /// Who ordered.
    pub customer: String,
    /// What they ordered.
    pub lines: Vec<OrderLine>,
    /// The currency of the prices.
    pub currency: Currency,
    /// The sum of the lines.
    pub total: u64,
    /// The SKUs whose stock is reserved.
    pub reserved: BTreeSet<String>,
    /// The payment secured for the order, if any.
    pub payment_id: Option<String>,
    /// The amount that payment authorized.
    pub paid: u64,
}

impl Order {
    /// Invariant: the total is the sum of the lines.
    pub fn total_is_the_sum_of_the_lines(&self) -> bool {
        self.total == total_of(&self.lines)
    }

    /// Invariant (when confirmed or shipped): every line reserved, the total paid.
    pub fn is_reserved_and_paid(&self) -> bool {
        self.all_lines_reserved() && self.payment_id.is_some() && self.paid == self.total
    }

    /// Whether stock is reserved for every line.
    pub fn all_lines_reserved(&self) -> bool {
        self.lines.iter().all(|l| self.reserved.contains(&l.sku))
    }

    /// The order's total with its currency, for display.
    pub fn total_money(&self) -> Money {
        Money(self.total, self.currency)
    }

    fn pending(&self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Pending => Ok(()),
            OrderStatus::New => Err(OrderError::NotPlaced),
            status => Err(OrderError::NotPending { status }),
        }
    }

    /// `event`, followed by `OrderConfirmed` if it is the last fact the order waited for.
    fn then_confirm_if_ready(&self, event: OrderEvent) -> Vec<OrderEvent> {
        let mut next = self.clone();
        next.apply(&event);
        if next.is_reserved_and_paid() {
            vec![event, OrderEvent::OrderConfirmed]
        } else {
            vec![event]
        }
    }
}

#[aggregate_impl]
impl Order {
    #[handle]
    fn place(
        &self,
        customer: String,
        lines: Vec<OrderLine>,
        currency: Currency,
    ) -> Result<OrderEvent, OrderError> {
        if self.status != OrderStatus::New {
            return Err(OrderError::AlreadyPlaced);
        }
        if lines.is_empty() {
            return Err(OrderError::NoLines);
        }
        let mut skus = BTreeSet::new();
        let mut total = 0u64;
        for line in &lines {
            if line.quantity == 0 {
                return Err(OrderError::ZeroQuantity {
                    sku: line.sku.clone(),
                });
            }
            if !skus.insert(line.sku.as_str()) {
                return Err(OrderError::DuplicateSku {
                    sku: line.sku.clone(),
                });
            }
            total = line
                .unit_price
                .checked_mul(u64::from(line.quantity))
                .and_then(|amount| total.checked_add(amount))
                .ok_or(OrderError::TotalOverflow)?;
        }
        Ok(OrderEvent::OrderPlaced {
            customer,
            lines,
            currency,
            total,
        })
    }

    #[handle]
    fn record_reservation(
        &self,
        sku: String,
        quantity: u32,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.pending()?;
        if !self
            .lines
            .iter()
            .any(|l| l.sku == sku && l.quantity == quantity)
        {
            return Err(OrderError::NoSuchLine { sku, quantity });
        }
        if self.reserved.contains(&sku) {
            return Ok(Vec::new()); // reported twice: nothing new
        }
        Ok(self.then_confirm_if_ready(OrderEvent::LineReserved { sku, quantity }))
    }

    #[handle]
    fn record_payment(
        &self,
        payment_id: String,
        amount: u64,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        self.pending()?;
        match &self.payment_id {
            Some(paid_by) if *paid_by == payment_id => return Ok(Vec::new()),
            Some(paid_by) => {
                return Err(OrderError::AlreadyPaid {
                    payment_id: paid_by.clone(),
                });
            }
            None => {}
        }
        if amount != self.total {
            return Err(OrderError::AmountMismatch {
                total: self.total,
                amount,
            });
        }
        Ok(self.then_confirm_if_ready(OrderEvent::PaymentSecured { payment_id, amount }))
    }

    #[handle]
    fn reject(&self, reason: String) -> Result<OrderEvent, OrderError> {
        self.pending()?;
        Ok(OrderEvent::OrderRejected { reason })
    }

    #[handle]
    fn cancel(&self, reason: String) -> Result<OrderEvent, OrderError> {
        match self.status {
            OrderStatus::New => Err(OrderError::NotPlaced),
            OrderStatus::Pending | OrderStatus::Confirmed => {
                Ok(OrderEvent::OrderCancelled { reason })
            }
            status => Err(OrderError::NotCancellable { status }),
        }
    }

    #[handle]
    fn ship(&self, carrier: String) -> Result<OrderEvent, OrderError> {
        match self.status {
            OrderStatus::Confirmed => Ok(OrderEvent::OrderShipped { carrier }),
            OrderStatus::New => Err(OrderError::NotPlaced),
            status => Err(OrderError::NotConfirmed { status }),
        }
    }

    #[apply]
    fn order_placed(
        &mut self,
        customer: &str,
        lines: &[OrderLine],
        currency: &Currency,
        total: &u64,
    ) {
        self.status = OrderStatus::Pending;
        self.customer = customer.to_owned();
        self.lines = lines.to_vec();
        self.currency = *currency;
        self.total = *total;
    }

    #[apply]
    fn line_reserved(&mut self, sku: &str) {
        self.reserved.insert(sku.to_owned());
    }

    #[apply]
    fn payment_secured(&mut self, payment_id: &str, amount: &u64) {
        self.payment_id = Some(payment_id.to_owned());
        self.paid = *amount;
    }

    #[apply]
    fn order_confirmed(&mut self) {
        self.status = OrderStatus::Confirmed;
    }

    #[apply]
    fn order_rejected(&mut self) {
        self.status = OrderStatus::Rejected;
    }

    #[apply]
    fn order_cancelled(&mut self) {
        self.status = OrderStatus::Cancelled;
    }

    #[apply]
    fn order_shipped(&mut self) {
        self.status = OrderStatus::Shipped;
    }
}
