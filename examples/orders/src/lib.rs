//! # The order system: an online shop, event-sourced
//!
//! A small shop sells keyboards, mice and monitors. Three aggregates keep its facts,
//! each the fold of its own event stream:
//!
//! | aggregate | stream | decides |
//! |---|---|---|
//! | [`Order`] | `Order-<id>` | what a customer bought; pending → confirmed → shipped, or rejected, or cancelled |
//! | [`Payment`] | `Payment-<id>` | money held for an order: authorized → captured → refunded, or voided |
//! | [`Inventory`] | `Inventory-<sku>` | the stock of one SKU: on hand, and reserved per order |
//!
//! No aggregate calls another. The [`Fulfilment`] process manager follows the global log
//! and connects them:
//!
//! 1. the checkout places an order (`OrderPlaced`) and has its payment authorized
//!    (`PaymentAuthorized`);
//! 2. on `OrderPlaced`, fulfilment reserves each line's stock (`StockReserved`), or, when
//!    a line is out of stock, rejects the order (`OrderRejected`);
//! 3. on `StockReserved` and `PaymentAuthorized`, it records the reservation and the
//!    payment on the order; the last fact in makes the order confirm itself
//!    (`OrderConfirmed`);
//! 4. on `OrderConfirmed` it captures the payment; on `OrderShipped` it dispatches the
//!    stock; on `OrderRejected` and `OrderCancelled` it releases the stock and voids the
//!    payment, or refunds it if it was captured.
//!
//! Every command the process issues carries the correlation id of the order's flow and,
//! as causation id, the event it answers, so the demo can print how an order came about.
//!
//! The shop's rules are **invariants** on the aggregates, checked by every scenario and
//! property test and enforced at run time (`enforce_invariants`):
//!
//! * an order's total is the sum of its lines; when an order is confirmed or shipped,
//!   stock is reserved for every line and a payment covers its total;
//! * a payment never captures more than was authorized, nor refunds more than it
//!   captured;
//! * a SKU never has more units reserved than on hand.
//!
//! Two **read models**: [`OrderSummary`] (the order page, from order *and* payment
//! events, keyed by order id; run asynchronously) and [`StockLevel`] (per SKU, run inline
//! in the inventory's appends).
//!
//! One event has **evolved**: `OrderPlaced` went to schema version 2 when the shop started
//! selling in several currencies; version-1 events (no currency, `items` with `qty` and
//! `price`) still load, through a typed upcast step ([`OrderPlacedV1`]) pinned by the
//! golden files in `tests/golden/order`.
//!
//! ## Running it
//!
//! `cargo run -p orders` runs [`run_demo`] on a fresh SQLite file in a temporary
//! directory, removed at the end. With `DATABASE_URL=postgres://…` (or
//! `--database-url postgres://…`) it runs on PostgreSQL instead, in a fresh schema
//! `orders_demo_<pid>_<nanos>` that it drops at the end.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::projection::SagaRunner;
//! use orders::{Currency, InventoryCommand, OrderLine, OrderStatus, Shop};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = InMemoryEventStore::new();
//! let shop = Shop::new(&store);
//! let saga = SagaRunner::new(store.clone(), shop.fulfilment());
//!
//! shop.inventory.execute("mouse", InventoryCommand::Restock { quantity: 5 }).await.unwrap();
//! let lines = vec![OrderLine::new("mouse", 2, 1990)];
//! shop.checkout("o-1", "Ada", lines, Currency::Eur, "pay-1").await.unwrap();
//! saga.catch_up().await.unwrap();
//!
//! assert_eq!(shop.orders.load("o-1").await.unwrap().state.status, OrderStatus::Confirmed);
//! assert_eq!(shop.payments.load("pay-1").await.unwrap().state.captured, 3980);
//! assert_eq!(shop.inventory.load("mouse").await.unwrap().state.available(), 3);
//! # });
//! ```

pub mod demo;
pub mod fulfilment;
pub mod inventory;
pub mod money;
pub mod order;
pub mod payment;
pub mod postgres;
pub mod shop;
pub mod views;

pub use demo::{ChainLink, DemoReport, causation_chain, describe, run_demo};
pub use fulfilment::Fulfilment;
pub use inventory::{Inventory, InventoryCommand, InventoryError, InventoryEvent};
pub use money::{Currency, Money};
pub use order::{
    Order, OrderCommand, OrderError, OrderEvent, OrderItemV1, OrderLine, OrderPlacedV1,
    OrderStatus, total_of,
};
pub use payment::{Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus};
pub use shop::{Checkout, Shop, ShopError, committed_head, read_log_from, settle};
pub use views::{OrderSummary, StockLevel, order_key};
