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
