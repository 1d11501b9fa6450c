//! The shop wired together: the three aggregates' runtimes on one store, the checkout,
//! and a way to let the fulfilment process catch up.

use std::time::Duration;

use cqrs_core::StoreError;
use cqrs_core::prelude::*;
use cqrs_core::projection::{SagaRunner, ViewProjection, ViewStore};

use crate::fulfilment::Fulfilment;
use crate::inventory::Inventory;
use crate::money::Currency;
use crate::order::{Order, OrderCommand, OrderEvent, OrderLine};
use crate::payment::{Payment, PaymentCommand};
use crate::views::StockLevel;

/// A boxed error: what the shop's set-up and demo return.
pub type ShopError = Box<dyn std::error::Error + Send + Sync>;

/// The runtimes of the shop's aggregates over one store. The inventory keeps the
/// [`StockLevel`] read model inline.
#[derive(Clone)]
pub struct Shop {
    /// Orders: `Order-<id>` streams.
    pub orders: Cqrs<Order>,
    /// Payments: `Payment-<id>` streams.
    pub payments: Cqrs<Payment>,
    /// Stock per SKU: `Inventory-<sku>` streams.
    pub inventory: Cqrs<Inventory>,
}

/// What a checkout committed: the order placed and its payment authorized.
#[derive(Debug, Clone)]
pub struct Checkout {
    /// The `OrderPlaced` event, as stored.
    pub placed: EventEnvelope<OrderEvent>,
    /// The payment's id.
    pub payment_id: String,
}

impl Shop {
    /// The shop on `store` (any store that keeps views: in memory, SQLite, PostgreSQL).
    pub fn new<S: EventStore + Clone>(store: &S) -> Self {
        Self {
            orders: Cqrs::<Order>::builder(store.clone()).build(),
            payments: Cqrs::<Payment>::builder(store.clone()).build(),
            inventory: Cqrs::<Inventory>::builder(store.clone())
                .inline_projection(ViewProjection::<StockLevel>::new())
                .build(),
        }
    }

    /// The fulfilment process manager over these runtimes.
    pub fn fulfilment(&self) -> Fulfilment {
        Fulfilment::new(
            self.orders.clone(),
            self.payments.clone(),
            self.inventory.clone(),
        )
    }

    /// A customer's checkout: places order `order_id` (actor `customer:<name>`), then has
    /// the card issuer authorize its total as payment `payment_id` (actor `checkout`).
    /// The authorization is correlated with the order and caused by its `OrderPlaced`,
    /// so both belong to one causation chain.
    pub async fn checkout(
        &self,
        order_id: &str,
        customer: &str,
        lines: Vec<OrderLine>,
        currency: Currency,
        payment_id: &str,
    ) -> Result<Checkout, ShopError> {
        let place = OrderCommand::Place {
            customer: customer.to_owned(),
            lines,
            currency,
        };
        let as_customer = Metadata::default().with_actor(format!("customer:{customer}"));
        let done = self
            .orders
            .execute_with(order_id, place, as_customer)
            .await?;
        let placed = done
            .events
            .into_iter()
            .next()
            .ok_or("placing an order committed no event")?;
        let OrderEvent::OrderPlaced { total, .. } = &placed.event else {
            return Err(format!("placing an order committed {:?}", placed.event).into());
        };
        let authorize = PaymentCommand::Authorize {
            order_id: order_id.to_owned(),
            amount: *total,
            currency,
        };
        let in_reply = Metadata::default()
            .with_correlation_id(placed.event_id)
            .with_causation_id(placed.event_id)
            .with_actor("checkout");
        self.payments
            .execute_with(payment_id, authorize, in_reply)
            .await?;
        Ok(Checkout {
            placed,
            payment_id: payment_id.to_owned(),
        })
    }
}

/// The position of the last event committed through `store` (or a clone of it).
///
/// The commit notifier knows it even when PostgreSQL still holds the event back from
/// readers of the global log (a transaction elsewhere in the cluster that is still open);
/// without a notifier, the head of the log.
pub async fn committed_head<S: EventStore>(store: &S) -> Result<u64, StoreError> {
    match store.commit_notifier() {
        Some(head) => Ok(*head.borrow()),
        None => store.head_position().await,
    }
}

/// Runs `saga` until it has reacted to every event committed through `store`, including
/// the events its own reactions committed, and returns its checkpoint.
///
/// On PostgreSQL a reader may see the newest events only after a moment (see
/// [`committed_head`]); it tries again for up to `patience`, then fails.
pub async fn settle<S: EventStore + ViewStore>(
    saga: &SagaRunner,
    store: &S,
    name: &str,
    patience: Duration,
) -> Result<u64, ShopError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        saga.catch_up().await?;
        let head = committed_head(store).await?;
        let reached = store.projection_state(name).await?.position;
        if reached >= head {
            return Ok(reached);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "process manager `{name}` reached position {reached} of {head} in {patience:?}"
            )
            .into());
        }
        // Held back by another transaction: give it a moment before reading again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every event of the global log from position `from` on, paging through it.
pub async fn read_log_from<S: EventStore>(
    store: &S,
    from: u64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const PAGE: usize = 512;
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut next = from;
    loop {
        let page = store.read_all(next, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(events);
        };
        next = last.position + 1;
        let full = page.len() == PAGE;
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}
