//! Runnable examples of the cqrs framework.
//!
//! - [`bank`]: the `BankAccount` aggregate of the benchmark workload "bank", with one
//!   evolved event (`AccountOpened` v1 → v2).
//! - [`workload`]: the workload's deterministic command stream, plan, check values and
//!   `AccountSummary` read model (a framework view, run as an inline projection by
//!   `bank-bench` and as an async one by `projection-bench`).
//! - [`harness`]: the measurements of `bank-bench` and `projection-bench`, shared by the
//!   binaries and the tests.
//! - [`decode_bench`]: decode throughput of current-version and upcast events.
//! - [`pg_bench`]: the plain-SQL limit of the `postgres` backend (single-event inserts).
//! - [`sqlite_bench`]: the SQLite store's append latency as it grows, snapshot loads of
//!   a very long stream, and the plain-SQL baseline.
//!
//! The binaries: `bank` (`cargo run -p cqrs-examples`) walks through the aggregate;
//! `bank-bench` runs the benchmark; `projection-bench` measures an async projection's
//! catch-up; `decode-bench` measures decoding; `append-bench` runs the measurements of
//! [`sqlite_bench`].

pub mod bank;
pub mod decode_bench;
pub mod harness;
pub mod pg_bench;
pub mod sqlite_bench;
pub mod workload;
