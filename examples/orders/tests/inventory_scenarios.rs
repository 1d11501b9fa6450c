//! The stock's rules, stated Given/When/Then.

use cqrs_core::Aggregate;
use cqrs_testing::prelude::*;
use orders::{Inventory, InventoryCommand, InventoryError, InventoryEvent};

fn restocked(quantity: u32) -> InventoryEvent {
    InventoryEvent::Restocked { quantity }
}

fn reserved(order_id: &str, quantity: u32) -> InventoryEvent {
    InventoryEvent::StockReserved {
        order_id: order_id.into(),
        quantity,
    }
}

fn reserve(order_id: &str, quantity: u32) -> InventoryCommand {
    InventoryCommand::Reserve {
        order_id: order_id.into(),
        quantity,
    }
}

#[test]
fn restocking_adds_units_on_hand() {
    Inventory::given([restocked(2)])
        .when(InventoryCommand::Restock { quantity: 3 })
        .then_events([restocked(3)])
        .then_state(|s| assert_eq!((s.on_hand, s.available()), (5, 5)));
    Inventory::given_no_events()
        .when(InventoryCommand::Restock { quantity: 0 })
        .then_error(InventoryError::ZeroQuantity);
    Inventory::given([restocked(u32::MAX)])
        .when(InventoryCommand::Restock { quantity: 1 })
        .then_error(InventoryError::Overflow);
}

#[test]
fn a_reservation_takes_available_units_only() {
    Inventory::given([restocked(3), reserved("o-1", 2)])
        .when(reserve("o-2", 1))
        .then_events([reserved("o-2", 1)])
        .then_state(|s| assert_eq!((s.reserved(), s.available()), (3, 0)));
    Inventory::given([restocked(3), reserved("o-1", 2)])
        .when(reserve("o-2", 2))
        .then_error(InventoryError::OutOfStock {
            available: 1,
            requested: 2,
        });
    Inventory::given_no_events()
        .when(reserve("o-1", 1))
        .then_error(InventoryError::OutOfStock {
            available: 0,
            requested: 1,
        });
}

#[test]
fn an_order_reserves_a_sku_once() {
    Inventory::given([restocked(9), reserved("o-1", 2)])
        .when(reserve("o-1", 1))
        .then_error(InventoryError::AlreadyReserved {
            order_id: "o-1".into(),
        });
    Inventory::given([restocked(9)])
        .when(reserve("o-1", 0))
        .then_error(InventoryError::ZeroQuantity);
}

#[test]
fn releasing_gives_the_units_back_and_is_harmless_without_a_reservation() {
    Inventory::given([restocked(3), reserved("o-1", 2)])
        .when(InventoryCommand::Release {
            order_id: "o-1".into(),
        })
        .then_events([InventoryEvent::StockReleased {
            order_id: "o-1".into(),
            quantity: 2,
        }])
        .then_state(|s| assert_eq!((s.on_hand, s.available()), (3, 3)));
    Inventory::given([restocked(3)])
        .when(InventoryCommand::Release {
            order_id: "o-1".into(),
        })
        .then_no_events();
}

#[test]
fn dispatching_sends_the_reserved_units_out() {
    Inventory::given([restocked(3), reserved("o-1", 2)])
        .when(InventoryCommand::Dispatch {
            order_id: "o-1".into(),
        })
        .then_events([InventoryEvent::StockDispatched {
            order_id: "o-1".into(),
            quantity: 2,
        }])
        .then_state(|s| assert_eq!((s.on_hand, s.reserved()), (1, 0)));
    Inventory::given([restocked(3)])
        .when(InventoryCommand::Dispatch {
            order_id: "o-1".into(),
        })
        .then_error(InventoryError::NoReservation {
            order_id: "o-1".into(),
        });
}

#[test]
fn the_rule_catches_a_reservation_beyond_the_stock() {
    let mut stock = Inventory::default();
    stock.apply_checked(&restocked(1)).unwrap();
    let broken = stock.apply_checked(&reserved("o-1", 2)).unwrap_err();
    assert_eq!(broken.name, "reserved_within_on_hand");
}
