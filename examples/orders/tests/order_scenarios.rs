//! The order's rules, stated Given/When/Then.

use cqrs_core::prelude::*;
use cqrs_testing::prelude::*;
use orders::{Currency, Order, OrderCommand, OrderError, OrderEvent, OrderLine, OrderStatus};

fn keyboard() -> OrderLine {
    OrderLine::new("keyboard", 2, 4990)
}

fn mouse() -> OrderLine {
    OrderLine::new("mouse", 1, 1990)
}

/// Ada's order of two keyboards and a mouse: EUR 119.70.
fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer: "Ada".into(),
        lines: vec![keyboard(), mouse()],
        currency: Currency::Eur,
        total: 11970,
    }
}

fn reserved(line: &OrderLine) -> OrderEvent {
    OrderEvent::LineReserved {
        sku: line.sku.clone(),
        quantity: line.quantity,
    }
}

fn paid() -> OrderEvent {
    OrderEvent::PaymentSecured {
        payment_id: "pay-1".into(),
        amount: 11970,
    }
}

fn confirmed() -> [OrderEvent; 4] {
    [placed(), reserved(&keyboard()), paid(), reserved(&mouse())]
}

fn place(lines: Vec<OrderLine>) -> OrderCommand {
    OrderCommand::Place {
        customer: "Ada".into(),
        lines,
        currency: Currency::Eur,
    }
}

#[test]
fn placing_an_order_records_its_lines_and_their_total() {
    Order::given_no_events()
        .when(place(vec![keyboard(), mouse()]))
        .then_events([placed()])
        .then_state(|o| {
            assert_eq!(o.status, OrderStatus::Pending);
            assert_eq!(o.total_money().to_string(), "EUR 119.70");
        });
}

#[test]
fn an_order_needs_lines_of_distinct_skus_and_units() {
    Order::given_no_events()
        .when(place(vec![]))
        .then_error(OrderError::NoLines);
    Order::given_no_events()
        .when(place(vec![OrderLine::new("mouse", 0, 1990)]))
        .then_error(OrderError::ZeroQuantity {
            sku: "mouse".into(),
        });
    Order::given_no_events()
        .when(place(vec![mouse(), OrderLine::new("mouse", 3, 1990)]))
        .then_error(OrderError::DuplicateSku {
            sku: "mouse".into(),
        });
    Order::given_no_events()
        .when(place(vec![OrderLine::new("gold", u32::MAX, u64::MAX / 2)]))
        .then_error(OrderError::TotalOverflow);
    Order::given([placed()])
        .when(place(vec![mouse()]))
        .then_error(OrderError::AlreadyPlaced);
}

#[test]
fn the_last_reservation_confirms_a_paid_order() {
    Order::given([placed(), reserved(&keyboard()), paid()])
        .when(OrderCommand::RecordReservation {
            sku: "mouse".into(),
            quantity: 1,
        })
        .then_events([reserved(&mouse()), OrderEvent::OrderConfirmed])
        .then_state(|o| assert_eq!(o.status, OrderStatus::Confirmed));
}

#[test]
fn the_payment_confirms_a_fully_reserved_order() {
    Order::given([placed(), reserved(&keyboard()), reserved(&mouse())])
        .when(OrderCommand::RecordPayment {
            payment_id: "pay-1".into(),
            amount: 11970,
        })
        .then_events([paid(), OrderEvent::OrderConfirmed]);
}

#[test]
fn an_order_waits_for_every_line_and_the_payment() {
    Order::given([placed()])
        .when(OrderCommand::RecordPayment {
            payment_id: "pay-1".into(),
            amount: 11970,
        })
        .then_events([paid()])
        .then_state(|o| assert_eq!(o.status, OrderStatus::Pending));
    Order::given([placed(), reserved(&keyboard())])
        .when(OrderCommand::RecordReservation {
            sku: "mouse".into(),
            quantity: 1,
        })
        .then_events([reserved(&mouse())]);
}

#[test]
fn a_reservation_reported_twice_changes_nothing() {
    Order::given([placed(), reserved(&keyboard())])
        .when(OrderCommand::RecordReservation {
            sku: "keyboard".into(),
            quantity: 2,
        })
        .then_no_events();
}

#[test]
fn a_reservation_must_match_a_line() {
    Order::given([placed()])
        .when(OrderCommand::RecordReservation {
            sku: "keyboard".into(),
            quantity: 1,
        })
        .then_error(OrderError::NoSuchLine {
            sku: "keyboard".into(),
            quantity: 1,
        });
}

#[test]
fn a_payment_must_cover_the_total_exactly_and_only_once() {
    Order::given([placed()])
        .when(OrderCommand::RecordPayment {
            payment_id: "pay-1".into(),
            amount: 100,
        })
        .then_error(OrderError::AmountMismatch {
            total: 11970,
            amount: 100,
        });
    Order::given([placed(), paid()])
        .when(OrderCommand::RecordPayment {
            payment_id: "pay-2".into(),
            amount: 11970,
        })
        .then_error(OrderError::AlreadyPaid {
            payment_id: "pay-1".into(),
        });
}

