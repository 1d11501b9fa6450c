// Every form the DSL accepts, in one aggregate: named, tuple and unit variants, renamed and
// versioned events, `#[command(id)]`, explicit variant names, async handlers with
// services, and each return shape.
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum OrderEvent {
    Placed {
        lines: Vec<Line>,
        total: u64,
    },
    Noted(String, u8),
    #[event(name = "order-cancelled", version = 2)]
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum OrderCommand {
    Place {
        #[command(id)]
        order_id: String,
        lines: Vec<Line>,
    },
    Note(String, u8),
    Cancel,
    Audit,
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("the order is cancelled")]
    Cancelled,
    #[error("the clock failed")]
    Clock,
}

struct ClockFailed;

impl From<ClockFailed> for OrderError {
    fn from(_: ClockFailed) -> Self {
        OrderError::Clock
    }
}

struct Clock;

#[derive(Debug, Default, Aggregate)]
#[aggregate(command = OrderCommand, event = OrderEvent, error = OrderError, services = Clock, name = "Order")]
struct Order {
    lines: Vec<Line>,
    cancelled: bool,
}

#[aggregate_impl]
impl Order {
    #[handle]
    fn place(&self, lines: Vec<Line>, order_id: String) -> Result<OrderEvent, OrderError> {
        let _ = order_id;
        if self.cancelled {
            return Err(OrderError::Cancelled);
        }
        let total = lines.iter().map(|l| u64::from(l.qty)).sum();
        Ok(OrderEvent::Placed { lines, total })
    }

    #[handle]
    fn note(&self, _0: String, mut _1: u8) -> Vec<OrderEvent> {
        _1 += 1;
        vec![OrderEvent::Noted(_0, _1)]
    }

    #[handle]
    async fn cancel(&self, #[services] clock: &Clock) -> Result<Option<OrderEvent>, ClockFailed> {
        let _ = clock;
        Ok((!self.cancelled).then_some(OrderEvent::Cancelled))
    }

    #[handle(Audit)]
    fn look(&self) -> Option<OrderEvent> {
        None
    }

    #[apply]
    fn placed(&mut self, lines: &[Line]) {
        self.lines = lines.to_vec();
    }

    #[apply]
    fn noted(&mut self) {}

    #[apply(Cancelled)]
    fn mark_cancelled(&mut self) {
        self.cancelled = true;
    }

    fn line_count(&self) -> usize {
        self.lines.len()
    }
}

fn main() {
    let order = Order::default();
    assert_eq!(order.line_count(), 0);
    assert_eq!(Order::TYPE_NAME, "Order");
}
