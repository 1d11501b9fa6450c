//! Every chapter of the book, pulled in as documentation so that `cargo test` compiles
//! and runs each of its Rust samples. A sample that is never compiled rots.

/// The quickstart chapter.
#[doc = include_str!("src/quickstart.md")]
pub mod quickstart {}

/// The aggregates chapter.
#[doc = include_str!("src/aggregates.md")]
pub mod aggregates {}

/// The testing chapter.
#[doc = include_str!("src/testing.md")]
pub mod testing {}

/// The chapter on event versioning.
#[doc = include_str!("src/evolving-events.md")]
pub mod evolving_events {}

/// The storage chapter.
#[doc = include_str!("src/storage.md")]
pub mod storage {}

/// The read models chapter.
#[doc = include_str!("src/read-models.md")]
pub mod read_models {}

/// The process managers chapter.
#[doc = include_str!("src/process-managers.md")]
pub mod process_managers {}