#[test]
fn only_a_pending_order_is_rejected() {
    Order::given([placed()])
        .when(OrderCommand::Reject {
            reason: "out of stock".into(),
        })
        .then_events([OrderEvent::OrderRejected {
            reason: "out of stock".into(),
        }]);
    Order::given(confirmed())
        .and([OrderEvent::OrderConfirmed])
        .when(OrderCommand::Reject {
            reason: "late".into(),
        })
        .then_error(OrderError::NotPending {
            status: OrderStatus::Confirmed,
        });
    Order::given_no_events()
        .when(OrderCommand::Reject { reason: "?".into() })
        .then_error(OrderError::NotPlaced);
}

#[test]
fn an_order_is_cancelled_until_it_ships() {
    let cancel = || OrderCommand::Cancel {
        reason: "changed my mind".into(),
    };
    let cancelled = OrderEvent::OrderCancelled {
        reason: "changed my mind".into(),
    };
    Order::given([placed()])
        .when(cancel())
        .then_events([cancelled.clone()]);
    Order::given(confirmed())
        .and([OrderEvent::OrderConfirmed])
        .when(cancel())
        .then_events([cancelled.clone()]);
    Order::given(confirmed())
        .and([
            OrderEvent::OrderConfirmed,
            OrderEvent::OrderShipped {
                carrier: "DHL".into(),
            },
        ])
        .when(cancel())
        .then_error(OrderError::NotCancellable {
            status: OrderStatus::Shipped,
        });
    Order::given([placed(), cancelled])
        .when(cancel())
        .then_error(OrderError::NotCancellable {
            status: OrderStatus::Cancelled,
        });
}

#[test]
fn only_a_confirmed_order_ships() {
    Order::given(confirmed())
        .and([OrderEvent::OrderConfirmed])
        .when(OrderCommand::Ship {
            carrier: "DHL".into(),
        })
        .then_events([OrderEvent::OrderShipped {
            carrier: "DHL".into(),
        }]);
    Order::given([placed(), reserved(&keyboard())])
        .when(OrderCommand::Ship {
            carrier: "DHL".into(),
        })
        .then_error(OrderError::NotConfirmed {
            status: OrderStatus::Pending,
        });
}

#[test]
fn an_order_placed_under_version_1_is_priced_in_euros_and_still_works() {
    let v1 = serde_json::json!({
        "customer": "Ada",
        "items": [
            {"sku": "keyboard", "qty": 2, "price": 4990},
            {"sku": "mouse", "qty": 1, "price": 1990}
        ]
    });
    Order::given_stored("OrderPlaced", 1, v1.clone()).then_given_events([placed()]);
    Order::given_stored("OrderPlaced", 1, v1)
        .and([reserved(&keyboard()), reserved(&mouse())])
        .when(OrderCommand::RecordPayment {
            payment_id: "pay-1".into(),
            amount: 11970,
        })
        .then_events([paid(), OrderEvent::OrderConfirmed]);
}

#[test]
fn the_rules_catch_a_wrong_total_and_an_unfounded_confirmation() {
    let mut order = Order::default();
    let wrong_total = OrderEvent::OrderPlaced {
        customer: "Ada".into(),
        lines: vec![mouse()],
        currency: Currency::Eur,
        total: 1,
    };
    let broken = order.apply_checked(&wrong_total).unwrap_err();
    assert_eq!(broken.name, "total_is_the_sum_of_the_lines");

    let mut order = Order::default();
    order.apply_checked(&placed()).unwrap();
    order.apply_checked(&reserved(&keyboard())).unwrap();
    let broken = order
        .apply_checked(&OrderEvent::OrderConfirmed)
        .unwrap_err();
    assert_eq!(broken.name, "is_reserved_and_paid");
}

#[tokio::test]
async fn the_runtime_refuses_a_confirmation_the_rules_forbid() {
    let store = InMemoryEventStore::new();
    let orders = Cqrs::<Order>::builder(store.clone()).build();
    orders
        .execute("o-1", place(vec![keyboard(), mouse()]))
        .await
        .unwrap();
    // An external fact bypasses the handlers, not the rules.
    let err = orders
        .ingest("o-1", vec![OrderEvent::OrderConfirmed], Metadata::default())
        .await
        .unwrap_err();
    match err {
        CommandError::Invariant { violation } => {
            assert_eq!(violation.name, "is_reserved_and_paid")
        }
        other => panic!("expected an invariant violation, got {other:?}"),
    }
    assert_eq!(store.stream_version("Order-o-1").await.unwrap(), Some(1));
}
