//! Every chapter of the book, pulled in as documentation so that `cargo test` compiles
//! and runs each of its Rust samples. A sample that is never compiled rots.
//!
//! One module per chapter, in the order of `src/SUMMARY.md`.

/// The quickstart chapter.
#[doc = include_str!("src/quickstart.md")]
pub mod quickstart {}

/// The chapter on aggregates and the dispatch macros.
#[doc = include_str!("src/aggregates.md")]
pub mod aggregates {}

/// The chapter on commands and events.
#[doc = include_str!("src/commands-and-events.md")]
pub mod commands_and_events {}

/// The chapter on testing with scenarios.
#[doc = include_str!("src/testing.md")]
pub mod testing {}

/// The chapter on invariants and property tests.
#[doc = include_str!("src/invariants.md")]
pub mod invariants {}

/// The chapter on event versioning.
#[doc = include_str!("src/evolving-events.md")]
pub mod evolving_events {}

/// The chapter on storage and snapshots.
#[doc = include_str!("src/storage.md")]
pub mod storage {}

/// The read models chapter.
#[doc = include_str!("src/read-models.md")]
pub mod read_models {}

/// The process managers chapter.
#[doc = include_str!("src/process-managers.md")]
pub mod process_managers {}

/// The chapter on concurrency and consistency.
#[doc = include_str!("src/concurrency.md")]
pub mod concurrency {}

/// The chapter on performance and tuning.
#[doc = include_str!("src/performance.md")]
pub mod performance {}

/// The recipes.
#[doc = include_str!("src/recipes.md")]
pub mod recipes {}

/// The chapter for readers coming from cqrs-es or Axon.
#[doc = include_str!("src/coming-from.md")]
pub mod coming_from {}

/// The attribute reference.
#[doc = include_str!("src/reference/attributes.md")]
pub mod reference_attributes {}

/// The adapter options reference.
#[doc = include_str!("src/reference/adapters.md")]
pub mod reference_adapters {}

// The two example chapters (`src/examples/orders.md`, `src/examples/flight.md`) are not
// pulled in here: their code is `{{#include}}`d by mdBook from the source files of the
// `orders` and `flight` crates, which `cargo test` compiles and tests as they are.
