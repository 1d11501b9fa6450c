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
    let invariants = attr::invariants(&cx, &input.attrs);
    let fields: Vec<&syn::Field> = match &input.data {
        Data::Struct(s) => s.fields.iter().collect(),
        Data::Enum(e) => e.variants.iter().flat_map(|v| v.fields.iter()).collect(),
        Data::Union(_) => Vec::new(),
    };
    for field in fields {
        for name in [attr::INVARIANT, attr::AGGREGATE] {
            attr::reject_misplaced(
                &cx,
                &field.attrs,
                name,
                "on a field: put it on the aggregate type, naming a method that checks the field",
            );
        }
    }
    if let Data::Enum(e) = &input.data {
        for v in &e.variants {
            for name in [attr::INVARIANT, attr::AGGREGATE] {
                attr::reject_misplaced(
                    &cx,
                    &v.attrs,
                    name,
                    "on a variant: put it on the aggregate type",
                );
            }
        }
    }
    if seen {
        let missing: Vec<String> = [
            ("command", &attrs.command),
            ("event", &attrs.event),
            ("error", &attrs.error),
        ]
        .into_iter()
        .filter(|(key, value)| value.is_none() && !attrs.suggested.contains(key))
        .map(|(key, _)| format!("`{key} = ..`"))
        .collect();
        if !missing.is_empty() {
            let at = input
                .attrs
                .iter()
                .rfind(|a| a.path().is_ident(attr::AGGREGATE));
            cx.error(
                at,
                format!(
                    "`#[aggregate(..)]` is missing {}: name the aggregate's command, event \
                     and error types",
                    missing.join(", ")
                ),
            );
        }
    } else {
        cx.error(
            ident,
            "`#[derive(Aggregate)]` needs `#[aggregate(command = .., event = .., error = ..)]` \
             naming the command, event and error types",
        );
    }

    // A variant path needs the event type as a plain path.
    let event_path = attrs
        .event
        .as_ref()
        .filter(|t| matches!(t, syn::Type::Path(p) if p.qself.is_none()));
    if let (Some(event), None) = (&attrs.event, event_path) {
        let gws = invariants
            .iter()
            .find(|i| matches!(i.kind, attr::InvariantForm::GivenWhenShall { .. }));
        if let Some(rule) = gws {
            cx.error(
                event,
                format!(
                    "the Given/When/Shall invariant `{}` matches the event's variants, so \
                     `event = ..` must name the event enum by its path (e.g. `event = \
                     AccountEvent`), not through a qualified or generic type",
                    rule.name()
                ),
            );
        }
    }
    let invariant_items =
        super::invariant::items(&cx, &invariants, event_path, attrs.enforce_invariants);

    // A type that could not be read is replaced by an error type, made from the first error:
    // the impl still exists, and code using the aggregate (such as `#[aggregate_impl]`)
    // type-checks against it silently instead of failing at every use.
    let mut errors = cx.into_errors();
    let mut first_missing: Option<TokenStream> = None;
    let mut resolve = |value: Option<syn::Type>, assoc: TokenStream| match value {
        Some(ty) => quote!(#ty),
        None => match &first_missing {
            Some(earlier) => quote!(<Self as ::cqrs_core::Aggregate>::#earlier),
            None => {
                first_missing = Some(assoc);
                let error = if errors.is_empty() {
                    syn::Error::new_spanned(ident, "`#[aggregate(..)]` is incomplete")
                } else {
                    errors.remove(0)
                }
                .to_compile_error();
                quote!([(); #error])
            }
        },
    };
    let command = resolve(attrs.command, quote!(Command));
    let event = resolve(attrs.event, quote!(Event));
    let error = resolve(attrs.error, quote!(Error));
    let services = attrs.services.map_or_else(|| quote!(()), |s| quote!(#s));
    let name = attrs.name.map_or_else(|| ident.to_string(), |n| n.value());
    // The parsed number, not the literal: `2u8` must still make a `u32`.
    let snapshot_version = attrs
        .snapshot_version
        .and_then(|v| v.base10_parse::<u32>().ok())
        .map(|v| quote!(const SNAPSHOT_VERSION: u32 = #v;));
    let expanded = quote! {
        #[automatically_derived]
        impl ::cqrs_core::Aggregate for #ident {
            const TYPE_NAME: &'static str = #name;
            #snapshot_version
            #invariant_items
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
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote!(#expanded #(#errors)*)
}
