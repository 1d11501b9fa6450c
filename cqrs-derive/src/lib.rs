//! Derive and attribute macros of the cqrs DSL. Use them through `cqrs_core` (feature
//! `derive`, on by default), which documents each one.
//!
//! Each entry point parses its input into the borrowed AST of `ast`, reads attributes
//! in `attr`, checks them in `check`, and generates code in `expand`. Mistakes are
//! accumulated in a `ctxt::Ctxt` and reported together, next to a stub implementation
//! so that one mistake does not cascade into many.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod util;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Implements `DomainEvent` for an event enum. See `cqrs_core::DomainEvent`.
#[proc_macro_derive(Event, attributes(event, upcast))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    expand::event::derive(&syn::parse_macro_input!(input as syn::DeriveInput)).into()
}

/// Implements `Command` for a command enum. See `cqrs_core::Command`.
#[proc_macro_derive(Command, attributes(command))]
pub fn derive_command(input: TokenStream) -> TokenStream {
    expand::command::derive(&syn::parse_macro_input!(input as syn::DeriveInput)).into()
}

/// Implements `Aggregate` for an aggregate state struct. See `cqrs_core::Aggregate`.
#[proc_macro_derive(Aggregate, attributes(aggregate, invariant))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    expand::aggregate::derive(&syn::parse_macro_input!(input as syn::DeriveInput)).into()
}

/// Compiles the `#[handle]` and `#[apply]` methods of an aggregate's `impl` block into
/// exhaustive dispatch. See `cqrs_core::Aggregate`.
#[proc_macro_attribute]
pub fn aggregate_impl(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::aggregate_impl::expand(args.into(), syn::parse_macro_input!(input as syn::ItemImpl))
        .into()
}

