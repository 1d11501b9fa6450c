//! The fulfilment process manager: it turns a placed order into reserved stock, a
//! confirmed order and captured money, and undoes what it did when an order is rejected
//! or cancelled.
//!
//! | when it reads | it does |
//! |---|---|
//! | `OrderPlaced` | reserves stock for each line; a line out of stock rejects the order |
//! | `StockReserved` | records the reservation on the order (which may confirm it) |
//! | `PaymentAuthorized` | records the payment on the order (which may confirm it); voids the payment if the order refuses it |
//! | `OrderConfirmed` | captures the payment |
//! | `OrderShipped` | dispatches the reserved stock |
//! | `OrderRejected`, `OrderCancelled` | releases the stock; voids the payment, or refunds it if captured |
//!
//! Every command it issues goes through [`SagaContext::execute`], so it carries the
//! triggering event's correlation id and, as causation id, the triggering event's id,
//! with the actor `process-manager:fulfilment`. That also makes redelivery harmless: a
//! command whose target stream already holds an event caused by the same trigger is not
//! issued again.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::projection::SagaRunner;
//! use orders::{Currency, Fulfilment, Inventory, InventoryCommand, Order, OrderCommand, OrderLine, OrderStatus, Payment};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = InMemoryEventStore::new();
//! let orders = Cqrs::<Order>::builder(store.clone()).build();
//! let payments = Cqrs::<Payment>::builder(store.clone()).build();
//! let inventory = Cqrs::<Inventory>::builder(store.clone()).build();
//! let saga = SagaRunner::new(store.clone(), Fulfilment::new(orders.clone(), payments, inventory.clone()));
//!
//! inventory.execute("mouse", InventoryCommand::Restock { quantity: 1 }).await.unwrap();
//! let lines = vec![OrderLine::new("mouse", 2, 1990)];
//! let place = OrderCommand::Place { customer: "Ada".into(), lines, currency: Currency::Eur };
//! orders.execute("o-1", place).await.unwrap();
//! saga.catch_up().await.unwrap();
//!
//! let order = orders.load("o-1").await.unwrap().state;
//! assert_eq!(order.status, OrderStatus::Rejected);
//! # });
//! ```

use std::fmt::Display;

use cqrs_core::prelude::*;
use cqrs_core::projection::{ProcessManager, ProjectionError, SagaContext, aggregate_id};

use crate::inventory::{Inventory, InventoryCommand, InventoryError, InventoryEvent};
use crate::order::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus};
use crate::payment::{Payment, PaymentCommand, PaymentEvent, PaymentStatus};

/// The fulfilment process manager (see the [module docs](self)); run it with a
/// [`SagaRunner`](cqrs_core::projection::SagaRunner).
#[derive(Clone)]
pub struct Fulfilment {
    orders: Cqrs<Order>,
    payments: Cqrs<Payment>,
    inventory: Cqrs<Inventory>,
}

impl Fulfilment {
    /// Its name: its checkpoint, its dead letters, and the actor of its commands
    /// (`process-manager:fulfilment`).
    pub const NAME: &'static str = "fulfilment";

    /// The process over the runtimes it issues commands through.
    pub fn new(orders: Cqrs<Order>, payments: Cqrs<Payment>, inventory: Cqrs<Inventory>) -> Self {
        Self {
            orders,
            payments,
            inventory,
        }
    }

