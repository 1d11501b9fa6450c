//! Code generation, one file per generated trait.

pub(crate) mod aggregate;
pub(crate) mod aggregate_impl;
pub(crate) mod command;
pub(crate) mod event;
pub(crate) mod invariant;
pub(crate) mod projection;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Enum, Variant};
use crate::util::{camel_to_snake, type_to_string};

/// `impl Variants`: the variant names and, for each, the message `#[aggregate_impl]`
/// reports when no method serves it.
fn variants_impl(input: &Enum<'_>, missing: impl Fn(&Variant<'_>) -> String) -> TokenStream {
    let ident = input.ident;
    let infos = input.variants.iter().map(|v| {
        let name = v.ident.to_string();
        let message = missing(v);
        quote! {
            ::cqrs_core::__private::VariantInfo { name: #name, missing: #message }
        }
    });
    quote! {
        #[automatically_derived]
        impl ::cqrs_core::__private::Variants for #ident {
            const VARIANTS: &'static [::cqrs_core::__private::VariantInfo] = &[#(#infos),*];
        }
    }
}

/// The signature a user should write for a variant: `deposit(&self, amount: u64)`.
fn suggested_signature(v: &Variant<'_>, receiver: &str, borrow: bool) -> String {
    let mut sig = format!("{}({receiver}", camel_to_snake(&v.ident.to_string()));
    for f in &v.fields {
        let amp = if borrow { "&" } else { "" };
        sig.push_str(&format!(
            ", {}: {amp}{}",
            f.param_name(),
            type_to_string(f.ty)
        ));
    }
    sig.push(')');
    sig
}

/// `Self::Variant { .. }`, which matches any variant shape.
fn any_pattern(v: &Variant<'_>) -> TokenStream {
    let ident = v.ident;
    quote!(Self::#ident { .. })
}
pub(crate) mod upcast;
