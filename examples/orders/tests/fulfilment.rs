//! The fulfilment process manager on the in-memory store: what it does for a placed,
//! a rejected and a cancelled order, the correlation and causation it carries, and that
//! a redelivered log issues no command twice.

use cqrs_core::prelude::*;
use cqrs_core::projection::{
    DocChange, Projection, ProjectionBatch, ProjectionError, SagaRunner, ViewStore,
};
use orders::{
    Currency, Fulfilment, InventoryCommand, OrderCommand, OrderLine, OrderStatus, PaymentStatus,
    Shop,
};

struct World {
    store: InMemoryEventStore,
    shop: Shop,
    saga: SagaRunner,
}

/// A shop with 5 keyboards and 3 mice in stock.
async fn world() -> World {
    let store = InMemoryEventStore::new();
    let shop = Shop::new(&store);
    let saga = SagaRunner::new(store.clone(), shop.fulfilment());
    for (sku, quantity) in [("keyboard", 5), ("mouse", 3)] {
        shop.inventory
            .execute(sku, InventoryCommand::Restock { quantity })
            .await
            .unwrap();
    }
    World { store, shop, saga }
}

fn ada_lines() -> Vec<OrderLine> {
    vec![
        OrderLine::new("keyboard", 2, 4990),
        OrderLine::new("mouse", 1, 1990),
    ]
}

async fn stream(store: &InMemoryEventStore, id: &str) -> Vec<RecordedEvent> {
    store.read_stream(id, 1).await.unwrap()
}

fn find<'a>(events: &'a [RecordedEvent], event_type: &str) -> &'a RecordedEvent {
    events
        .iter()
        .find(|e| &*e.event_type == event_type)
        .unwrap_or_else(|| panic!("no `{event_type}` in {events:#?}"))
}

async fn available(world: &World, sku: &str) -> u32 {
    world
        .shop
        .inventory
        .load(sku)
        .await
        .unwrap()
        .state
        .available()
}

#[tokio::test]
async fn a_placed_and_paid_order_is_reserved_confirmed_and_captured_with_its_causation() {
    let w = world().await;
    let checkout = w
        .shop
        .checkout("o-1", "Ada", ada_lines(), Currency::Eur, "pay-1")
        .await
        .unwrap();
    w.saga.catch_up().await.unwrap();

    let order = w.shop.orders.load("o-1").await.unwrap().state;
    assert_eq!(order.status, OrderStatus::Confirmed, "{order:?}");
    let payment = w.shop.payments.load("pay-1").await.unwrap().state;
    assert_eq!(
        (payment.status, payment.captured),
        (PaymentStatus::Captured, 11970)
    );
    assert_eq!(available(&w, "keyboard").await, 3);
    assert_eq!(available(&w, "mouse").await, 2);

    // placed → reserved → line recorded → confirmed → captured, one correlation.
    let placed = checkout.placed.event_id;
    let reserved = find(
        &stream(&w.store, "Inventory-keyboard").await,
        "StockReserved",
    )
    .clone();
    let order_stream = stream(&w.store, "Order-o-1").await;
    let line = order_stream
        .iter()
        .find(|e| e.metadata.causation_id == Some(reserved.event_id))
        .expect("the reservation is recorded on the order");
    let confirmed = find(&order_stream, "OrderConfirmed");
    let captured = find(&stream(&w.store, "Payment-pay-1").await, "PaymentCaptured").clone();
    assert_eq!(reserved.metadata.causation_id, Some(placed));
    assert_eq!(&*line.event_type, "LineReserved");
    assert_eq!(captured.metadata.causation_id, Some(confirmed.event_id));
    for e in [&reserved, line, confirmed, &captured] {
        assert_eq!(e.metadata.correlation_id, Some(placed), "{e:?}");
        assert_eq!(
            e.metadata.actor.as_deref(),
            Some("process-manager:fulfilment")
        );
    }
}

#[tokio::test]
async fn an_order_out_of_stock_is_rejected_its_stock_released_and_its_payment_voided() {
    let w = world().await;
    let lines = vec![
        OrderLine::new("keyboard", 1, 4990),
        OrderLine::new("mouse", 4, 1990),
    ];
    w.shop
        .checkout("o-3", "Cleo", lines, Currency::Eur, "pay-3")
        .await
        .unwrap();
    w.saga.catch_up().await.unwrap();

    let order = w.shop.orders.load("o-3").await.unwrap().state;
    assert_eq!(order.status, OrderStatus::Rejected);
    let rejected = find(&stream(&w.store, "Order-o-3").await, "OrderRejected").clone();
    assert!(
        String::from_utf8_lossy(&rejected.payload).contains("out of stock"),
        "{rejected:?}"
    );
    // The keyboard was reserved before the mouse failed: it is released again.
    let keyboard = stream(&w.store, "Inventory-keyboard").await;
    let released = find(&keyboard, "StockReleased");
    assert_eq!(released.metadata.causation_id, Some(rejected.event_id));
    assert_eq!(available(&w, "keyboard").await, 5);
    assert_eq!(available(&w, "mouse").await, 3);
    let payment = w.shop.payments.load("pay-3").await.unwrap().state;
    assert_eq!(
        (payment.status, payment.captured),
        (PaymentStatus::Voided, 0)
    );
}

