//! Runnable examples of the cqrs framework.
//!
//! - [`bank`]: the `BankAccount` aggregate of the benchmark workload "bank".
//! - [`workload`]: the workload's deterministic command stream, plan, check values and
//!   `AccountSummary` read model.
//! - [`harness`]: the measurements of `bank-bench`, shared by the binary and the tests.
//!
//! The binaries: `bank` (`cargo run -p cqrs-examples`) walks through the aggregate;
//! `bank-bench` runs the benchmark.

pub mod bank;
pub mod harness;
pub mod workload;
