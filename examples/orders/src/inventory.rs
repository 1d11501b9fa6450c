//! The `Inventory` aggregate: the stock of one SKU, and who has a claim on it.
//!
//! Units *on hand* are in the warehouse; some of them are *reserved* for orders that are
//! not shipped yet. A reservation is released when its order is rejected or cancelled, and
//! dispatched (leaves the warehouse) when it ships. One stream per SKU:
//! `Inventory-<sku>`.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use orders::{Inventory, InventoryCommand, InventoryError};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let stock = Cqrs::<Inventory>::builder(InMemoryEventStore::new()).build();
//! stock.execute("mouse", InventoryCommand::Restock { quantity: 3 }).await.unwrap();
//! let reserve = |order: &str, quantity| InventoryCommand::Reserve { order_id: order.into(), quantity };
//! stock.execute("mouse", reserve("o-1", 2)).await.unwrap();
//! let err = stock.execute("mouse", reserve("o-2", 2)).await.unwrap_err();
//! assert_eq!(err.rejection(), Some(&InventoryError::OutOfStock { available: 1, requested: 2 }));
//! # });
//! ```

use std::collections::BTreeMap;

use cqrs_core::prelude::*;

/// What happened to the stock of a SKU. Stored under the variant names, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub enum InventoryEvent {
    /// Units arrived in the warehouse.
    Restocked {
        /// How many.
        quantity: u32,
    },
    /// Units were set aside for an order.
    StockReserved {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
    /// An order's reservation was given back (the order was rejected or cancelled).
    StockReleased {
        /// The order.
        order_id: String,
        /// How many units it had reserved.
        quantity: u32,
    },
    /// An order's reserved units left the warehouse (the order shipped).
    StockDispatched {
        /// The order.
        order_id: String,
        /// How many.
        quantity: u32,
    },
}

/// What the stock of a SKU can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Command)]
pub enum InventoryCommand {
    /// Adds units to the stock on hand (the warehouse).
    Restock {
        /// How many, above zero.
        quantity: u32,
    },
    /// Reserves units for an order, if that many are available (the fulfilment process).
    Reserve {
        /// The order.
        order_id: String,
        /// How many, above zero.
        quantity: u32,
    },
    /// Gives an order's reservation back; nothing happens if it has none (the
    /// fulfilment process, when the order is rejected or cancelled).
    Release {
        /// The order.
        order_id: String,
    },
    /// Sends an order's reserved units out (the fulfilment process, when it ships).
    Dispatch {
        /// The order.
        order_id: String,
    },
}

/// Why the stock of a SKU refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// A quantity of zero.
    #[error("the quantity must be above zero")]
    ZeroQuantity,
    /// Not enough units are available (on hand and not reserved).
    #[error("out of stock: {available} available, {requested} requested")]
    OutOfStock {
        /// Units available.
        available: u32,
        /// Units asked for.
        requested: u32,
    },
    /// A second reservation for the same order.
    #[error("order `{order_id}` already has a reservation")]
    AlreadyReserved {
        /// The order.
        order_id: String,
    },
    /// `Dispatch` for an order without a reservation.
    #[error("order `{order_id}` has no reservation")]
    NoReservation {
        /// The order.
        order_id: String,
    },
    /// A restock beyond what the counters hold.
    #[error("the stock on hand would overflow")]
    Overflow,
}

/// The stock of one SKU: the fold of its events.
#[derive(Debug, Default, Clone, PartialEq, Eq, Aggregate)]
#[aggregate(
    command = InventoryCommand,
    event = InventoryEvent,
    error = InventoryError,
    enforce_invariants
)]
#[invariant(
    reserved_within_on_hand,
    "a SKU never has more units reserved than on hand"
)]
pub struct Inventory {
    /// Units in the warehouse.
    pub on_hand: u32,
    /// The units reserved, per order.
    pub reservations: BTreeMap<String, u32>,
}

impl Inventory {
    /// Units reserved for all orders together.
    pub fn reserved(&self) -> u32 {
        self.reservations
            .values()
            .fold(0u32, |sum, q| sum.saturating_add(*q))
    }

    /// Units that can still be reserved.
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved())
    }

    /// Invariant: reserved ≤ on hand.
    pub fn reserved_within_on_hand(&self) -> bool {
        self.reserved() <= self.on_hand
    }
}

#[aggregate_impl]
impl Inventory {
    #[handle]
    fn restock(&self, quantity: u32) -> Result<InventoryEvent, InventoryError> {
        if quantity == 0 {
            return Err(InventoryError::ZeroQuantity);
        }
        self.on_hand
            .checked_add(quantity)
            .ok_or(InventoryError::Overflow)?;
        Ok(InventoryEvent::Restocked { quantity })
    }

    #[handle]
    fn reserve(&self, order_id: String, quantity: u32) -> Result<InventoryEvent, InventoryError> {
        if quantity == 0 {
            return Err(InventoryError::ZeroQuantity);
        }
        if self.reservations.contains_key(&order_id) {
            return Err(InventoryError::AlreadyReserved { order_id });
        }
        let available = self.available();
        if quantity > available {
            return Err(InventoryError::OutOfStock {
                available,
                requested: quantity,
            });
        }
        Ok(InventoryEvent::StockReserved { order_id, quantity })
    }

    #[handle]
    fn release(&self, order_id: String) -> Option<InventoryEvent> {
        let quantity = *self.reservations.get(&order_id)?;
        Some(InventoryEvent::StockReleased { order_id, quantity })
    }

    #[handle]
    fn dispatch(&self, order_id: String) -> Result<InventoryEvent, InventoryError> {
        match self.reservations.get(&order_id) {
            Some(&quantity) => Ok(InventoryEvent::StockDispatched { order_id, quantity }),
            None => Err(InventoryError::NoReservation { order_id }),
        }
    }

    #[apply]
    fn restocked(&mut self, quantity: &u32) {
        self.on_hand = self.on_hand.saturating_add(*quantity);
    }

    #[apply]
    fn stock_reserved(&mut self, order_id: &str, quantity: &u32) {
        self.reservations.insert(order_id.to_owned(), *quantity);
    }

    #[apply]
    fn stock_released(&mut self, order_id: &str) {
        self.reservations.remove(order_id);
    }

    #[apply]
    fn stock_dispatched(&mut self, order_id: &str, quantity: &u32) {
        self.reservations.remove(order_id);
        self.on_hand = self.on_hand.saturating_sub(*quantity);
    }
}
