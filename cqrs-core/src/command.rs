//! Commands: requests to change an aggregate, which it may reject.

/// A command enum of an aggregate. Implemented by `#[derive(Command)]`.
///
/// A field marked `#[command(id)]` routes the command to its aggregate instance, so it can
/// be sent with [`Cqrs::execute_routed`](crate::Cqrs::execute_routed):
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Debug, Clone, Command)]
/// enum AccountCommand {
///     Open { #[command(id)] account_id: String, owner: String },
///     Close,
/// }
///
/// let open = AccountCommand::Open { account_id: "a-1".into(), owner: "ann".into() };
/// assert_eq!(open.command_name(), "Open");
/// assert_eq!(open.aggregate_id().as_deref(), Some("a-1"));
/// assert_eq!(AccountCommand::Close.aggregate_id(), None);
/// ```
pub trait Command: Send + Sync + 'static {
    /// The variant's name, for logs and tracing spans.
    fn command_name(&self) -> &'static str;

    /// The id of the aggregate instance this command addresses, if it names one.
    fn aggregate_id(&self) -> Option<String> {
        None
    }
}
