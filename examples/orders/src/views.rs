//! The read models: what the shop's pages show, kept up to date from the events.
//!
//! * [`OrderSummary`]: one document per order, from the events of **two** aggregates
//!   (orders and payments), run *asynchronously* by a
//!   [`ProjectionRunner`](cqrs_core::projection::ProjectionRunner): the order page may lag
//!   the command by a moment, and asks for read-your-writes with `wait_for` when it must.
//! * [`StockLevel`]: one document per SKU, run *inline*
//!   ([`CqrsBuilder::inline_projection`](cqrs_core::CqrsBuilder::inline_projection)):
//!   changed in the same transaction as the inventory's events, so the stock page never
//!   shows a unit the warehouse no longer has.

use cqrs_core::prelude::*;
use cqrs_core::projection::{ProjectionError, aggregate_id};

use crate::inventory::InventoryEvent;
use crate::money::{Currency, Money};
use crate::order::{Order, OrderEvent, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentEvent, PaymentStatus};

/// The order page: an order with its payment, keyed by order id.
///
/// Payment events are keyed by the order they name (see [`order_key`]), so one document
/// gathers an order's events and its payment's.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::projection::{ProjectionRunner, ViewProjection, ViewStoreExt};
/// use orders::{Currency, Order, OrderCommand, OrderLine, OrderSummary};
///
/// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let orders = Cqrs::<Order>::builder(store.clone()).build();
/// let summaries = ProjectionRunner::new(store.clone(), ViewProjection::<OrderSummary>::new()).spawn();
///
/// let lines = vec![OrderLine::new("mouse", 2, 1990)];
/// let place = OrderCommand::Place { customer: "Ada".into(), lines, currency: Currency::Eur };
/// let done = orders.execute("o-1", place).await.unwrap();
/// summaries.wait_for(done.events[0].position, std::time::Duration::from_secs(10)).await.unwrap();
///
/// let summary = store.get::<OrderSummary>("o-1").await.unwrap().unwrap();
/// assert_eq!((summary.customer.as_str(), summary.items, summary.total), ("Ada", 2, 3980));
/// # summaries.stop().await.unwrap();
/// # });
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// Who ordered.
    pub customer: String,
    /// Where the order stands.
    pub status: OrderStatus,
    /// How many units it orders, over all lines.
    pub items: u32,
    /// Its total, in minor units.
    pub total: u64,
    /// The currency.
    pub currency: Currency,
    /// Where its payment stands.
    pub payment: PaymentStatus,
    /// The money captured.
    pub captured: u64,
    /// The money refunded.
    pub refunded: u64,
    /// Why it was rejected or cancelled, or who carries it.
    pub note: Option<String>,
}

/// The document key of an event of [`OrderSummary`]: the order id, the aggregate id of an
/// order's event and the `order_id` a payment's event names.
///
/// It depends only on the stream id and the payload, as a key must (the PostgreSQL store
/// computes keys before the append).
pub fn order_key(event: &RecordedEvent) -> Result<String, ProjectionError> {
    let id = aggregate_id(&event.stream_id);
    if event.stream_id.starts_with(&Order::stream_id("")) {
        return Ok(id.to_owned());
    }
    if event.stream_id.starts_with(&Payment::stream_id("")) {
        let decoded = event.decode::<PaymentEvent, _>(&JsonCodec)?;
        return match decoded.first() {
            Some(
                PaymentEvent::PaymentAuthorized { order_id, .. }
                | PaymentEvent::PaymentCaptured { order_id, .. }
                | PaymentEvent::PaymentVoided { order_id, .. }
                | PaymentEvent::PaymentRefunded { order_id, .. },
            ) => Ok(order_id.clone()),
            None => Err(ProjectionError::Handler(format!(
                "payment event at position {} decodes to nothing",
                event.position
            ))),
        };
    }
    Err(ProjectionError::Handler(format!(
        "order_summary reads orders and payments, not `{}`",
        event.stream_id
    )))
}

