//! The generated property tests of the three aggregates: random command sequences, from
//! the empty state and from histories a random walk rarely reaches, with every invariant,
//! the refold, the codec round trip (and, for orders, the golden files) checked after
//! every command.

use cqrs_testing::properties::Properties;
use orders::{
    Currency, Inventory, InventoryCommand, InventoryEvent, Order, OrderCommand, OrderEvent,
    OrderLine, Payment, PaymentCommand, PaymentEvent,
};
use proptest::prelude::*;

const SKUS: [&str; 3] = ["keyboard", "mouse", "monitor"];

fn sku() -> impl Strategy<Value = String> {
    proptest::sample::select(&SKUS[..]).prop_map(str::to_owned)
}

fn line() -> impl Strategy<Value = OrderLine> {
    (sku(), 0..=3u32, 0..=5000u64)
        .prop_map(|(sku, quantity, price)| OrderLine::new(sku, quantity, price))
}

/// Ada's order: two keyboards and a mouse, EUR 119.70.
fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer: "Ada".into(),
        lines: vec![
            OrderLine::new("keyboard", 2, 4990),
            OrderLine::new("mouse", 1, 1990),
        ],
        currency: Currency::Eur,
        total: 11970,
    }
}

/// What a customer, the fulfilment process and the warehouse send an order, with
/// reservations and payments often matching Ada's order, so that it gets confirmed.
fn order_commands() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        1 => (proptest::collection::vec(line(), 0..=3), prop_oneof![Just(Currency::Eur), Just(Currency::Gbp)])
            .prop_map(|(lines, currency)| OrderCommand::Place { customer: "Ada".into(), lines, currency }),
        4 => (sku(), 1..=2u32).prop_map(|(sku, quantity)| OrderCommand::RecordReservation { sku, quantity }),
        3 => (prop_oneof![Just("pay-1"), Just("pay-2")], prop_oneof![Just(11970u64), 0..=20000u64])
            .prop_map(|(id, amount)| OrderCommand::RecordPayment { payment_id: id.into(), amount }),
        1 => Just(OrderCommand::Reject { reason: "out of stock".into() }),
        1 => Just(OrderCommand::Cancel { reason: "changed my mind".into() }),
        2 => Just(OrderCommand::Ship { carrier: "DHL".into() }),
    ]
}

#[test]
fn an_order_keeps_its_rules_under_random_commands() {
    let stats = Properties::<Order>::new(order_commands())
        .given_history([placed()])
        .given_history([
            placed(),
            OrderEvent::LineReserved {
                sku: "keyboard".into(),
                quantity: 2,
            },
            OrderEvent::PaymentSecured {
                payment_id: "pay-1".into(),
                amount: 11970,
            },
        ])
        .golden(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/order"))
        .cases(256)
        .run();
    assert_eq!(stats.cases, 256);
    assert!(stats.accepted > 0 && stats.rejected > 0, "{stats:?}");
    assert_eq!(stats.golden_cases, 4, "{stats:?}");
}

fn payment_commands() -> impl Strategy<Value = PaymentCommand> {
    prop_oneof![
        1 => (0..=1000u64).prop_map(|amount| PaymentCommand::Authorize {
            order_id: "o-1".into(),
            amount,
            currency: Currency::Eur,
        }),
        3 => (0..=800u64).prop_map(|amount| PaymentCommand::Capture { amount }),
        1 => Just(PaymentCommand::Void { reason: "out of stock".into() }),
        3 => (0..=800u64).prop_map(|amount| PaymentCommand::Refund { amount, reason: "cancelled".into() }),
    ]
}

#[test]
fn a_payment_keeps_its_rules_under_random_commands() {
    let stats = Properties::<Payment>::new(payment_commands())
        .given_history([PaymentEvent::PaymentAuthorized {
            order_id: "o-1".into(),
            amount: 600,
            currency: Currency::Eur,
        }])
        .cases(256)
        .run();
    assert!(stats.accepted > 0 && stats.rejected > 0, "{stats:?}");
}

fn inventory_commands() -> impl Strategy<Value = InventoryCommand> {
    let order = || proptest::sample::select(&["o-1", "o-2", "o-3"][..]).prop_map(str::to_owned);
    prop_oneof![
        2 => (0..=5u32).prop_map(|quantity| InventoryCommand::Restock { quantity }),
        4 => (order(), 0..=5u32).prop_map(|(order_id, quantity)| InventoryCommand::Reserve { order_id, quantity }),
        2 => order().prop_map(|order_id| InventoryCommand::Release { order_id }),
        2 => order().prop_map(|order_id| InventoryCommand::Dispatch { order_id }),
    ]
}

#[test]
fn the_stock_keeps_its_rules_under_random_commands() {
    let stats = Properties::<Inventory>::new(inventory_commands())
        .given_history([
            InventoryEvent::Restocked { quantity: 4 },
            InventoryEvent::StockReserved {
                order_id: "o-1".into(),
                quantity: 3,
            },
        ])
        .cases(256)
        .run();
    assert!(stats.accepted > 0 && stats.rejected > 0, "{stats:?}");
}
