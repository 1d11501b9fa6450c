//! # cqrs-core
//!
//! Event sourcing and CQRS for Rust, declared with derive macros on plain enums and
//! structs. This crate is the runtime: the [`Aggregate`], [`DomainEvent`] and [`Command`]
//! traits the derives implement, the event envelope and [`Metadata`], payload
//! [codecs](codec), the [`EventStore`] contract with its adapters, and the command runtime
//! [`Cqrs`] (load → handle → append → apply, with an aggregate cache, conflict retries,
//! middleware and tracing). Stored events of older shapes are lifted to today's through
//! [upcast chains](upcast) on every read; [snapshots](snapshot) carry their own schema
//! version.
//!
//! ```
//! use cqrs_core::prelude::*;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! enum AccountEvent {
//!     Opened { owner: String },
//!     Deposited { amount: u64, balance: u64 },
//! }
//!
//! #[derive(Debug, Clone, PartialEq, Command)]
//! enum AccountCommand {
//!     Open { owner: String },
//!     Deposit { amount: u64 },
//! }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! enum AccountError {
//!     #[error("the account is already open")]
//!     AlreadyOpen,
//!     #[error("the account is not open")]
//!     NotOpen,
//! }
//!
//! #[derive(Debug, Default, Clone, PartialEq, Aggregate)]
//! #[aggregate(command = AccountCommand, event = AccountEvent, error = AccountError)]
//! struct Account { open: bool, balance: u64 }
//!
//! #[aggregate_impl]
//! impl Account {
//!     #[handle]
//!     fn open(&self, owner: String) -> Result<AccountEvent, AccountError> {
//!         if self.open { return Err(AccountError::AlreadyOpen); }
//!         Ok(AccountEvent::Opened { owner })
//!     }
//!
//!     #[handle]
//!     fn deposit(&self, amount: u64) -> Result<AccountEvent, AccountError> {
//!         if !self.open { return Err(AccountError::NotOpen); }
//!         Ok(AccountEvent::Deposited { amount, balance: self.balance + amount })
//!     }
//!
//!     #[apply]
//!     fn opened(&mut self) { self.open = true; }
//!
//!     #[apply]
//!     fn deposited(&mut self, balance: &u64) { self.balance = *balance; }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let accounts = Cqrs::<Account>::builder(InMemoryEventStore::new()).build();
//! accounts.execute("a-1", AccountCommand::Open { owner: "ann".into() }).await.unwrap();
//! let done = accounts.execute("a-1", AccountCommand::Deposit { amount: 5 }).await.unwrap();
//! assert_eq!(done.events[0].event, AccountEvent::Deposited { amount: 5, balance: 5 });
//! # });
//! ```
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `derive` | yes | the `Event`, `Command` and `Aggregate` derives, `#[aggregate_impl]` and `#[projection]` |
//! | `sqlite` | yes | [`store::sqlite::SqliteEventStore`], the embedded store: one file, WAL, group commit (bundles SQLite, built from source with the C compiler) |
//! | `postgres` | no | `store::postgres::PostgresEventStore`: a pooled `tokio-postgres` client, a gap-free global log, tenants, TLS |
//!
//! Read models, subscriptions and process managers are in [`projection`](mod@projection).

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// Lets the derives' `::cqrs_core::..` paths resolve inside this crate's own tests.
#[allow(unused_extern_crates)]
extern crate self as cqrs_core;

pub mod aggregate;
pub mod codec;
pub mod command;
pub mod event;
pub mod invariant;
pub mod projection;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod upcast;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use aggregate::Aggregate;
pub use async_trait::async_trait;
pub use codec::{Codec, CodecError, JsonCodec};
pub use command::Command;
pub use event::{
    DecodeReason, DomainEvent, EventDecodeError, EventEnvelope, Metadata, NewEvent, RecordedEvent,
};
pub use runtime::{
    CommandError, CommandResult, Committed, Cqrs, CqrsBuilder, Loaded, LogPage, ReadError,
    RetryPolicy,
};
pub use store::{EventStore, ExpectedVersion, InMemoryEventStore, StoreError};
/// The `uuid` crate this framework uses (event ids, correlation and causation ids), so
/// that `Metadata::with_correlation_id` and friends need no dependency of your own.
pub use uuid;

#[cfg(feature = "derive")]
pub use cqrs_derive::{Aggregate, Command, Event, aggregate_impl, projection};

/// Everything an application usually needs, in one `use`.
///
/// ```
/// use cqrs_core::prelude::*;
/// ```
pub mod prelude {
    pub use crate::aggregate::Aggregate;
    pub use crate::codec::{Codec, JsonCodec};
    pub use crate::command::Command;
    pub use crate::event::{DomainEvent, EventEnvelope, Metadata, NewEvent, RecordedEvent};
    pub use crate::runtime::{CommandError, CommandResult, Committed, Cqrs, RetryPolicy};
    pub use crate::store::{EventStore, ExpectedVersion, InMemoryEventStore};
    /// For implementing the async traits (`ProcessManager`, `Middleware`, stores).
    pub use async_trait::async_trait;
    #[cfg(feature = "derive")]
    pub use cqrs_derive::{Aggregate, Command, Event, aggregate_impl, projection};
    pub use serde::{Deserialize, Serialize};
}
