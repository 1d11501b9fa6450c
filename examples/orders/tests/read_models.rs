//! The read models: the order summary (async, from order and payment events) and the
//! stock levels (inline).

use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::projection::{ProjectionRunner, SagaRunner, ViewProjection, ViewStoreExt};
use orders::{
    Currency, InventoryCommand, OrderLine, OrderStatus, OrderSummary, PaymentEvent, PaymentStatus,
    Shop, StockLevel, order_key,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_summary_gathers_an_orders_events_and_its_payments() {
    let store = InMemoryEventStore::new();
    let shop = Shop::new(&store);
    let saga = SagaRunner::new(store.clone(), shop.fulfilment());
    let summaries =
        ProjectionRunner::new(store.clone(), ViewProjection::<OrderSummary>::new()).spawn();
    shop.inventory
        .execute("mouse", InventoryCommand::Restock { quantity: 5 })
        .await
        .unwrap();
    let lines = vec![OrderLine::new("mouse", 2, 1990)];
    shop.checkout("o-1", "Ada", lines, Currency::Gbp, "pay-1")
        .await
        .unwrap();
    saga.catch_up().await.unwrap();

    let head = store.head_position().await.unwrap();
    summaries
        .wait_for(head, Duration::from_secs(30))
        .await
        .unwrap();
    let summary = store.get::<OrderSummary>("o-1").await.unwrap().unwrap();
    assert_eq!(
        summary,
        OrderSummary {
            customer: "Ada".into(),
            status: OrderStatus::Confirmed,
            items: 2,
            total: 3980,
            currency: Currency::Gbp,
            payment: PaymentStatus::Captured,
            captured: 3980,
            refunded: 0,
            note: None,
        }
    );
    // One document per order: the payment's events did not make one of their own.
    let all = store.all::<OrderSummary>().await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    summaries.stop().await.unwrap();
}

#[test]
fn a_payment_event_is_keyed_by_the_order_it_names() {
    let event = PaymentEvent::PaymentCaptured {
        order_id: "o-7".into(),
        amount: 5,
    };
    let new = NewEvent::encode(&event, &JsonCodec, Metadata::default()).unwrap();
    let stream = std::sync::Arc::from("Payment-pay-9");
    let recorded =
        cqrs_core::store::recorded_from_new(&stream, &new, 1, 1, std::time::SystemTime::now());
    assert_eq!(order_key(&recorded).unwrap(), "o-7");

    let elsewhere = std::sync::Arc::from("Inventory-mouse");
    let recorded =
        cqrs_core::store::recorded_from_new(&elsewhere, &new, 1, 1, std::time::SystemTime::now());
    let err = order_key(&recorded).unwrap_err();
    assert!(err.to_string().contains("Inventory-mouse"), "{err}");
}

#[tokio::test]
async fn stock_levels_show_every_inventory_command_as_soon_as_it_returns() {
    let store = InMemoryEventStore::new();
    let shop = Shop::new(&store);
    let level = || async { store.get::<StockLevel>("mouse").await.unwrap().unwrap() };
    shop.inventory
        .execute("mouse", InventoryCommand::Restock { quantity: 5 })
        .await
        .unwrap();
    assert_eq!(
        level().await,
        StockLevel {
            on_hand: 5,
            reserved: 0
        }
    );
    let reserve = InventoryCommand::Reserve {
        order_id: "o-1".into(),
        quantity: 2,
    };
    shop.inventory.execute("mouse", reserve).await.unwrap();
    assert_eq!(level().await.available(), 3);
    let dispatch = InventoryCommand::Dispatch {
        order_id: "o-1".into(),
    };
    shop.inventory.execute("mouse", dispatch).await.unwrap();
    assert_eq!(
        level().await,
        StockLevel {
            on_hand: 3,
            reserved: 0
        }
    );
}
