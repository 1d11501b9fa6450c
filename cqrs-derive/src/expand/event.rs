//! `#[derive(Event)]` → `impl DomainEvent` and `impl Variants`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

use syn::DeriveInput;

use super::{any_pattern, suggested_signature, variants_impl};
use crate::ast::Enum;
use crate::attr;
use crate::check;
use crate::ctxt::Ctxt;

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let Some(en) = Enum::from_ast(&cx, input, "Event") else {
        return cx.into_compile_errors();
    };
    attr::reject_misplaced(
        &cx,
        &input.attrs,
        attr::EVENT,
        "on the enum: put it on a variant",
    );
    check::serde_representation(&cx, &en, "Event");

    let mut names: Vec<(String, TokenStream)> = Vec::new();
    let mut versions = Vec::new();
    for v in &en.variants {
        for f in &v.fields {
            attr::reject_misplaced(
                &cx,
                &f.original.attrs,
                attr::EVENT,
                "on a field: put it on the variant",
            );
        }
        let attrs = attr::event_variant(&cx, &v.original.attrs);
        let version = attrs
            .version
            .as_ref()
            .and_then(|l| l.base10_parse::<u32>().ok())
            .unwrap_or(1);
        versions.push(version);
        match attrs.name {
            Some(lit) => names.push((lit.value(), lit.to_token_stream())),
            None => names.push((v.ident.to_string(), v.ident.to_token_stream())),
        }
    }
    check::unique_event_types(&cx, &names);

    let ident = en.ident;
    let enum_name = ident.to_string();
    let type_names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let patterns: Vec<TokenStream> = en.variants.iter().map(any_pattern).collect();
    let indices = en.variants.iter().map(|v| v.index);
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

            #[allow(unreachable_code)] // an enum without variants knows no type name
            fn decode<__C: ::cqrs_core::Codec>(
                __codec: &__C,
                __event_type: &str,
                __schema_version: u32,
                __payload: &[u8],
            ) -> ::core::result::Result<Self, ::cqrs_core::DecodeReason> {
                let (__index, __current): (u32, u32) = match __event_type {
                    #(#type_names => (#indices, #versions),)*
                    _ => {
                        return ::core::result::Result::Err(
                            ::cqrs_core::__private::unknown_event_type::<Self>(#enum_name),
                        );
                    }
                };
                if __schema_version != __current {
                    return ::core::result::Result::Err(
                        ::cqrs_core::DecodeReason::UnsupportedSchemaVersion {
                            found: __schema_version,
                            current: __current,
                        },
                    );
                }
                ::cqrs_core::Codec::decode_event::<Self>(__codec, __index, __payload)
                    .map_err(::cqrs_core::DecodeReason::Payload)
            }
        }

        #variants
    };
    let errors = cx.into_compile_errors();
    quote!(#expanded #errors)
}
