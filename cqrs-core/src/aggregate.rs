//! Aggregates: the consistency boundary that decides on commands and evolves from events.

use std::future::Future;

use crate::command::Command;
use crate::event::DomainEvent;

/// An event-sourced aggregate: its state is the fold of its events.
///
/// Usually implemented by `#[derive(Aggregate)]` on the state struct together with
/// `#[aggregate_impl]` on its `impl` block, whose `#[handle]` and `#[apply]` methods are
/// compiled into exhaustive `match` dispatch:
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum CounterEvent { Incremented { by: u32 } }
///
/// #[derive(Debug, Clone, PartialEq, Command)]
/// enum CounterCommand { Increment { by: u32 } }
///
/// #[derive(Debug, thiserror::Error, PartialEq)]
/// enum CounterError { #[error("the counter would overflow")] Overflow }
///
/// #[derive(Debug, Default, Clone, PartialEq, Aggregate)]
/// #[aggregate(command = CounterCommand, event = CounterEvent, error = CounterError)]
/// struct Counter { value: u32 }
///
/// #[aggregate_impl]
/// impl Counter {
///     #[handle]
///     fn increment(&self, by: u32) -> Result<CounterEvent, CounterError> {
///         self.value.checked_add(by).ok_or(CounterError::Overflow)?;
///         Ok(CounterEvent::Incremented { by })
///     }
///
///     #[apply]
///     fn incremented(&mut self, by: &u32) {
///         self.value += by;
///     }
/// }
///
/// # tokio_test(async {
/// let mut counter = Counter::default();
/// let events = counter.handle(CounterCommand::Increment { by: 2 }, &()).await.unwrap();
/// for e in &events { counter.apply(e); }
/// assert_eq!(counter.value, 2);
/// assert_eq!(Counter::TYPE_NAME, "Counter");
/// # });
/// # fn tokio_test(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    label = "`{Self}` does not implement `Aggregate`",
    note = "add `#[derive(Aggregate)]` and `#[aggregate(command = .., event = .., error = ..)]` to `{Self}`"
)]
pub trait Aggregate: Default + Send + Sync + 'static {
    /// The aggregate type name: the prefix of its stream ids (`<TYPE_NAME>-<id>`).
    const TYPE_NAME: &'static str;

    /// The commands it decides on.
    type Command: Command + Clone;

    /// The events it records.
    type Event: DomainEvent;

    /// The schema version of this aggregate's snapshots (1 unless
    /// `#[aggregate(snapshot_version = N)]` says otherwise). Bump it whenever the state's
    /// serialised shape changes: a snapshot of another version is ignored and the state
    /// rebuilt from events, never mis-read.
    const SNAPSHOT_VERSION: u32 = 1;

    /// Why it rejects a command (a domain rejection, not a technical failure).
    type Error: std::error::Error + Send + Sync + 'static;

    /// What handlers may use besides the state (clocks, gateways, lookups); `()` for none.
    type Services: Send + Sync + 'static;

    /// Decides on a command against the current state: the events to record, or a
    /// rejection. Must not change the state; that is `apply`'s job.
    fn handle<'a>(
        &'a self,
        command: Self::Command,
        services: &'a Self::Services,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send + 'a;

    /// Evolves the state by one event. Infallible and free of I/O: it is replayed on load.
    fn apply(&mut self, event: &Self::Event);

    /// The stream id of the instance `id`: `<TYPE_NAME>-<id>`.
    fn stream_id(id: &str) -> String {
        let mut s = String::with_capacity(Self::TYPE_NAME.len() + 1 + id.len());
        s.push_str(Self::TYPE_NAME);
        s.push('-');
        s.push_str(id);
        s
    }
}
