//! `#[derive(Event)]` → `impl DomainEvent` and `impl Variants`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use syn::DeriveInput;

use super::{any_pattern, suggested_signature, upcast, variants_impl};
use crate::ast::Enum;
use crate::attr;
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let Some(en) = Enum::from_ast(&cx, input, "Event") else {
        return cx.into_compile_errors();
    };
    let removed = attr::event_enum(&cx, &input.attrs);
    attr::reject_misplaced(
        &cx,
        &input.attrs,
        attr::UPCAST,
        "on the enum: an upcast step belongs to the variant it lifts",
    );
    check::serde_representation(&cx, &en, "Event");

    // Every name read from storage, for the uniqueness check: current names, aliases,
    // removed names.
    let mut names: Vec<(String, TokenStream)> = Vec::new();
    let mut stored_names: Vec<Vec<String>> = Vec::new();
    let mut aliases: Vec<Vec<String>> = Vec::new();
    let mut versions = Vec::new();
    let mut decoders = Vec::new();
    for v in &en.variants {
        for f in &v.fields {
            for (attr_name, what) in [
                (attr::EVENT, "on a field: put it on the variant"),
                (attr::UPCAST, "on a field: put it on the variant"),
            ] {
                attr::reject_misplaced(&cx, &f.original.attrs, attr_name, what);
            }
        }
        let attrs = attr::event_variant(&cx, &v.original.attrs);
        let version = attrs
            .version
            .as_ref()
            .and_then(|l| l.base10_parse::<u32>().ok())
            .unwrap_or(1);
        versions.push(version);
        let name = match &attrs.name {
            Some(lit) => (lit.value(), lit.to_token_stream()),
            None => (v.ident.to_string(), v.ident.to_token_stream()),
        };
        let mut these = vec![name.0.clone()];
        names.push(name);
        for alias in &attrs.aliases {
            names.push((alias.value(), alias.to_token_stream()));
            these.push(alias.value());
        }
        aliases.push(these[1..].to_vec());
        stored_names.push(these);
        let steps = attr::upcast_steps(&cx, &v.original.attrs);
        // With an unreadable version, checking the chain against a guess would only add
        // misleading errors.
        let chain = if attrs.version_invalid {
            Vec::new()
        } else {
            check::upcast_chain(&cx, v.ident, version, &steps).unwrap_or_default()
        };
        decoders.push(upcast::variant_decoder(v.index, version, &chain));
    }
    for r in &removed {
        names.push((r.name.value(), r.name.to_token_stream()));
    }
    check::unique_event_types(&cx, &names);

    let ident = en.ident;
    let enum_name = ident.to_string();
    // The current name of each variant comes first among its stored names.
    let type_names: Vec<&str> = stored_names.iter().map(|n| n[0].as_str()).collect();
    let patterns: Vec<TokenStream> = en.variants.iter().map(any_pattern).collect();
    let removed_names: Vec<String> = removed.iter().map(|r| r.name.value()).collect();
    let removed_decoders = removed.iter().map(upcast::removed_decoder);
    let all_stored: Vec<&str> = stored_names
        .iter()
        .flatten()
        .chain(&removed_names)
        .map(String::as_str)
        .collect();
    let schema_version = if versions.iter().all(|&v| v == 1) {
        quote!(1)
    } else {
        quote!(match *self { #(#patterns => #versions,)* })
    };
    let missing = |v: &crate::ast::Variant<'_>| {
        format!(
            "event variant `{enum_name}::{v}` has no `#[apply]` method: add `#[apply] fn {sig} {{ .. }}` \
             to the `#[aggregate_impl]` block, or name the variant on an existing method with \
             `#[apply({v})]`",
            v = v.ident,
            sig = suggested_signature(v, "&mut self", true),
        )
    };
    let variants = variants_impl(&en, missing);

    let expanded = quote! {
        #[automatically_derived]
        impl ::cqrs_core::DomainEvent for #ident {
            const EVENT_TYPES: &'static [&'static str] = &[#(#type_names),*];

            #[inline]
            fn event_type(&self) -> &'static str {
                match *self { #(#patterns => #type_names,)* }
            }

            #[inline]
            fn schema_version(&self) -> u32 {
                #schema_version
            }

            const STORED_TYPES: &'static [&'static str] = &[#(#all_stored),*];

            fn aliases_of(__event_type: &str) -> &'static [&'static str] {
                match __event_type {
                    #(#type_names => &[#(#aliases),*],)*
                    _ => &[],
                }
            }

            #[allow(unreachable_code, unused_variables, clippy::let_unit_value)]
            fn decode_payload<__C: ::cqrs_core::Codec, __F: ::core::ops::FnMut(Self)>(
                __codec: &__C,
                __event_type: &str,
                __schema_version: u32,
                __payload: ::cqrs_core::upcast::Payload<'_>,
                __sink: &mut __F,
            ) -> ::core::result::Result<(), ::cqrs_core::DecodeReason> {
                match __event_type {
                    #(#(#stored_names)|* => { #decoders })*
                    #(#removed_names => { #removed_decoders })*
                    _ => ::core::result::Result::Err(
                        ::cqrs_core::__private::unknown_event_type::<Self>(#enum_name),
                    ),
                }
            }
        }

        #variants
    };
    let errors = cx.into_compile_errors();
    quote!(#expanded #errors)
}
