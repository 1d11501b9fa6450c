//! The macros on every variant shape and handler form they accept.

use std::sync::atomic::{AtomicU32, Ordering};

use cqrs_core::__private::Variants;
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum ShopEvent {
    Placed {
        lines: Vec<Line>,
        total: u64,
    },
    Noted(String, u8),
    LineAdded(Line),
    Cancelled,
    #[event(name = "shipped-v2", version = 2)]
    Shipped {
        carrier: String,
    },
}

#[derive(Debug, Clone, PartialEq, Command)]
enum ShopCommand {
    Place {
        #[command(id)]
        order_id: String,
        lines: Vec<Line>,
    },
    Note(String, u8),
    AddLine(Line),
    Cancel,
    Ship {
        carrier: String,
    },
    PlaceMany {
        count: u32,
    },
    Audit,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum ShopError {
    #[error("cancelled orders cannot change")]
    Cancelled,
    #[error("the carrier refused: {0}")]
    Carrier(String),
}

/// A carrier gateway the handlers receive as a service.
#[derive(Default)]
struct Carriers {
    calls: AtomicU32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CarrierRefused(String);

impl From<CarrierRefused> for ShopError {
    fn from(e: CarrierRefused) -> Self {
        ShopError::Carrier(e.0)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Aggregate)]
#[aggregate(command = ShopCommand, event = ShopEvent, error = ShopError, services = Carriers, name = "Shop")]
struct Order {
    lines: Vec<Line>,
    notes: Vec<(String, u8)>,
    total: u64,
    cancelled: bool,
    carrier: Option<String>,
}

#[aggregate_impl]
impl Order {
    /// Named fields bind by name; any order.
    #[handle]
    fn place(&self, lines: Vec<Line>, order_id: String) -> Result<ShopEvent, ShopError> {
        let _ = order_id;
        let total = lines.iter().map(|l| u64::from(l.qty)).sum();
        Ok(ShopEvent::Placed { lines, total })
    }

    /// Tuple fields bind as `_0`, `_1`.
    #[handle]
    fn note(&self, _0: String, _1: u8) -> ShopEvent {
        ShopEvent::Noted(_0, _1)
    }

    /// A variant wrapping a struct.
    #[handle]
    fn add_line(&self, _0: Line) -> Result<Vec<ShopEvent>, ShopError> {
        if self.cancelled {
            return Err(ShopError::Cancelled);
        }
        Ok(vec![ShopEvent::LineAdded(_0)])
    }

    /// A unit variant, returning an `Option`.
    #[handle]
    fn cancel(&self) -> Option<ShopEvent> {
        (!self.cancelled).then_some(ShopEvent::Cancelled)
    }

    /// Async, with services, and an error that converts into the aggregate's error.
    #[handle]
    async fn ship(
        &self,
        #[services] carriers: &Carriers,
        carrier: String,
    ) -> Result<ShopEvent, CarrierRefused> {
        carriers.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if carrier == "nobody" {
            return Err(CarrierRefused(carrier));
        }
        Ok(ShopEvent::Shipped { carrier })
    }

    /// Named explicitly; returns a `Vec`.
    #[handle(PlaceMany)]
    fn several(&self, count: u32) -> Vec<ShopEvent> {
        (0..count)
            .map(|i| ShopEvent::Noted(format!("n{i}"), i as u8))
            .collect()
    }

    /// A handler that records nothing.
    #[handle]
    fn audit(&self) -> Vec<ShopEvent> {
        Vec::new()
    }

    #[apply]
    fn placed(&mut self, lines: &[Line], total: &u64) {
        self.lines = lines.to_vec();
        self.total = *total;
    }

    /// `&str` for a `String` field: the call coerces.
    #[apply]
    fn noted(&mut self, _0: &str, _1: &u8) {
        self.notes.push((_0.to_owned(), *_1));
    }

    /// A subset of fields (here: the only one) by position.
    #[apply(LineAdded)]
    fn line(&mut self, _0: &Line) {
        self.lines.push(_0.clone());
    }

    #[apply]
    fn cancelled(&mut self) {
        self.cancelled = true;
    }

    #[apply]
    fn shipped(&mut self, carrier: &str) {
        self.carrier = Some(carrier.to_owned());
    }

