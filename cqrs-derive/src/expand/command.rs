//! `#[derive(Command)]` → `impl Command` and `impl Variants`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use super::{any_pattern, suggested_signature, variants_impl};
use crate::ast::Enum;
use crate::attr;
use crate::ctxt::Ctxt;
use crate::util::type_to_string;

pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let Some(en) = Enum::from_ast(&cx, input, "Command") else {
        return cx.into_compile_errors();
    };
    attr::reject_misplaced(
        &cx,
        &input.attrs,
        attr::COMMAND,
        "on the enum: `#[command(id)]` goes on a field",
    );

    let ident = en.ident;
    let enum_name = ident.to_string();
    let mut id_arms = Vec::new();
    for v in &en.variants {
        attr::reject_misplaced(
            &cx,
            &v.original.attrs,
            attr::COMMAND,
            "on a variant: `#[command(id)]` goes on a field",
        );
        let ids: Vec<_> = v
            .fields
            .iter()
            .filter(|f| attr::command_field_is_id(&cx, &f.original.attrs))
            .collect();
        if let [first, rest @ ..] = ids.as_slice() {
            for extra in rest {
                let at = extra
                    .original
                    .attrs
                    .iter()
                    .find(|a| a.path().is_ident(attr::COMMAND));
                cx.error(
                    at,
                    format!(
                        "variant `{}` marks two fields `#[command(id)]`: one field names the aggregate \
                         instance, remove this one",
                        v.ident
                    ),
                );
            }
            let variant = v.ident;
            let member = &first.member;
            id_arms.push(quote! {
                Self::#variant { #member: __id, .. } => ::core::option::Option::Some(
                    ::std::string::ToString::to_string(__id),
                ),
            });
        }
    }
    let aggregate_id = if id_arms.is_empty() {
        quote!()
    } else {
        let wildcard =
            (id_arms.len() < en.variants.len()).then(|| quote!(_ => ::core::option::Option::None,));
        quote! {
            fn aggregate_id(&self) -> ::core::option::Option<::std::string::String> {
                match self { #(#id_arms)* #wildcard }
            }
        }
    };
    let patterns = en.variants.iter().map(any_pattern);
    let names = en.variants.iter().map(|v| v.ident.to_string());
    let missing = |v: &crate::ast::Variant<'_>| {
        format!(
            "command variant `{enum_name}::{v}` has no `#[handle]` method: add `#[handle] fn {sig}` \
             returning its events to the `#[aggregate_impl]` block, or name the variant on an \
             existing method with `#[handle({v})]`",
            v = v.ident,
            sig = suggested_signature(v, "&self", false),
        )
    };
    let variants = variants_impl(&en, missing);
    let fields = handler_fields(&en);
    let expanded = quote! {
        #[automatically_derived]
        impl ::cqrs_core::Command for #ident {
            #[inline]
            fn command_name(&self) -> &'static str {
                match *self { #(#patterns => #names,)* }
            }
            #aggregate_id
        }

        #variants
        #fields
    };
    let errors = cx.into_compile_errors();
    quote!(#expanded #errors)
}

/// The fields of each variant, read by the checks `#[aggregate_impl]` generates: a
/// `#[handle]` method must take every field of its variant, and this says, for each
/// field, what to write when one does not.
///
/// `(variant, [(parameter name, message if the handler lacks it)])`. An inherent constant
/// because `cqrs_core::__private::VariantInfo` has no room for fields.
fn handler_fields(en: &Enum<'_>) -> TokenStream {
    let ident = en.ident;
    let enum_name = ident.to_string();
    let rows = en.variants.iter().map(|v| {
        let variant = v.ident.to_string();
        let fields = v.fields.iter().map(|f| {
            let param = f.param_name();
            let message = format!(
                "the `#[handle]` method of `{enum_name}::{variant}` does not take its field \
                 `{param}`: add the parameter `{param}: {ty}` (a handler receives every field \
                 of its command)",
                ty = type_to_string(f.ty),
            );
            quote!((#param, #message))
        });
        quote!((#variant, &[#(#fields),*]))
    });
    quote! {
        #[automatically_derived]
        impl #ident {
            #[doc(hidden)]
            #[allow(unreachable_pub)]
            pub const __CQRS_HANDLER_FIELDS: ::cqrs_core::__private::HandlerFields = &[#(#rows),*];
        }
    }
}