#[tokio::test]
async fn a_cancelled_order_gets_its_stock_back_and_its_money_refunded() {
    let w = world().await;
    w.shop
        .checkout("o-2", "Bob", ada_lines(), Currency::Eur, "pay-2")
        .await
        .unwrap();
    w.saga.catch_up().await.unwrap();
    let cancel = OrderCommand::Cancel {
        reason: "found it cheaper".into(),
    };
    w.shop.orders.execute("o-2", cancel).await.unwrap();
    w.saga.catch_up().await.unwrap();

    let payment = w.shop.payments.load("pay-2").await.unwrap().state;
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!((payment.captured, payment.refunded), (11970, 11970));
    assert_eq!(available(&w, "keyboard").await, 5);
    assert_eq!(available(&w, "mouse").await, 3);
}

#[tokio::test]
async fn a_shipped_order_takes_its_units_out_of_the_warehouse() {
    let w = world().await;
    w.shop
        .checkout("o-1", "Ada", ada_lines(), Currency::Eur, "pay-1")
        .await
        .unwrap();
    w.saga.catch_up().await.unwrap();
    let ship = OrderCommand::Ship {
        carrier: "DHL".into(),
    };
    w.shop.orders.execute("o-1", ship).await.unwrap();
    w.saga.catch_up().await.unwrap();

    let keyboard = w.shop.inventory.load("keyboard").await.unwrap().state;
    assert_eq!((keyboard.on_hand, keyboard.reserved()), (3, 0));
    let mouse = w.shop.inventory.load("mouse").await.unwrap().state;
    assert_eq!((mouse.on_hand, mouse.reserved()), (2, 0));
}

#[tokio::test]
async fn an_order_cancelled_before_the_process_ran_reserves_nothing() {
    let w = world().await;
    w.shop
        .checkout("o-1", "Ada", ada_lines(), Currency::Eur, "pay-1")
        .await
        .unwrap();
    let cancel = OrderCommand::Cancel {
        reason: "clicked too fast".into(),
    };
    w.shop.orders.execute("o-1", cancel).await.unwrap();
    w.saga.catch_up().await.unwrap();

    for sku in ["keyboard", "mouse"] {
        let events = stream(&w.store, &format!("Inventory-{sku}")).await;
        assert!(
            events.iter().all(|e| &*e.event_type == "Restocked"),
            "{events:#?}"
        );
    }
    let payment = w.shop.payments.load("pay-1").await.unwrap().state;
    assert_eq!(payment.status, PaymentStatus::Voided);
}

/// Stands in for the process manager's checkpoint (a name is all the view store needs).
struct Checkpoint;

impl Projection for Checkpoint {
    fn name(&self) -> &str {
        Fulfilment::NAME
    }
    fn handles(&self, _: &RecordedEvent) -> bool {
        false
    }
    fn apply(&self, _: Option<&[u8]>, _: &RecordedEvent) -> Result<DocChange, ProjectionError> {
        Ok(DocChange::Unchanged)
    }
}

#[tokio::test]
async fn a_redelivered_log_issues_no_command_twice() {
    let w = world().await;
    w.shop
        .checkout("o-1", "Ada", ada_lines(), Currency::Eur, "pay-1")
        .await
        .unwrap();
    w.shop
        .checkout(
            "o-2",
            "Bob",
            vec![OrderLine::new("mouse", 1, 1990)],
            Currency::Gbp,
            "pay-2",
        )
        .await
        .unwrap();
    let too_many = vec![
        OrderLine::new("keyboard", 1, 4990),
        OrderLine::new("mouse", 3, 1990),
    ];
    w.shop
        .checkout("o-3", "Cleo", too_many, Currency::Eur, "pay-3")
        .await
        .unwrap();
    w.saga.catch_up().await.unwrap();
    let ship = OrderCommand::Ship {
        carrier: "DHL".into(),
    };
    w.shop.orders.execute("o-1", ship).await.unwrap();
    let cancel = OrderCommand::Cancel {
        reason: "found it cheaper".into(),
    };
    w.shop.orders.execute("o-2", cancel).await.unwrap();
    w.saga.catch_up().await.unwrap();

    let head = w.store.head_position().await.unwrap();
    let before = w.store.read_all(1, 1000).await.unwrap();
    assert_eq!(
        w.store
            .projection_state(Fulfilment::NAME)
            .await
            .unwrap()
            .position,
        head
    );
    // Every reaction happened once: three orders' worth of reactions, each kind present.
    for kind in [
        "StockReserved",
        "StockReleased",
        "StockDispatched",
        "PaymentCaptured",
        "PaymentRefunded",
        "PaymentVoided",
        "OrderRejected",
    ] {
        assert!(before.iter().any(|e| &*e.event_type == kind), "no {kind}");
    }

    // The checkpoint goes back to 0, as after a crash before it was written: every
    // event is delivered again.
    w.store
        .commit_batch(ProjectionBatch {
            projection: &Checkpoint,
            generation: 0,
            from: head,
            events: &[],
            park: &[],
            resolved: &[],
            checkpoint: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        w.store
            .projection_state(Fulfilment::NAME)
            .await
            .unwrap()
            .position,
        0
    );
    let read = w.saga.catch_up().await.unwrap();
    assert_eq!(read, head, "every event was delivered again");

    assert_eq!(
        w.store.head_position().await.unwrap(),
        head,
        "nothing re-issued"
    );
    assert_eq!(w.store.read_all(1, 1000).await.unwrap(), before);
    assert!(
        w.store
            .dead_letters(Fulfilment::NAME)
            .await
            .unwrap()
            .is_empty()
    );
}
