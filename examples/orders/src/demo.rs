//! The demo that `cargo run -p orders` prints: a morning at the shop, told from its
//! events.
//!
//! [`run_demo`] works on any store that keeps views; the binary gives it a fresh SQLite
//! file, or a fresh PostgreSQL schema (see [`postgres`](crate::postgres)) when a
//! `postgres://` URL is set.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use orders::OrderStatus;
//!
//! # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
//! let mut out = Vec::new();
//! let report = orders::run_demo(InMemoryEventStore::new(), "memory", &mut out).await.unwrap();
//! assert_eq!(report.status_of("o-1003"), Some(OrderStatus::Rejected));
//! assert!(String::from_utf8(out).unwrap().contains("o-1003"));
//! # });
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::projection::{
    ProjectionRunner, SagaRunner, ViewProjection, ViewStore, ViewStoreExt, aggregate_id,
};
use uuid::Uuid;

use crate::fulfilment::Fulfilment;
use crate::inventory::{Inventory, InventoryCommand, InventoryEvent};
use crate::money::{Currency, Money};
use crate::order::{Order, OrderCommand, OrderEvent, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentEvent};
use crate::shop::{Shop, ShopError, committed_head, read_log_from, settle};
use crate::views::{OrderSummary, StockLevel};

/// How long the demo waits for the process manager and the read model to catch up.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the demo ended with, for tests to check.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    /// The `order_summary` documents, by order id.
    pub summaries: Vec<(String, OrderSummary)>,
    /// The `stock_level` documents, by SKU.
    pub stock: Vec<(String, StockLevel)>,
    /// The causation chain of order `o-1001`, in the order it is printed.
    pub chain: Vec<ChainLink>,
    /// Events the fulfilment process manager parked (none when all went well).
    pub dead_letters: usize,
    /// How many events the store holds at the end.
    pub events: usize,
}

impl DemoReport {
    /// The status the order summary shows for `order_id`.
    pub fn status_of(&self, order_id: &str) -> Option<OrderStatus> {
        self.summary(order_id).map(|s| s.status)
    }

    /// The order summary of `order_id`.
    pub fn summary(&self, order_id: &str) -> Option<&OrderSummary> {
        self.summaries
            .iter()
            .find(|(id, _)| id == order_id)
            .map(|(_, s)| s)
    }
}

/// One event of a causation chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// How deep it is: 0 for the root (`OrderPlaced`), 1 for what it caused, …
    pub depth: usize,
    /// Its global position.
    pub position: u64,
    /// Its stream.
    pub stream_id: String,
    /// Its stored type.
    pub event_type: String,
    /// Who issued the command that recorded it.
    pub actor: Option<String>,
    /// The position of the event that caused it (`None` for the root).
    pub caused_by: Option<u64>,
}

