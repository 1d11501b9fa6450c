//! The order's stored events of every version, pinned by golden files: what each becomes
//! today (see `tests/golden/order/README.md`).

use cqrs_testing::golden;
use orders::{Currency, OrderEvent, OrderLine};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/order");

#[test]
fn stored_order_events_of_every_version_decode_as_pinned() {
    let summary = golden::check::<OrderEvent>(DIR);
    assert_eq!(summary.cases.len(), 4);
}

#[test]
fn an_order_placed_under_version_1_becomes_a_euro_order_with_its_total() {
    let case = golden::Case::read(format!("{DIR}/order-placed-v1.json")).unwrap();
    assert_eq!(case.schema_version, 1);
    assert_eq!(
        case.decode::<OrderEvent>().unwrap(),
        [OrderEvent::OrderPlaced {
            customer: "Ada".into(),
            lines: vec![
                OrderLine::new("keyboard", 2, 4990),
                OrderLine::new("mouse", 1, 1990),
            ],
            currency: Currency::Eur,
            total: 11970,
        }]
    );
}
