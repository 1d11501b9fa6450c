//! Compile-fail tests: each file under `ui/fail` makes one mistake (or, for
//! `several-mistakes-reported-together`, several) and its `.stderr` is the diagnostic a
//! user sees. Files under `ui/pass` must compile. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p cqrs-derive --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