/// Runs the demo on `store` (described as `backend` in the first line) and writes its
/// account to `out`:
///
/// 1. an order of the old shop, stored as `OrderPlaced` version 1, loads today;
/// 2. stock arrives; three customers check out (order placed, payment authorized);
/// 3. the fulfilment process manager reserves stock, confirms two orders and captures
///    their payments, rejects the third (a line out of stock), releases its stock and
///    voids its payment;
/// 4. one order ships, another is cancelled (stock released, payment refunded), and a
///    cancellation of the shipped order is refused;
/// 5. the order summaries (an async read model) and the stock levels (an inline one),
///    and the causation chain of the first order.
pub async fn run_demo<S, W>(store: S, backend: &str, out: &mut W) -> Result<DemoReport, ShopError>
where
    S: EventStore + ViewStore + Clone,
    W: Write + Send,
{
    let shop = Shop::new(&store);
    let saga = SagaRunner::new(store.clone(), shop.fulfilment());
    let summaries =
        ProjectionRunner::new(store.clone(), ViewProjection::<OrderSummary>::new()).spawn();
    writeln!(out, "An online shop on {backend}.\n")?;

    // 1. History: the old shop's events are still in the store, in their old shape.
    import_old_order(&store).await?;
    let old = shop.orders.load("o-0042").await?.state;
    writeln!(
        out,
        "The store holds an order of the old shop, written as `OrderPlaced` version 1 (no\n\
         currency; `items` with `qty` and `price`).\n\
         It loads today as: o-0042 by {}, {} = {}, {}.\n",
        old.customer,
        lines_text(&old.lines),
        old.total_money(),
        old.status
    )?;

    // 2. The morning's business.
    let stock = [("keyboard", 5), ("mouse", 3), ("monitor", 2)];
    for (sku, quantity) in stock {
        let restock = InventoryCommand::Restock { quantity };
        let as_warehouse = Metadata::default().with_actor("warehouse");
        shop.inventory
            .execute_with(sku, restock, as_warehouse)
            .await?;
    }
    let arrived: Vec<String> = stock.iter().map(|(s, q)| format!("{q} × {s}")).collect();
    writeln!(out, "Stock arrives: {}.", arrived.join(", "))?;

    let checkouts = [
        (
            "o-1001",
            "Ada",
            vec![
                OrderLine::new("keyboard", 2, 4990),
                OrderLine::new("mouse", 1, 1990),
            ],
            Currency::Eur,
            "pay-1001",
        ),
        (
            "o-1002",
            "Bob",
            vec![OrderLine::new("monitor", 1, 15900)],
            Currency::Gbp,
            "pay-1002",
        ),
        (
            "o-1003",
            "Cleo",
            vec![
                OrderLine::new("keyboard", 1, 4990),
                OrderLine::new("mouse", 3, 1990),
            ],
            Currency::Eur,
            "pay-1003",
        ),
    ];
    let mut first_order = None;
    for (order_id, customer, lines, currency, payment_id) in checkouts {
        let text = lines_text(&lines);
        let done = shop
            .checkout(order_id, customer, lines, currency, payment_id)
            .await?;
        let OrderEvent::OrderPlaced { total, .. } = &done.placed.event else {
            unreachable!("checkout returns the OrderPlaced event");
        };
        writeln!(
            out,
            "Checkout {order_id}: {customer} orders {text} = {}; card payment {payment_id} authorized.",
            Money(*total, currency)
        )?;
        first_order.get_or_insert(done.placed);
    }

    let mut log = read_log_from(&store, 1).await?;
    let mut seen = log.len();
    settle(&saga, &store, Fulfilment::NAME, PATIENCE).await?;
    log = read_log_from(&store, 1).await?;
    writeln!(out, "\nThe fulfilment process manager reacts:")?;
    print_reactions(out, &log, seen)?;
    seen = log.len();

    // 3. Later that day.
    let as_warehouse = Metadata::default().with_actor("warehouse");
    let ship = OrderCommand::Ship {
        carrier: "DHL".into(),
    };
    shop.orders
        .execute_with("o-1001", ship, as_warehouse)
        .await?;
    writeln!(out, "\nThe warehouse ships o-1001 via DHL.")?;
    let reason = "found it cheaper elsewhere";
    let cancel = OrderCommand::Cancel {
        reason: reason.into(),
    };
    let as_bob = Metadata::default().with_actor("customer:Bob");
    shop.orders.execute_with("o-1002", cancel, as_bob).await?;
    writeln!(out, "Bob cancels o-1002: {reason}.")?;
    let too_late = OrderCommand::Cancel {
        reason: "changed my mind".into(),
    };
    match shop.orders.execute("o-1001", too_late).await {
        Err(e) if e.rejection().is_some() => {
            writeln!(out, "Ada tries to cancel o-1001: {e}.")?;
        }
        Err(e) => return Err(e.into()),
        Ok(done) => return Err(format!("a shipped order was cancelled: {done:?}").into()),
    }
    settle(&saga, &store, Fulfilment::NAME, PATIENCE).await?;
    log = read_log_from(&store, 1).await?;
    writeln!(out, "\nThe fulfilment process manager reacts:")?;
    print_reactions(out, &log, seen)?;

    // 4. What the read models show.
    let head = committed_head(&store).await?;
    summaries.wait_for(head, PATIENCE).await?;
    let rows = store.all::<OrderSummary>().await?;
    writeln!(
        out,
        "\nOrder summaries (read model `order_summary`, async, caught up to position {head}):"
    )?;
    print_summaries(out, &rows)?;
    summaries.stop().await?;

    let stock = store.all::<StockLevel>().await?;
    writeln!(out, "\nStock levels (read model `stock_level`, inline):")?;
    for (sku, level) in &stock {
        writeln!(
            out,
            "  {sku:<9} on hand {:>2}   reserved {:>2}   available {:>2}",
            level.on_hand,
            level.reserved,
            level.available()
        )?;
    }

    // 5. Why the first order is where it is.
    let root = first_order.ok_or("no order was placed")?;
    let chain = causation_chain(&log, root.event_id);
    writeln!(
        out,
        "\nHow o-1001 came about: every event correlated with its `OrderPlaced`, each under \
         the event that caused it:"
    )?;
    let by_position: HashMap<u64, &RecordedEvent> = log.iter().map(|e| (e.position, e)).collect();
    for link in &chain {
        let event = by_position[&link.position];
        writeln!(
            out,
            "  {:indent$}#{:<3} {}   [{}]",
            "",
            link.position,
            describe(event),
            link.actor.as_deref().unwrap_or("?"),
            indent = link.depth * 2
        )?;
    }

    let dead_letters = store.dead_letters(Fulfilment::NAME).await?.len();
    if dead_letters > 0 {
        writeln!(
            out,
            "\n{dead_letters} event(s) parked by the process manager."
        )?;
    }
    Ok(DemoReport {
        summaries: rows,
        stock,
        chain,
        dead_letters,
        events: log.len(),
    })
}

