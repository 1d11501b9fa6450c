//! What every run of the demo must end with, whatever the store.

use orders::{Currency, DemoReport, OrderStatus, PaymentStatus, StockLevel};

/// Checks the demo's report and its printed account.
pub(crate) fn check_demo(report: &DemoReport, out: &str) {
    assert_eq!(report.dead_letters, 0, "{out}");
    let summary = |id: &str| {
        report
            .summary(id)
            .unwrap_or_else(|| panic!("no summary of {id}: {:?}", report.summaries))
    };
    assert_eq!(report.summaries.len(), 4, "{:?}", report.summaries);

    // The old shop's order, stored as `OrderPlaced` v1: in euros, its total computed.
    let old = summary("o-0042");
    assert_eq!(
        (old.status, old.payment),
        (OrderStatus::Cancelled, PaymentStatus::None)
    );
    assert_eq!((old.total, old.currency), (1700, Currency::Eur));

    let ada = summary("o-1001");
    assert_eq!(
        (ada.status, ada.payment),
        (OrderStatus::Shipped, PaymentStatus::Captured)
    );
    assert_eq!((ada.captured, ada.refunded, ada.items), (11970, 0, 3));
    assert_eq!(ada.note.as_deref(), Some("via DHL"));

    let bob = summary("o-1002");
    assert_eq!(
        (bob.status, bob.payment),
        (OrderStatus::Cancelled, PaymentStatus::Refunded)
    );
    assert_eq!(
        (bob.captured, bob.refunded, bob.currency),
        (15900, 15900, Currency::Gbp)
    );

    let cleo = summary("o-1003");
    assert_eq!(
        (cleo.status, cleo.payment),
        (OrderStatus::Rejected, PaymentStatus::Voided)
    );
    assert_eq!(cleo.captured, 0);
    assert!(
        cleo.note
            .as_deref()
            .is_some_and(|n| n.contains("`mouse` out of stock")),
        "{cleo:?}"
    );

    // Shipped units left; everything else came back.
    let level = |on_hand, reserved| StockLevel { on_hand, reserved };
    assert_eq!(
        report.stock,
        [
            ("keyboard".to_owned(), level(3, 0)),
            ("monitor".to_owned(), level(2, 0)),
            ("mouse".to_owned(), level(2, 0)),
        ]
    );

    // The causation chain of o-1001: rooted at its OrderPlaced, every other event caused
    // by one printed before it, down to the captured payment.
    let root = &report.chain[0];
    assert_eq!(
        (
            root.depth,
            root.event_type.as_str(),
            root.stream_id.as_str()
        ),
        (0, "OrderPlaced", "Order-o-1001")
    );
    for (i, link) in report.chain.iter().enumerate().skip(1) {
        let cause = link.caused_by.expect("every link but the root has a cause");
        assert!(
            report.chain[..i]
                .iter()
                .any(|c| c.position == cause && c.depth + 1 == link.depth),
            "{link:?} in {:#?}",
            report.chain
        );
    }
    let confirmed = report
        .chain
        .iter()
        .find(|l| l.event_type == "OrderConfirmed")
        .expect("the confirmation is in the chain");
    assert_eq!(
        confirmed.actor.as_deref(),
        Some("process-manager:fulfilment")
    );
    let captured = report
        .chain
        .iter()
        .find(|l| l.event_type == "PaymentCaptured")
        .expect("the capture is in the chain");
    assert_eq!(captured.caused_by, Some(confirmed.position));

    for line in [
        "It loads today as: o-0042 by Dora, 2 × mug = EUR 17.00, cancelled.",
        "OrderPlaced o-1003         → StockReserved keyboard 1 for o-1003",
        "OrderRejected o-1003 (`mouse` out of stock: 2 available, 3 requested)",
        "OrderCancelled o-1002      → StockReleased monitor 1 from o-1002",
        "Ada tries to cancel o-1001: command rejected: a shipped order cannot be cancelled.",
        "How o-1001 came about",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}
