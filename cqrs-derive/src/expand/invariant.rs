//! The invariant items of `impl Aggregate`: the list of rules, the gate computed before an
//! event, and the check after it.

use std::collections::HashMap;

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};

use syn::ext::IdentExt;

use crate::attr::{InvariantAttr, InvariantForm};
use crate::ctxt::Ctxt;

/// `cqrs_core::invariant::InvariantGate::MAX_RULES`: the gate has a bit per rule.
const MAX_RULES: usize = 64;

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

/// `tokens` located at `at`, each still resolved where it was written: the event enum's
/// path in a `when` pattern, so that a diagnostic about the pattern (a variant named twice)
/// points at the variant alone rather than from the `#[aggregate(event = ..)]` to the
/// `#[invariant(when = ..)]`.
fn relocate(tokens: TokenStream, at: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            let span = tt.span().located_at(at);
            if let TokenTree::Group(g) = &tt {
                let mut group = Group::new(g.delimiter(), relocate(g.stream(), at));
                group.set_span(span);
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
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
        if seen.insert(name.unraw().to_string(), name).is_some() {
            cx.error(
                name,
                format!(
                    "two invariants are named `{name}`: the name identifies the rule in \
                     failures, so give each rule its own method"
                ),
            );
        }
    }
    // The first rule past the limit is reported, at its name.
    let past_limit = invariants
        .iter()
        .filter(|i| matches!(i.kind, InvariantForm::GivenWhenShall { .. }))
        .nth(MAX_RULES);
    if let Some(inv) = past_limit {
        cx.error(
            inv.name(),
            format!(
                "an aggregate declares at most {MAX_RULES} Given/When/Shall invariants, and this \
                 is one more: fold rules with the same `given` and `when` into one `shall` \
                 method"
            ),
        );
    }

    let mut list = Vec::new();
    let mut gate = Vec::new();
    let mut check = Vec::new();
    let mut rule_index = 0usize;
    for (k, inv) in invariants.iter().enumerate() {
        let name = inv.name().unraw().to_string();
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
                        let g = g.unraw().to_string();
                        quote!(::core::option::Option::Some(#g))
                    }
                    None => quote!(::core::option::Option::None),
                };
                let when_names: Vec<String> = when.iter().map(|v| v.unraw().to_string()).collect();
                for (j, v) in when.iter().enumerate() {
                    if when[..j].contains(v) {
                        cx.error(v, format!("`{v}` is named twice in `when`: name it once"));
                    }
                }

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
                    let patterns = when.iter().map(|v| {
                        let event = relocate(event.to_token_stream(), v.span());
                        quote_spanned!(v.span()=> #event::#v { .. })
                    });
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