    async fn on_order(
        &self,
        order_id: &str,
        event: OrderEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        match event {
            OrderEvent::OrderPlaced { lines, .. } => {
                // Redelivered after the order was rejected or cancelled: reserve nothing.
                if self.order(order_id).await?.status != OrderStatus::Pending {
                    return Ok(());
                }
                for line in lines {
                    let reserve = InventoryCommand::Reserve {
                        order_id: order_id.to_owned(),
                        quantity: line.quantity,
                    };
                    match ctx.execute(&self.inventory, &line.sku, reserve).await {
                        Ok(_) => {}
                        Err(CommandError::Rejected(why @ InventoryError::OutOfStock { .. })) => {
                            let reason = format!("`{}` {why}", line.sku);
                            let reject = OrderCommand::Reject { reason };
                            return match ctx.execute(&self.orders, order_id, reject).await {
                                // Cancelled meanwhile: that releases the stock too.
                                Ok(_)
                                | Err(CommandError::Rejected(OrderError::NotPending { .. })) => {
                                    Ok(())
                                }
                                Err(e) => Err(failed(e)),
                            };
                        }
                        Err(e) => return Err(failed(e)),
                    }
                }
                Ok(())
            }
            OrderEvent::OrderConfirmed => {
                let order = self.order(order_id).await?;
                // Cancelled since: the cancellation voids the payment instead.
                if !matches!(order.status, OrderStatus::Confirmed | OrderStatus::Shipped) {
                    return Ok(());
                }
                let payment_id = order
                    .payment_id
                    .ok_or_else(|| failed(format!("order `{order_id}` confirmed unpaid")))?;
                let capture = PaymentCommand::Capture {
                    amount: order.total,
                };
                ctx.execute(&self.payments, &payment_id, capture)
                    .await
                    .map(drop)
                    .map_err(failed)
            }
            OrderEvent::OrderShipped { .. } => {
                for line in self.order(order_id).await?.lines {
                    let dispatch = InventoryCommand::Dispatch {
                        order_id: order_id.to_owned(),
                    };
                    ctx.execute(&self.inventory, &line.sku, dispatch)
                        .await
                        .map_err(failed)?;
                }
                Ok(())
            }
            OrderEvent::OrderRejected { reason } | OrderEvent::OrderCancelled { reason } => {
                let order = self.order(order_id).await?;
                for line in &order.lines {
                    let release = InventoryCommand::Release {
                        order_id: order_id.to_owned(),
                    };
                    ctx.execute(&self.inventory, &line.sku, release)
                        .await
                        .map_err(failed)?;
                }
                let Some(payment_id) = order.payment_id else {
                    return Ok(());
                };
                let payment = self.payments.load(&payment_id).await.map_err(failed)?.state;
                let command = match payment.status {
                    PaymentStatus::Authorized => PaymentCommand::Void { reason },
                    PaymentStatus::Captured => PaymentCommand::Refund {
                        amount: payment.captured.saturating_sub(payment.refunded),
                        reason,
                    },
                    _ => return Ok(()),
                };
                ctx.execute(&self.payments, &payment_id, command)
                    .await
                    .map(drop)
                    .map_err(failed)
            }
            OrderEvent::LineReserved { .. } | OrderEvent::PaymentSecured { .. } => Ok(()),
        }
    }

    async fn on_payment(
        &self,
        payment_id: &str,
        event: PaymentEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        let PaymentEvent::PaymentAuthorized {
            order_id, amount, ..
        } = event
        else {
            return Ok(());
        };
        let record = OrderCommand::RecordPayment {
            payment_id: payment_id.to_owned(),
            amount,
        };
        match ctx.execute(&self.orders, &order_id, record).await {
            Ok(_) => Ok(()),
            // The order will not take it (rejected, cancelled, another amount): give the
            // money back to the customer.
            Err(CommandError::Rejected(why)) => {
                let void = PaymentCommand::Void {
                    reason: format!("order `{order_id}` refused it: {why}"),
                };
                ctx.execute(&self.payments, payment_id, void)
                    .await
                    .map(drop)
                    .map_err(failed)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn on_inventory(
        &self,
        sku: &str,
        event: InventoryEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        let InventoryEvent::StockReserved { order_id, quantity } = event else {
            return Ok(());
        };
        let record = OrderCommand::RecordReservation {
            sku: sku.to_owned(),
            quantity,
        };
        match ctx.execute(&self.orders, &order_id, record).await {
            // Rejected or cancelled meanwhile: reacting to that event releases the stock.
            Ok(_) | Err(CommandError::Rejected(OrderError::NotPending { .. })) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn order(&self, order_id: &str) -> Result<Order, ProjectionError> {
        Ok(self.orders.load(order_id).await.map_err(failed)?.state)
    }
}

fn failed(e: impl Display) -> ProjectionError {
    ProjectionError::Handler(e.to_string())
}

// ANCHOR: react
#[cqrs_core::async_trait]
impl ProcessManager for Fulfilment {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(
            &*event.event_type,
            "OrderPlaced"
                | "OrderConfirmed"
                | "OrderShipped"
                | "OrderRejected"
                | "OrderCancelled"
                | "PaymentAuthorized"
                | "StockReserved"
        )
    }

    async fn react(
        &self,
        event: &RecordedEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        let id = aggregate_id(&event.stream_id);
        let stream_of = |type_name: &str| {
            event
                .stream_id
                .strip_prefix(type_name)
                .is_some_and(|rest| rest.starts_with('-'))
        };
        if stream_of(Order::TYPE_NAME) {
            for e in event.decode::<OrderEvent, _>(self.orders.codec())? {
                self.on_order(id, e, ctx).await?;
            }
        } else if stream_of(Payment::TYPE_NAME) {
            for e in event.decode::<PaymentEvent, _>(self.payments.codec())? {
                self.on_payment(id, e, ctx).await?;
            }
        } else if stream_of(Inventory::TYPE_NAME) {
            for e in event.decode::<InventoryEvent, _>(self.inventory.codec())? {
                self.on_inventory(id, e, ctx).await?;
            }
        }
        Ok(())
    }
}
// ANCHOR_END: react