/// Turns the `impl` block of a read-model type into a typed projection: implements
/// `cqrs_core::projection::View`, which `ViewProjection` runs (inline in the append's
/// transaction, or by the async runner).
///
/// A view is a plain struct deriving `Default`, `Serialize` and `Deserialize`: one value
/// per key (by default the aggregate id), stored as a JSON document. Each method marked
/// `#[on(EventEnum::Variant)]` updates it from one event variant; its parameters borrow the
/// variant's fields **by name** (`_0`, `_1`, … for tuple fields), like `#[apply]`, so a
/// handler takes only the fields it reads. One view may read several event enums (the
/// events of several aggregates).
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::projection::{DocChange, Projection, View, ViewProjection};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// enum BankEvent {
///     AccountOpened { owner: String },
///     Deposited { amount: u64, balance: u64 },
///     Withdrew { amount: u64, balance: u64 },
///     Closed,
/// }
///
/// #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
/// pub struct AccountSummary {
///     pub owner: String,
///     pub balance: u64,
///     pub tx_count: u64,
/// }
///
/// #[projection(name = "account_summary")]
/// impl AccountSummary {
///     #[on(BankEvent::AccountOpened)]
///     fn opened(&mut self, owner: &str) {
///         self.owner = owner.to_owned();
///     }
///
///     #[on(BankEvent::Deposited)]
///     fn deposited(&mut self, balance: &u64) {
///         self.balance = *balance;
///         self.tx_count += 1;
///     }
///
///     // A handler may fail: the error fails the event (`ProjectionError::Handler`), which
///     // the runner retries and then parks as a dead letter.
///     #[on(BankEvent::Withdrew)]
///     fn withdrew(&mut self, balance: &u64) -> Result<(), String> {
///         if self.tx_count == 0 {
///             return Err("a withdrawal before any deposit".to_owned());
///         }
///         self.balance = *balance;
///         self.tx_count += 1;
///         Ok(())
///     }
///
///     // `delete`: the document is removed after the handler.
///     #[on(BankEvent::Closed, delete)]
///     fn closed(&mut self) {}
///
///     // Methods without `#[on]` are left alone.
///     pub fn is_empty(&self) -> bool {
///         self.balance == 0
///     }
/// }
///
/// // What a store does with each event it commits:
/// let projection = ViewProjection::<AccountSummary>::new();
/// let stream = std::sync::Arc::from("account-a1");
/// let event = |e: &BankEvent| {
///     let new = NewEvent::encode(e, &JsonCodec, Metadata::default()).unwrap();
///     cqrs_core::store::recorded_from_new(&stream, &new, 1, 1, std::time::SystemTime::now())
/// };
///
/// let deposited = event(&BankEvent::Deposited { amount: 5, balance: 5 });
/// assert!(projection.handles(&deposited));
/// assert_eq!(projection.key(&deposited).unwrap(), "a1");
/// let DocChange::Put(doc) = projection.apply(None, &deposited).unwrap() else { panic!() };
/// let summary: AccountSummary = serde_json::from_slice(&doc).unwrap();
/// assert_eq!((summary.balance, summary.tx_count), (5, 1));
///
/// let closed = event(&BankEvent::Closed);
/// assert_eq!(projection.apply(Some(&doc), &closed).unwrap(), DocChange::Delete);
/// assert_eq!(AccountSummary::NAME, "account_summary");
/// ```
///
/// # The attribute
///
/// | form | meaning |
/// |---|---|
/// | `#[projection(name = "..")]` | required: names the view's documents, checkpoint and dead letters; `^[a-z_][a-z0-9_]{0,62}$` |
/// | `#[projection(name = "..", key = function)]` | the document key of an event: `fn(&RecordedEvent) -> String` or `-> Result<String, ProjectionError>` (default: the aggregate id, the part of the stream id after the first `-`) |
/// | `#[on(Enum::Variant)]` | the method handles this variant; the first event of a key creates its document from `Default` |
/// | `#[on(Enum::Variant, delete)]` | … and the document is removed after the handler |
///
/// A handler takes `&mut self`, then `&` borrows of the variant's fields by name, and
/// returns nothing or `Result<(), E>` with `E: Display`. A method may carry several
/// `#[on]` (then it takes only fields all those variants have); a variant has at most one
/// handler per view.
///
/// # What it generates
///
/// Besides the `impl` block (without the `#[on]` attributes), `impl View`:
///
/// * `handles_type`: true for the stored type names of the handled variants (their
///   current names and `#[event(alias = "..")]` names) and for the `removed` types of their
///   enums (an upcast may turn those into handled variants). The store skips every other
///   event **without decoding it**.
/// * `apply_event`: decodes the event with the enum whose names matched, through its upcast
///   chain (every event of a split is applied, in order), and calls the handler of each
///   resulting event; variants without a handler change nothing. A payload that does not
///   decode fails with `ProjectionError::Decode`.
///
/// Events reach a view by their stored type name alone, so two enums of one view must not
/// share a stored type name: the macro rejects a view where a handled variant's name is
/// also a stored name of another of its enums. (Aggregates outside the view that store the
/// same type names would be decoded as the view's enum: give their events distinct names.)
///
/// # Compile-time errors
///
/// A missing or invalid `name`, an unknown key, an `#[on]` without `Enum::Variant` or with
/// an unknown flag, a variant handled twice, a handler without `&mut self`, a parameter that
/// is not a plain name borrowing its field, a generic or `async` handler, and the attribute
/// on anything but an inherent `impl` block are reported by the macro, all at once. rustc
/// reports, at the offending token, an enum or variant that does not exist, a parameter
/// naming a field the variant does not have or borrowing it as the wrong type, a return
/// type that is neither `()` nor `Result<(), impl Display>`, a `key` function of the wrong
/// signature, and a view type without `Default`, `Serialize` or `Deserialize`.
#[proc_macro_attribute]
pub fn projection(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::projection::expand(args.into(), syn::parse_macro_input!(input as syn::Item)).into()
}
