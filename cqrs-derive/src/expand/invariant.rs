//! The invariant items of `impl Aggregate`: the list of rules, the gate computed before an
//! event, and the check after it.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::attr::{InvariantAttr, InvariantForm};
use crate::ctxt::Ctxt;

/// A call of the predicate method `name` on `self`, through a `fn(&Self) -> bool` binding
/// so that an unknown method or a wrong signature is reported at the name in the attribute.
fn predicate(name: &syn::Ident) -> TokenStream {
    quote_spanned! {name.span()=>
        ({
            let __predicate: fn(&Self) -> bool = Self::#name;
            __predicate
        })(self)
    }
}

pub(super) fn items(
    cx: &Ctxt,
    invariants: &[InvariantAttr],
    event: Option<&syn::Type>,
    enforce: bool,
) -> TokenStream {
    let enforce = enforce.then(|| {
        quote!(
            const ENFORCE_INVARIANTS: bool = true;
        )
    });
    if invariants.is_empty() {
        return quote!(#enforce);
    }
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    for inv in invariants {
        let name = inv.name();
        if seen.insert(name.to_string(), name).is_some() {
            cx.error(
                name,
                format!(
                    "two invariants are named `{name}`: the name identifies the rule in \
                     failures, so give each rule its own method"
                ),
            );
        }
    }
    let gws = invariants
        .iter()
        .filter(|i| matches!(i.kind, InvariantForm::GivenWhenShall { .. }))
        .count();
    if gws > 64 {
        cx.error(
            invariants[0].name(),
            "an aggregate declares at most 64 Given/When/Shall invariants",
        );
    }

    let mut list = Vec::new();
    let mut gate = Vec::new();
    let mut check = Vec::new();
    let mut rule_index = 0usize;
    for (k, inv) in invariants.iter().enumerate() {
        let name = inv.name().to_string();
        let rule = &inv.rule;
        let violation = quote! {
            return ::core::result::Result::Err(
                ::cqrs_core::invariant::InvariantViolation::of(
                    &<Self as ::cqrs_core::Aggregate>::INVARIANTS[#k],
                ),
            );
        };
        match &inv.kind {
            InvariantForm::Always { predicate: p } => {
                list.push(quote! {
                    ::cqrs_core::invariant::Invariant {
                        name: #name,
                        rule: #rule,
                        kind: ::cqrs_core::invariant::InvariantKind::Always,
                    }
                });
                let call = predicate(p);
                check.push(quote!(if !#call { #violation }));
            }
            InvariantForm::GivenWhenShall { given, when, shall } => {
                let given_name = match given {
                    Some(g) => {
                        let g = g.to_string();
                        quote!(::core::option::Option::Some(#g))
                    }
                    None => quote!(::core::option::Option::None),
                };
                let when_names: Vec<String> = when.iter().map(ToString::to_string).collect();
                list.push(quote! {
                    ::cqrs_core::invariant::Invariant {
                        name: #name,
                        rule: #rule,
                        kind: ::cqrs_core::invariant::InvariantKind::GivenWhenShall {
                            given: #given_name,
                            when: &[#(#when_names),*],
                        },
                    }
                });
                let i = rule_index;
                rule_index += 1;
                // The event's variants, spanned at their names in the attribute: an
                // unknown one is reported there.
                if let Some(event) = event {
                    let patterns = when
                        .iter()
                        .map(|v| quote_spanned!(v.span()=> #event::#v { .. }));
                    let precondition = match given {
                        Some(g) => predicate(g),
                        None => quote!(true),
                    };
                    gate.push(quote! {
                        if ::core::matches!(__event, #(#patterns)|*) && #precondition {
                            __gate = __gate.with(#i);
                        }
                    });
                }
                let call = predicate(shall);
                check.push(quote!(if __gate.has(#i) && !#call { #violation }));
            }
        }
    }
    let gate_fn = (!gate.is_empty()).then(|| {
        quote! {
            fn invariant_gate(&self, __event: &Self::Event) -> ::cqrs_core::invariant::InvariantGate {
                let mut __gate = ::cqrs_core::invariant::InvariantGate::NONE;
                #(#gate)*
                __gate
            }
        }
    });
    quote! {
        #enforce
        const INVARIANTS: &'static [::cqrs_core::invariant::Invariant] = &[#(#list),*];

        #gate_fn

        #[allow(unused_variables)]
        fn check_invariants(
            &self,
            __gate: ::cqrs_core::invariant::InvariantGate,
        ) -> ::core::result::Result<(), ::cqrs_core::invariant::InvariantViolation> {
            #(#check)*
            ::core::result::Result::Ok(())
        }
    }
}
