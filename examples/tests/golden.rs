//! The bank's stored events of every version, pinned by golden files: what each becomes
//! today (see `tests/golden/bank/README.md`).

use cqrs_examples::bank::BankEvent;
use cqrs_testing::golden;

#[test]
fn stored_bank_events_of_every_version_decode_as_pinned() {
    let summary =
        golden::check::<BankEvent>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/bank"));
    assert_eq!(summary.cases.len(), 4);
}