    /// Ordinary methods stay as they are.
    fn line_count(&self) -> usize {
        self.lines.len()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn run(
    order: &mut Order,
    services: &Carriers,
    cmd: ShopCommand,
) -> Result<Vec<ShopEvent>, ShopError> {
    let events = block_on(order.handle(cmd, services))?;
    for e in &events {
        order.apply(e);
    }
    Ok(events)
}

#[test]
fn every_variant_shape_dispatches_to_its_method() {
    let svc = Carriers::default();
    let mut order = Order::default();
    let line = Line {
        sku: "a".into(),
        qty: 2,
    };
    let placed = run(
        &mut order,
        &svc,
        ShopCommand::Place {
            order_id: "o-1".into(),
            lines: vec![line.clone()],
        },
    )
    .unwrap();
    assert_eq!(
        placed,
        [ShopEvent::Placed {
            lines: vec![line.clone()],
            total: 2
        }]
    );
    run(&mut order, &svc, ShopCommand::Note("hi".into(), 7)).unwrap();
    run(&mut order, &svc, ShopCommand::AddLine(line.clone())).unwrap();
    assert_eq!(order.line_count(), 2);
    assert_eq!(order.notes, [("hi".to_string(), 7)]);
    assert_eq!(
        run(&mut order, &svc, ShopCommand::PlaceMany { count: 3 })
            .unwrap()
            .len(),
        3
    );
    assert!(
        run(&mut order, &svc, ShopCommand::Audit)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        run(&mut order, &svc, ShopCommand::Cancel).unwrap(),
        [ShopEvent::Cancelled]
    );
    assert!(
        run(&mut order, &svc, ShopCommand::Cancel)
            .unwrap()
            .is_empty(),
        "Option::None → no event"
    );
    assert_eq!(
        run(&mut order, &svc, ShopCommand::AddLine(line)),
        Err(ShopError::Cancelled)
    );
}

#[test]
fn async_handlers_receive_services_and_convert_errors() {
    let svc = Carriers::default();
    let mut order = Order::default();
    let shipped = run(
        &mut order,
        &svc,
        ShopCommand::Ship {
            carrier: "ups".into(),
        },
    )
    .unwrap();
    assert_eq!(
        shipped,
        [ShopEvent::Shipped {
            carrier: "ups".into()
        }]
    );
    assert_eq!(order.carrier.as_deref(), Some("ups"));
    let refused = run(
        &mut order,
        &svc,
        ShopCommand::Ship {
            carrier: "nobody".into(),
        },
    );
    assert_eq!(refused, Err(ShopError::Carrier("nobody".into())));
    assert_eq!(svc.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn event_names_versions_and_payloads_follow_the_attributes() {
    assert_eq!(Order::TYPE_NAME, "Shop");
    assert_eq!(Order::stream_id("o-1"), "Shop-o-1");
    assert_eq!(
        ShopEvent::EVENT_TYPES,
        ["Placed", "Noted", "LineAdded", "Cancelled", "shipped-v2"]
    );
    let shipped = ShopEvent::Shipped {
        carrier: "dhl".into(),
    };
    assert_eq!(shipped.event_type(), "shipped-v2");
    assert_eq!(shipped.schema_version(), 2);
    assert_eq!(ShopEvent::Cancelled.schema_version(), 1);

    let cases = [
        ShopEvent::Placed {
            lines: vec![Line {
                sku: "x".into(),
                qty: 1,
            }],
            total: 1,
        },
        ShopEvent::Noted("n".into(), 1),
        ShopEvent::LineAdded(Line {
            sku: "y".into(),
            qty: 3,
        }),
        ShopEvent::Cancelled,
        shipped,
    ];
    let payloads = [
        r#"{"lines":[{"sku":"x","qty":1}],"total":1}"#,
        r#"["n",1]"#,
        r#"{"sku":"y","qty":3}"#,
        "null",
        r#"{"carrier":"dhl"}"#,
    ];
    for (event, payload) in cases.iter().zip(payloads) {
        let bytes = event.encode(&JsonCodec).unwrap();
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), payload);
        let back = ShopEvent::decode_all(
            &JsonCodec,
            event.event_type(),
            event.schema_version(),
            &bytes,
        )
        .unwrap();
        assert_eq!(back, std::slice::from_ref(event));
    }
}

#[test]
fn bad_stored_events_are_typed_errors() {
    use cqrs_core::DecodeReason;
    let unknown = ShopEvent::decode_all(&JsonCodec, "Refunded", 1, b"{}").unwrap_err();
    assert!(matches!(
        unknown,
        DecodeReason::UnknownEventType {
            enum_name: "ShopEvent",
            ..
        }
    ));
    assert!(
        unknown
            .to_string()
            .contains("Placed, Noted, LineAdded, Cancelled, shipped-v2")
    );
    let version =
        ShopEvent::decode_all(&JsonCodec, "shipped-v2", 3, br#"{"carrier":"x"}"#).unwrap_err();
    assert!(matches!(
        version,
        DecodeReason::UnsupportedSchemaVersion {
            found: 3,
            oldest: 2,
            current: 2
        }
    ));
    let payload = ShopEvent::decode_all(&JsonCodec, "Placed", 1, br#"{"lines":7}"#).unwrap_err();
    assert!(matches!(payload, DecodeReason::Payload(_)), "{payload}");
}

#[test]
fn commands_know_their_names_and_routing() {
    let place = ShopCommand::Place {
        order_id: "o-9".into(),
        lines: vec![],
    };
    assert_eq!(place.command_name(), "Place");
    assert_eq!(place.aggregate_id().as_deref(), Some("o-9"));
    assert_eq!(ShopCommand::Cancel.command_name(), "Cancel");
    assert_eq!(ShopCommand::Cancel.aggregate_id(), None);
    let names: Vec<_> = ShopCommand::VARIANTS.iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [
            "Place",
            "Note",
            "AddLine",
            "Cancel",
            "Ship",
            "PlaceMany",
            "Audit"
        ]
    );
    assert!(
        ShopCommand::VARIANTS[0]
            .missing
            .contains("fn place(&self, order_id: String, lines: Vec<Line>)")
    );
    assert!(
        ShopEvent::VARIANTS[1]
            .missing
            .contains("fn noted(&mut self, _0: &String, _1: &u8)")
    );
}