/// Appends the events of an order placed and cancelled in the old shop, the way its
/// store wrote them: `OrderPlaced` at schema version 1.
async fn import_old_order<S: EventStore>(store: &S) -> Result<(), ShopError> {
    let v1 = br#"{"customer":"Dora","items":[{"sku":"mug","qty":2,"price":850}]}"#;
    let from_old_shop = Metadata::default().with_actor("import:old-shop");
    let placed = NewEvent::new("OrderPlaced", 1, v1.to_vec(), from_old_shop.clone());
    let cancelled = NewEvent::encode(
        &OrderEvent::OrderCancelled {
            reason: "out of mugs in 2019".into(),
        },
        &JsonCodec,
        from_old_shop,
    )?;
    store
        .append(
            &Order::stream_id("o-0042"),
            ExpectedVersion::NoStream,
            vec![placed, cancelled],
        )
        .await?;
    Ok(())
}

fn lines_text(lines: &[OrderLine]) -> String {
    let lines: Vec<String> = lines
        .iter()
        .map(|l| format!("{} × {}", l.quantity, l.sku))
        .collect();
    lines.join(", ")
}

fn amount(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// One line about a stored event: its type, its aggregate and what it says.
pub fn describe(event: &RecordedEvent) -> String {
    let id = aggregate_id(&event.stream_id);
    let of = |type_name: &str| event.stream_id.starts_with(&format!("{type_name}-"));
    let detail = if of(Order::TYPE_NAME) {
        event
            .decode::<OrderEvent, _>(&JsonCodec)
            .ok()
            .and_then(|e| e.into_iter().next())
            .map(|e| match e {
                OrderEvent::OrderPlaced {
                    customer,
                    lines,
                    currency,
                    total,
                } => format!(
                    "by {customer}: {} = {}",
                    lines_text(&lines),
                    Money(total, currency)
                ),
                OrderEvent::LineReserved { sku, quantity } => format!("{quantity} × {sku}"),
                OrderEvent::PaymentSecured { payment_id, .. } => format!("by {payment_id}"),
                OrderEvent::OrderConfirmed => String::new(),
                OrderEvent::OrderRejected { reason } | OrderEvent::OrderCancelled { reason } => {
                    format!("({reason})")
                }
                OrderEvent::OrderShipped { carrier } => format!("via {carrier}"),
            })
    } else if of(Payment::TYPE_NAME) {
        event
            .decode::<PaymentEvent, _>(&JsonCodec)
            .ok()
            .and_then(|e| e.into_iter().next())
            .map(|e| match e {
                PaymentEvent::PaymentAuthorized {
                    order_id,
                    amount,
                    currency,
                } => format!("{} for {order_id}", Money(amount, currency)),
                PaymentEvent::PaymentCaptured { order_id, amount } => {
                    format!("{} for {order_id}", self::amount(amount))
                }
                PaymentEvent::PaymentVoided { order_id, reason } => {
                    format!("for {order_id} ({reason})")
                }
                PaymentEvent::PaymentRefunded {
                    order_id, amount, ..
                } => format!("{} for {order_id}", self::amount(amount)),
            })
    } else if of(Inventory::TYPE_NAME) {
        event
            .decode::<InventoryEvent, _>(&JsonCodec)
            .ok()
            .and_then(|e| e.into_iter().next())
            .map(|e| match e {
                InventoryEvent::Restocked { quantity } => format!("+{quantity}"),
                InventoryEvent::StockReserved { order_id, quantity }
                | InventoryEvent::StockDispatched { order_id, quantity } => {
                    format!("{quantity} for {order_id}")
                }
                InventoryEvent::StockReleased { order_id, quantity } => {
                    format!("{quantity} from {order_id}")
                }
            })
    } else {
        None
    };
    match detail {
        Some(detail) if !detail.is_empty() => format!("{} {id} {detail}", event.event_type),
        _ => format!("{} {id}", event.event_type),
    }
}

/// Prints what the process manager recorded after `log[seen..]` began, grouped under the
/// event each reaction answered.
fn print_reactions(
    out: &mut impl Write,
    log: &[RecordedEvent],
    seen: usize,
) -> std::io::Result<()> {
    let actor = format!("process-manager:{}", Fulfilment::NAME);
    let by_id: HashMap<_, _> = log.iter().map(|e| (e.event_id, e)).collect();
    let mut last_trigger = None;
    for event in &log[seen.min(log.len())..] {
        if event.metadata.actor.as_deref() != Some(actor.as_str()) {
            continue;
        }
        let trigger = event.metadata.causation_id;
        let head = if trigger == last_trigger {
            String::new()
        } else {
            trigger
                .and_then(|id| by_id.get(&id))
                .map(|t| format!("{} {}", t.event_type, aggregate_id(&t.stream_id)))
                .unwrap_or_else(|| "?".to_owned())
        };
        last_trigger = trigger;
        writeln!(out, "  {head:<26} → {}", describe(event))?;
    }
    Ok(())
}

fn print_summaries(out: &mut impl Write, rows: &[(String, OrderSummary)]) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:<7} {:<9} {:>5} {:>11}  {:<10} {:>9} {:>9}  status",
        "order", "customer", "items", "total", "payment", "captured", "refunded"
    )?;
    for (id, s) in rows {
        let note = s
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {id:<7} {:<9} {:>5} {:>11}  {:<10} {:>9} {:>9}  {}{note}",
            s.customer,
            s.items,
            s.total_money().to_string(),
            s.payment.to_string(),
            amount(s.captured),
            amount(s.refunded),
            s.status,
        )?;
    }
    Ok(())
}

