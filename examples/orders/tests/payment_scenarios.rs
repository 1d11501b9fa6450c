//! The payment's rules, as a scenario table: authorize, capture, void, refund.

use cqrs_testing::prelude::*;
use orders::{Currency, Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus};

fn authorized(amount: u64) -> PaymentEvent {
    PaymentEvent::PaymentAuthorized {
        order_id: "o-1".into(),
        amount,
        currency: Currency::Eur,
    }
}

fn captured(amount: u64) -> PaymentEvent {
    PaymentEvent::PaymentCaptured {
        order_id: "o-1".into(),
        amount,
    }
}

fn voided() -> PaymentEvent {
    PaymentEvent::PaymentVoided {
        order_id: "o-1".into(),
        reason: "out of stock".into(),
    }
}

fn refunded(amount: u64) -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        order_id: "o-1".into(),
        amount,
        reason: "cancelled".into(),
    }
}

scenarios! {
    Payment;

    an_authorization_holds_money_for_an_order {
        when: PaymentCommand::Authorize { order_id: "o-1".into(), amount: 500, currency: Currency::Eur },
        then: [authorized(500)],
        then_state: |p: &Payment| assert_eq!((p.status, p.authorized), (PaymentStatus::Authorized, 500)),
    }

    a_payment_is_authorized_once_and_never_for_nothing {
        given: [authorized(500)],
        when: PaymentCommand::Authorize { order_id: "o-2".into(), amount: 500, currency: Currency::Eur },
        then_error: PaymentError::AlreadyAuthorized,
    }

    a_zero_authorization_is_refused {
        when: PaymentCommand::Authorize { order_id: "o-1".into(), amount: 0, currency: Currency::Eur },
        then_error: PaymentError::ZeroAmount,
    }

    a_capture_takes_authorized_money {
        given: [authorized(500)],
        when: PaymentCommand::Capture { amount: 500 },
        then: [captured(500)],
    }

    a_capture_never_exceeds_the_authorization {
        given: [authorized(500), captured(300)],
        when: PaymentCommand::Capture { amount: 201 },
        then_error: PaymentError::ExceedsAuthorization { authorized: 200, requested: 201 },
    }

    nothing_is_captured_without_an_authorization {
        when: PaymentCommand::Capture { amount: 1 },
        then_error: PaymentError::NotAuthorized,
    }

    a_voided_payment_captures_nothing {
        given: [authorized(500), voided()],
        when: PaymentCommand::Capture { amount: 500 },
        then_error: PaymentError::Voided,
    }

    voiding_releases_the_authorization_once {
        given: [authorized(500)],
        when: PaymentCommand::Void { reason: "out of stock".into() },
        then: [voided()],
    }

    voiding_again_changes_nothing {
        given: [authorized(500), voided()],
        when: PaymentCommand::Void { reason: "again".into() },
        then_no_events,
    }

    captured_money_is_refunded_not_voided {
        given: [authorized(500), captured(500)],
        when: PaymentCommand::Void { reason: "cancelled".into() },
        then_error: PaymentError::AlreadyCaptured,
    }

    a_full_refund_ends_the_payment {
        given: [authorized(500), captured(500)],
        when: PaymentCommand::Refund { amount: 500, reason: "cancelled".into() },
        then: [refunded(500)],
        then_state: |p: &Payment| assert_eq!(p.status, PaymentStatus::Refunded),
    }

    a_refund_never_exceeds_what_was_captured {
        given: [authorized(500), captured(300), refunded(200)],
        when: PaymentCommand::Refund { amount: 101, reason: "cancelled".into() },
        then_error: PaymentError::ExceedsCapture { refundable: 100, requested: 101 },
    }
}

#[test]
fn the_rules_catch_a_capture_or_refund_beyond_the_money() {
    use cqrs_core::Aggregate;
    let mut payment = Payment::default();
    payment.apply_checked(&authorized(100)).unwrap();
    let broken = payment.apply_checked(&captured(101)).unwrap_err();
    assert_eq!(broken.name, "captured_within_authorized");

    let mut payment = Payment::default();
    payment.apply_checked(&authorized(100)).unwrap();
    payment.apply_checked(&captured(50)).unwrap();
    let broken = payment.apply_checked(&refunded(51)).unwrap_err();
    assert_eq!(broken.name, "refunded_within_captured");
}
