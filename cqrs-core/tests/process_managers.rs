//! Process managers and external events on the in-memory store: the order example of
//! the seeds (OrderPlaced → reserve stock → StockReserved → confirm the order), with
//! correlation and causation carried from event to command to event, idempotent on
//! redelivery; external facts appended without a command, validated, newest-wins.

use std::sync::Arc;

use cqrs_core::prelude::*;
use cqrs_core::projection::{
    ProcessManager, ProjectionBatch, ProjectionError, SagaContext, SagaRunner, ViewStore,
};
use cqrs_core::{CommandError, RecordedEvent};

#[allow(clippy::enum_variant_names)] // the seeds' event names
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum OrderEvent {
    OrderPlaced { sku: String, qty: u32 },
    OrderConfirmed,
    OrderRejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum OrderCommand {
    Place { sku: String, qty: u32 },
    Confirm,
    Reject { reason: String },
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum OrderError {
    #[error("the order exists")]
    Exists,
    #[error("the order is not pending")]
    NotPending,
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = OrderCommand, event = OrderEvent, error = OrderError)]
struct Order {
    placed: bool,
    confirmed: bool,
    rejected: bool,
}

#[aggregate_impl]
impl Order {
    #[handle]
    fn place(&self, sku: String, qty: u32) -> Result<OrderEvent, OrderError> {
        if self.placed {
            return Err(OrderError::Exists);
        }
        Ok(OrderEvent::OrderPlaced { sku, qty })
    }

    #[handle]
    fn confirm(&self) -> Result<OrderEvent, OrderError> {
        if !self.placed || self.confirmed || self.rejected {
            return Err(OrderError::NotPending);
        }
        Ok(OrderEvent::OrderConfirmed)
    }

    #[handle]
    fn reject(&self, reason: String) -> Result<OrderEvent, OrderError> {
        if !self.placed || self.confirmed || self.rejected {
            return Err(OrderError::NotPending);
        }
        Ok(OrderEvent::OrderRejected { reason })
    }

    #[apply]
    fn order_placed(&mut self) {
        self.placed = true;
    }

    #[apply]
    fn order_confirmed(&mut self) {
        self.confirmed = true;
    }

    #[apply]
    fn order_rejected(&mut self) {
        self.rejected = true;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum StockEvent {
    Restocked { qty: u32 },
    StockReserved { order_id: String, qty: u32 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum StockCommand {
    Restock { qty: u32 },
    Reserve { order_id: String, qty: u32 },
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum StockError {
    #[error("only {available} left")]
    OutOfStock { available: u32 },
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = StockCommand, event = StockEvent, error = StockError)]
struct Stock {
    available: u32,
}

#[aggregate_impl]
impl Stock {
    #[handle]
    fn restock(&self, qty: u32) -> Result<StockEvent, StockError> {
        Ok(StockEvent::Restocked { qty })
    }

    #[handle]
    fn reserve(&self, order_id: String, qty: u32) -> Result<StockEvent, StockError> {
        if qty > self.available {
            return Err(StockError::OutOfStock {
                available: self.available,
            });
        }
        Ok(StockEvent::StockReserved { order_id, qty })
    }

    #[apply]
    fn restocked(&mut self, qty: &u32) {
        self.available += qty;
    }

    #[apply]
    fn stock_reserved(&mut self, qty: &u32) {
        self.available -= qty;
    }
}

/// OrderPlaced → reserve the stock; StockReserved → confirm the order; out of stock →
/// reject it.
struct Fulfilment {
    orders: Cqrs<Order>,
    stock: Cqrs<Stock>,
}

#[cqrs_core::async_trait]
impl ProcessManager for Fulfilment {
    fn name(&self) -> &str {
        "fulfilment"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(&*event.event_type, "OrderPlaced" | "StockReserved")
    }

    async fn react(
        &self,
        event: &RecordedEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        let failed = |e: &dyn std::fmt::Display| ProjectionError::Handler(e.to_string());
        let order_id = cqrs_core::projection::aggregate_id(&event.stream_id).to_owned();
        match event
            .decode::<OrderEvent, _>(&cqrs_core::JsonCodec)
            .ok()
            .and_then(|e| e.into_iter().next())
        {
            Some(OrderEvent::OrderPlaced { sku, qty }) => {
                let reserve = StockCommand::Reserve {
                    order_id: order_id.clone(),
                    qty,
                };
                match ctx.execute(&self.stock, &sku, reserve).await {
                    Ok(_) => Ok(()),
                    Err(CommandError::Rejected(why)) => ctx
                        .execute(
                            &self.orders,
                            &order_id,
                            OrderCommand::Reject {
                                reason: why.to_string(),
                            },
                        )
                        .await
                        .map(|_| ())
                        .map_err(|e| failed(&e)),
                    Err(e) => Err(failed(&e)),
                }
            }
            _ => {
                let Some(StockEvent::StockReserved { order_id, .. }) = event
                    .decode::<StockEvent, _>(&cqrs_core::JsonCodec)
                    .ok()
                    .and_then(|e| e.into_iter().next())
                else {
                    return Ok(());
                };
                ctx.execute(&self.orders, &order_id, OrderCommand::Confirm)
                    .await
                    .map(|_| ())
                    .map_err(|e| failed(&e))
            }
        }
    }
}

async fn stream(store: &InMemoryEventStore, id: &str) -> Vec<RecordedEvent> {
    store.read_stream(id, 1).await.unwrap()
}

/// Moves the checkpoint of process manager `name` back to 0, as a crash before it was
/// written would: every event is delivered again.
async fn rewind(store: &InMemoryEventStore, name: &'static str) {
    struct Named(&'static str);
    impl cqrs_core::projection::Projection for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn handles(&self, _: &RecordedEvent) -> bool {
            false
        }
        fn apply(
            &self,
            _: Option<&[u8]>,
            _: &RecordedEvent,
        ) -> Result<cqrs_core::projection::DocChange, ProjectionError> {
            Ok(cqrs_core::projection::DocChange::Unchanged)
        }
    }
    let from = store.projection_state(name).await.unwrap().position;
    store
        .commit_batch(ProjectionBatch {
            projection: &Named(name),
            generation: 0,
            from,
            events: &[],
            park: &[],
            resolved: &[],
            checkpoint: 0,
        })
        .await
        .unwrap();
}

/// Reserves an order's stock in two halves: two commands to one stream for one trigger.
struct Halves {
    stock: Cqrs<Stock>,
}

#[cqrs_core::async_trait]
impl ProcessManager for Halves {
    fn name(&self) -> &str {
        "halves"
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        &*event.event_type == "OrderPlaced"
    }

    async fn react(
        &self,
        event: &RecordedEvent,
        ctx: &SagaContext<'_>,
    ) -> Result<(), ProjectionError> {
        let failed = |e: &dyn std::fmt::Display| ProjectionError::Handler(e.to_string());
        let order_id = cqrs_core::projection::aggregate_id(&event.stream_id).to_owned();
        let decoded = event.decode::<OrderEvent, _>(&cqrs_core::JsonCodec)?;
        let Some(OrderEvent::OrderPlaced { sku, qty }) = decoded.into_iter().next() else {
            return Ok(());
        };
        for half in [qty / 2, qty - qty / 2] {
            let reserve = StockCommand::Reserve {
                order_id: order_id.clone(),
                qty: half,
            };
            ctx.execute(&self.stock, &sku, reserve)
                .await
                .map_err(|e| failed(&e))?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_reaction_issuing_two_commands_to_one_stream_issues_both_once() {
    let store = InMemoryEventStore::new();
    let orders = Cqrs::<Order>::builder(store.clone()).build();
    let stock = Cqrs::<Stock>::builder(store.clone()).build();
    stock
        .execute("sku-1", StockCommand::Restock { qty: 10 })
        .await
        .unwrap();
    let place = OrderCommand::Place {
        sku: "sku-1".into(),
        qty: 5,
    };
    orders.execute("o-1", place).await.unwrap();
    let saga = SagaRunner::new(
        store.clone(),
        Halves {
            stock: stock.clone(),
        },
    );
    saga.catch_up().await.unwrap();
    assert_eq!(stock.load("sku-1").await.unwrap().state.available, 5);
    let reserved: Vec<RecordedEvent> = stream(&store, "Stock-sku-1")
        .await
        .into_iter()
        .filter(|e| &*e.event_type == "StockReserved")
        .collect();
    let placed = &stream(&store, "Order-o-1").await[0];
    assert_eq!(
        reserved.len(),
        2,
        "both halves issued on the first delivery"
    );
    assert!(
        reserved
            .iter()
            .all(|e| e.metadata.causation_id == Some(placed.event_id))
    );

    // Redelivered: neither half again.
    let head = store.head_position().await.unwrap();
    rewind(&store, "halves").await;
    saga.catch_up().await.unwrap();
    assert_eq!(
        store.head_position().await.unwrap(),
        head,
        "nothing re-issued"
    );
    assert_eq!(stock.load("sku-1").await.unwrap().state.available, 5);
}

#[tokio::test]
async fn the_order_saga_carries_causation_and_does_not_repeat_itself_on_redelivery() {
    let store = InMemoryEventStore::new();
    let orders = Cqrs::<Order>::builder(store.clone()).build();
    let stock = Cqrs::<Stock>::builder(store.clone()).build();
    stock
        .execute("sku-1", StockCommand::Restock { qty: 5 })
        .await
        .unwrap();
    orders
        .execute(
            "o-1",
            OrderCommand::Place {
                sku: "sku-1".into(),
                qty: 3,
            },
        )
        .await
        .unwrap();
    orders
        .execute(
            "o-2",
            OrderCommand::Place {
                sku: "sku-1".into(),
                qty: 4,
            },
        )
        .await
        .unwrap();
    let saga = SagaRunner::new(
        store.clone(),
        Fulfilment {
            orders: orders.clone(),
            stock: stock.clone(),
        },
    );
    // Two passes: the first reacts to OrderPlaced, the second to StockReserved.
    saga.catch_up().await.unwrap();
    saga.catch_up().await.unwrap();

    let o1 = orders.load("o-1").await.unwrap().state;
    assert!(o1.confirmed, "{o1:?}");
    let o2 = orders.load("o-2").await.unwrap().state;
    assert!(o2.rejected, "only 2 left after o-1: {o2:?}");
    assert_eq!(stock.load("sku-1").await.unwrap().state.available, 2);

    // Correlation and causation: placed → reserved → confirmed.
    let placed = &stream(&store, "Order-o-1").await[0];
    let reserved = stream(&store, "Stock-sku-1")
        .await
        .into_iter()
        .find(|e| &*e.event_type == "StockReserved")
        .unwrap();
    let confirmed = &stream(&store, "Order-o-1").await[1];
    assert_eq!(reserved.metadata.causation_id, Some(placed.event_id));
    assert_eq!(reserved.metadata.correlation_id, Some(placed.event_id));
    assert_eq!(confirmed.metadata.causation_id, Some(reserved.event_id));
    assert_eq!(confirmed.metadata.correlation_id, Some(placed.event_id));
    assert_eq!(
        confirmed.metadata.actor.as_deref(),
        Some("process-manager:fulfilment")
    );

    // Redelivery: the checkpoint goes back to 0 (as after a crash before it was
    // written); every event is delivered again, and no command is issued twice.
    let head = store.head_position().await.unwrap();
    let state = store.projection_state("fulfilment").await.unwrap();
    assert_eq!(state.position, head);
    rewind(&store, "fulfilment").await;
    saga.catch_up().await.unwrap();
    saga.catch_up().await.unwrap();
    assert_eq!(
        store.head_position().await.unwrap(),
        head,
        "nothing re-issued"
    );
    assert_eq!(stock.load("sku-1").await.unwrap().state.available, 2);
}

#[tokio::test]
async fn a_failing_reaction_is_retried_then_parked_and_the_saga_goes_on() {
    struct Flaky {
        fails: Arc<std::sync::atomic::AtomicU32>,
    }
    #[cqrs_core::async_trait]
    impl ProcessManager for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn handles(&self, _: &RecordedEvent) -> bool {
            true
        }
        async fn react(
            &self,
            event: &RecordedEvent,
            _: &SagaContext<'_>,
        ) -> Result<(), ProjectionError> {
            if event.version == 1 && &*event.stream_id == "Order-bad" {
                self.fails.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(ProjectionError::Handler("downstream is down".into()));
            }
            Ok(())
        }
    }
    let store = InMemoryEventStore::new();
    let orders = Cqrs::<Order>::builder(store.clone()).build();
    for id in ["bad", "good"] {
        orders
            .execute(
                id,
                OrderCommand::Place {
                    sku: "s".into(),
                    qty: 1,
                },
            )
            .await
            .unwrap();
    }
    orders.execute("bad", OrderCommand::Confirm).await.unwrap();
    let fails = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let saga = SagaRunner::new(
        store.clone(),
        Flaky {
            fails: fails.clone(),
        },
    )
    .options(cqrs_core::projection::RunnerOptions {
        max_attempts: 3,
        backoff: std::time::Duration::from_millis(1),
        ..Default::default()
    });
    saga.catch_up().await.unwrap();
    assert_eq!(fails.load(std::sync::atomic::Ordering::SeqCst), 3);
    let letters = store.dead_letters("flaky").await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].stream_id, "Order-bad");
    assert!(letters[0].reason.contains("downstream is down"));
    assert_eq!(letters[1].blocked_by, Some(letters[0].position));
    assert_eq!(
        store.projection_state("flaky").await.unwrap().position,
        store.head_position().await.unwrap()
    );
}

// --- external events -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum TrackEvent {
    /// A radar position report; producers do not guarantee order.
    RadarTrack { at: u64, lat: f64, lon: f64 },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum TrackCommand {}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("never")]
struct TrackError;

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = TrackCommand, event = TrackEvent, error = TrackError)]
struct Track {
    at: u64,
    lat: f64,
    lon: f64,
    reports: u32,
}

#[aggregate_impl]
impl Track {
    /// Keeps only the newest position by timestamp: an older report is stored (it is a
    /// fact) but does not move the track.
    #[apply]
    fn radar_track(&mut self, at: &u64, lat: &f64, lon: &f64) {
        self.reports += 1;
        if *at <= self.at {
            return;
        }
        (self.at, self.lat, self.lon) = (*at, *lat, *lon);
    }
}

#[tokio::test]
async fn external_events_are_validated_appended_without_a_command_and_newest_wins() {
    let store = InMemoryEventStore::new();
    let tracks = Cqrs::<Track>::builder(store.clone()).build();
    let report = |at: u64, lat: f64| TrackEvent::RadarTrack { at, lat, lon: 2.0 };
    tracks
        .ingest("AF123", vec![report(10, 48.0)], Metadata::default())
        .await
        .unwrap();
    tracks
        .ingest("AF123", vec![report(30, 49.0)], Metadata::default())
        .await
        .unwrap();
    // Late arrival: stored, counted, but the newest position stands.
    let late = tracks
        .ingest_json(
            "AF123",
            "RadarTrack",
            1,
            serde_json::json!({"at": 20, "lat": 10.0, "lon": 0.0}),
            Metadata::default(),
        )
        .await;
    let late = match late {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(late.stream_version, 3);
    let state = tracks.load("AF123").await.unwrap().state;
    assert_eq!((state.at, state.lat, state.reports), (30, 49.0, 3));

    // Invalid input never reaches the store.
    for (event_type, payload) in [
        (
            "RadarTrack",
            serde_json::json!({"at": "soon", "lat": 1.0, "lon": 1.0}),
        ),
        ("Teleported", serde_json::json!({})),
    ] {
        let err = tracks
            .ingest_json("AF123", event_type, 1, payload, Metadata::default())
            .await
            .unwrap_err();
        match &err {
            CommandError::InvalidExternal { event_type: t, .. } => assert_eq!(t, event_type),
            other => panic!("expected InvalidExternal, got {other:?}"),
        }
        assert!(err.to_string().contains(event_type), "{err}");
    }
    assert_eq!(store.stream_version("Track-AF123").await.unwrap(), Some(3));
}