/// The events correlated with `root` (and `root` itself), depth first: each event
/// followed by the events it caused, in position order.
pub fn causation_chain(log: &[RecordedEvent], root: Uuid) -> Vec<ChainLink> {
    let members: Vec<&RecordedEvent> = log
        .iter()
        .filter(|e| e.event_id == root || e.metadata.correlation_id == Some(root))
        .collect();
    let position_of: HashMap<_, _> = members.iter().map(|e| (e.event_id, e.position)).collect();
    let mut chain = Vec::with_capacity(members.len());
    let mut stack: Vec<(&RecordedEvent, usize)> = members
        .iter()
        .filter(|e| e.event_id == root)
        .map(|e| (*e, 0))
        .collect();
    while let Some((event, depth)) = stack.pop() {
        chain.push(ChainLink {
            depth,
            position: event.position,
            stream_id: event.stream_id.to_string(),
            event_type: event.event_type.to_string(),
            actor: event.metadata.actor.clone(),
            caused_by: event
                .metadata
                .causation_id
                .and_then(|id| position_of.get(&id).copied()),
        });
        // Pushed in reverse, so that the earliest child is printed first.
        for child in members
            .iter()
            .rev()
            .filter(|c| c.metadata.causation_id == Some(event.event_id) && c.event_id != root)
        {
            stack.push((child, depth + 1));
        }
    }
    chain
}