// ANCHOR: order_summary
#[projection(name = "order_summary", key = order_key)]
impl OrderSummary {
    #[on(OrderEvent::OrderPlaced)]
    fn placed(&mut self, customer: &str, lines: &[OrderLine], currency: &Currency, total: &u64) {
        self.customer = customer.to_owned();
        self.status = OrderStatus::Pending;
        self.items = lines.iter().fold(0u32, |n, l| n.saturating_add(l.quantity));
        self.total = *total;
        self.currency = *currency;
    }

    #[on(OrderEvent::OrderConfirmed)]
    fn confirmed(&mut self) {
        self.status = OrderStatus::Confirmed;
    }

    #[on(OrderEvent::OrderRejected)]
    fn rejected(&mut self, reason: &str) {
        self.status = OrderStatus::Rejected;
        self.note = Some(reason.to_owned());
    }

    #[on(OrderEvent::OrderCancelled)]
    fn cancelled(&mut self, reason: &str) {
        self.status = OrderStatus::Cancelled;
        self.note = Some(reason.to_owned());
    }

    #[on(OrderEvent::OrderShipped)]
    fn shipped(&mut self, carrier: &str) {
        self.status = OrderStatus::Shipped;
        self.note = Some(format!("via {carrier}"));
    }

    #[on(PaymentEvent::PaymentAuthorized)]
    fn payment_authorized(&mut self) {
        self.payment = PaymentStatus::Authorized;
    }

    #[on(PaymentEvent::PaymentCaptured)]
    fn payment_captured(&mut self, amount: &u64) {
        self.payment = PaymentStatus::Captured;
        self.captured = self.captured.saturating_add(*amount);
    }

    #[on(PaymentEvent::PaymentVoided)]
    fn payment_voided(&mut self) {
        self.payment = PaymentStatus::Voided;
    }

    #[on(PaymentEvent::PaymentRefunded)]
    fn payment_refunded(&mut self, amount: &u64) {
        self.refunded = self.refunded.saturating_add(*amount);
        if self.refunded >= self.captured {
            self.payment = PaymentStatus::Refunded;
        }
    }

    /// The total with its currency, for display.
    pub fn total_money(&self) -> Money {
        Money(self.total, self.currency)
    }
}
// ANCHOR_END: order_summary

/// The stock page: units on hand and reserved per SKU (the aggregate id of the
/// inventory's events), updated inline.
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::projection::{ViewProjection, ViewStoreExt};
/// use orders::{Inventory, InventoryCommand, StockLevel};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let stock = Cqrs::<Inventory>::builder(store.clone())
///     .inline_projection(ViewProjection::<StockLevel>::new())
///     .build();
/// stock.execute("mouse", InventoryCommand::Restock { quantity: 3 }).await.unwrap();
/// // Inline: the page shows the restock as soon as `execute` returns.
/// let level = store.get::<StockLevel>("mouse").await.unwrap().unwrap();
/// assert_eq!((level.on_hand, level.reserved, level.available()), (3, 0, 3));
/// # });
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// Units in the warehouse.
    pub on_hand: u32,
    /// Units reserved for orders not shipped yet.
    pub reserved: u32,
}

impl StockLevel {
    /// Units that can still be ordered.
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

#[projection(name = "stock_level")]
impl StockLevel {
    #[on(InventoryEvent::Restocked)]
    fn restocked(&mut self, quantity: &u32) {
        self.on_hand = self.on_hand.saturating_add(*quantity);
    }

    #[on(InventoryEvent::StockReserved)]
    fn reserved(&mut self, quantity: &u32) {
        self.reserved = self.reserved.saturating_add(*quantity);
    }

    #[on(InventoryEvent::StockReleased)]
    fn released(&mut self, quantity: &u32) {
        self.reserved = self.reserved.saturating_sub(*quantity);
    }

    #[on(InventoryEvent::StockDispatched)]
    fn dispatched(&mut self, quantity: &u32) {
        self.reserved = self.reserved.saturating_sub(*quantity);
        self.on_hand = self.on_hand.saturating_sub(*quantity);
    }
}
