//! `#[derive(Aggregate)]` → `impl Aggregate`, forwarding to the dispatch that
//! `#[aggregate_impl]` generates.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput};

use crate::attr;
use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let ident = &input.ident;
    if let Data::Union(_) = input.data {
        cx.error(
            ident,
            "`#[derive(Aggregate)]` applies to a struct or an enum holding the aggregate's state",
        );
    }
    if !input.generics.params.is_empty() {
        cx.error(
            &input.generics,
            "`#[derive(Aggregate)]` does not support generic types",
        );
    }
    let (attrs, seen) = attr::aggregate(&cx, &input.attrs);
    if !seen {
        cx.error(
            ident,
            "`#[derive(Aggregate)]` needs `#[aggregate(command = .., event = .., error = ..)]` \
             naming the command, event and error types",
        );
        return cx.into_compile_errors();
    }
    let mut missing = Vec::new();
    for (key, value) in [
        ("command", &attrs.command),
        ("event", &attrs.event),
        ("error", &attrs.error),
    ] {
        if value.is_none() {
            missing.push(key);
        }
    }
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|k| format!("`{k} = ..`"))
            .collect::<Vec<_>>()
            .join(", ");
        let at = input
            .attrs
            .iter()
            .find(|a| a.path().is_ident(attr::AGGREGATE));
        match at {
            Some(at) => cx.error(at, format!("`#[aggregate(..)]` is missing {list}")),
            None => cx.error(ident, format!("`#[aggregate(..)]` is missing {list}")),
        }
    }
    let (Some(command), Some(event), Some(error)) = (attrs.command, attrs.event, attrs.error)
    else {
        return cx.into_compile_errors();
    };
    let services = attrs.services.map_or_else(|| quote!(()), |s| quote!(#s));
    let name = attrs.name.map_or_else(|| ident.to_string(), |n| n.value());
    let expanded = quote! {
        #[automatically_derived]
        impl ::cqrs_core::Aggregate for #ident {
            const TYPE_NAME: &'static str = #name;
            type Command = #command;
            type Event = #event;
            type Error = #error;
            type Services = #services;

            #[inline]
            fn handle<'__a>(
                &'__a self,
                __command: Self::Command,
                __services: &'__a Self::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<::std::vec::Vec<Self::Event>, Self::Error>,
            > + ::core::marker::Send + '__a {
                <Self as ::cqrs_core::__private::Dispatch>::dispatch_handle(self, __command, __services)
            }

            #[inline]
            fn apply(&mut self, __event: &Self::Event) {
                <Self as ::cqrs_core::__private::Dispatch>::dispatch_apply(self, __event)
            }
        }
    };
    let errors = cx.into_compile_errors();
    quote!(#expanded #errors)
}
