//! The decoder of one event type: its current-version fast path and its upcast chain.
//!
//! For each stored version `k` below the current one, the arm for `k` is straight-line
//! code through every step from `k` up: consecutive typed steps hand typed values to one
//! another (no JSON in between), a JSON step takes a `serde_json::Value` and may split or
//! drop the event. The current version decodes the stored bytes directly into the enum.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::attr::{Removed, StepKind, UpcastStep};
use crate::util::type_to_string;

/// What the code of an arm holds after some steps.
enum Held {
    /// The payload as stored, not yet read.
    Stored,
    /// A `serde_json::Value` in the named local.
    Json(syn::Ident),
    /// A typed value (the next step's source shape) in the named local.
    Typed(syn::Ident),
    /// The finished event in the named local.
    Event(syn::Ident),
}

fn describe(step: &UpcastStep<'_>) -> String {
    match &step.kind {
        StepKind::Typed {
            shape, with: None, ..
        } => format!("typed `{}`", type_to_string(shape)),
        StepKind::Typed {
            shape,
            with: Some(f),
            ..
        } => format!(
            "typed `{}` with `{}`",
            type_to_string(shape),
            quote!(#f).to_string().replace(' ', "")
        ),
        StepKind::Json { func } => {
            format!("json `{}`", quote!(#func).to_string().replace(' ', ""))
        }
    }
}

/// `tokens` with every token at `span`, so that rustc reports a type error in generated
/// code at the user's path or type in the attribute rather than at the derive.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// The JSON function `func` as a `fn(Value) -> _`, so that a wrong signature is reported at
/// `func`, with the signature expected, rather than as an unmet bound inside `cqrs_core`.
fn json_fn(func: &syn::Path) -> TokenStream {
    quote_spanned! {func.span()=>
        {
            let __step: fn(::cqrs_core::upcast::Value) -> _ = #func;
            __step
        }
    }
}

/// `.map_err(..)?` turning a failure of `step` into `DecodeReason::Upcast`.
fn fail(step: &UpcastStep<'_>) -> TokenStream {
    let (from, to, what) = (step.from, step.to, describe(step));
    quote! {
        .map_err(|__e| ::cqrs_core::__private::step_failed(#from, #to, #what, __e))?
    }
}

/// The body of the `match` arm for one variant's stored names.
pub(super) fn variant_decoder(index: u32, version: u32, chain: &[&UpcastStep<'_>]) -> TokenStream {
    let current = quote! {
        __sink(::cqrs_core::upcast::Payload::read_variant::<Self, __C>(__payload, __codec, #index)?);
        ::core::result::Result::Ok(())
    };
    let Some(first) = chain.first() else {
        return quote! {
            if __schema_version != #version {
                return ::core::result::Result::Err(
                    ::cqrs_core::DecodeReason::UnsupportedSchemaVersion {
                        found: __schema_version,
                        oldest: #version,
                        current: #version,
                    },
                );
            }
            #current
        };
    };
    let oldest = first.from;
    let arms = (0..chain.len()).map(|start| {
        let k = chain[start].from;
        let body = arm(index, version, &chain[start..]);
        quote!(#k => { #body })
    });
    quote! {
        match __schema_version {
            #version => { #current }
            #(#arms)*
            __found => ::core::result::Result::Err(
                ::cqrs_core::DecodeReason::UnsupportedSchemaVersion {
                    found: __found,
                    oldest: #oldest,
                    current: #version,
                },
            ),
        }
    }
}

/// Straight-line code lifting a payload through `steps` (the first starts at the stored
/// version, the last ends at the current one) and handing the event to the sink.
fn arm(index: u32, version: u32, steps: &[&UpcastStep<'_>]) -> TokenStream {
    let mut code = quote!(let __depth = __payload.depth(););
    let mut held = Held::Stored;
    for (i, step) in steps.iter().enumerate() {
        let fail = fail(step);
        let next = steps.get(i + 1);
        match &step.kind {
            StepKind::Typed { shape, with, into } => {
                let source = format_ident!("__v{}", step.from);
                let read = match &held {
                    Held::Stored => quote_spanned! {shape.span()=>
                        let #source: #shape = ::cqrs_core::upcast::Payload::read::<#shape, __C>(__payload, __codec) #fail;
                    },
                    Held::Json(v) => quote_spanned! {shape.span()=>
                        let #source: #shape = ::cqrs_core::upcast::from_json::<#shape>(#v) #fail;
                    },
                    // The previous typed step produced this step's shape.
                    Held::Typed(v) => quote!(let #source: #shape = #v;),
                    Held::Event(_) => unreachable!("no step follows the current version"),
                };
                code.extend(read);
                let target = match (next.map(|n| &n.kind), into) {
                    (None, _) => quote!(Self),
                    (Some(StepKind::Typed { shape, .. }), _) => quote!(#shape),
                    (Some(StepKind::Json { .. }), Some(into)) => quote!(#into),
                    // Reported by the chain check; it does not get here.
                    (Some(StepKind::Json { .. }), None) => quote!(Self),
                };
                let out = format_ident!("__v{}", step.to);
                // A missing `From` or a `with` of the wrong type is this step's mistake: the
                // target is spanned at this step's `from` type or `with` path, not at the
                // derive (for `Self`) or at the next step's `from`. `with` is bound as a
                // `fn(Shape) -> Target` so that a mismatch shows the signature expected.
                let convert = match with {
                    Some(f) => {
                        let target = respan(target, f.span());
                        quote_spanned! {f.span()=>
                            let __with: fn(#shape) -> #target = #f;
                            let #out: #target = __with(#source);
                        }
                    }
                    None => {
                        let target = respan(target, shape.span());
                        quote_spanned! {shape.span()=>
                            let #out: #target = <#target as ::core::convert::From<#shape>>::from(#source);
                        }
                    }
                };
                code.extend(convert);
                held = match next.map(|n| &n.kind) {
                    None => Held::Event(out),
                    Some(StepKind::Typed { .. }) => Held::Typed(out),
                    Some(StepKind::Json { .. }) => {
                        let json = format_ident!("__json{}", step.to);
                        // An `into` type that is not `Serialize` is reported at `into = ..`.
                        let to_json = match into {
                            Some(into) => quote_spanned! {into.span()=>
                                ::cqrs_core::upcast::to_json::<#into>(&#out)
                            },
                            None => quote!(::cqrs_core::upcast::to_json(&#out)),
                        };
                        code.extend(quote! {
                            let #json = #to_json #fail;
                        });
                        Held::Json(json)
                    }
                };
            }
            StepKind::Json { func } => {
                let input = format_ident!("__json{}", step.from);
                match &held {
                    Held::Stored => code.extend(quote! {
                        let #input = ::cqrs_core::upcast::Payload::into_json::<__C>(__payload, __codec) #fail;
                    }),
                    Held::Json(v) if *v == input => {}
                    Held::Json(v) => code.extend(quote!(let #input = #v;)),
                    Held::Typed(_) | Held::Event(_) => {
                        unreachable!("a typed step before a JSON step hands over JSON")
                    }
                }
                let out = format_ident!("__json{}", step.to);
                let at = func.span();
                let func = json_fn(func);
                let call = quote_spanned! {at=>
                    ::cqrs_core::__private::json_step(#func, #input)
                };
                code.extend(quote! {
                    let #out = match #call #fail {
                        ::cqrs_core::upcast::Upcast::Next(__next) => __next,
                        ::cqrs_core::upcast::Upcast::Split(__events) => {
                            return ::cqrs_core::__private::decode_split::<Self, __C, __F>(
                                __codec, __depth, __events, __sink,
                            );
                        }
                        ::cqrs_core::upcast::Upcast::Drop => return ::core::result::Result::Ok(()),
                    };
                });
                held = Held::Json(out);
            }
        }
    }
    let last = steps.last().expect("an arm has steps");
    let finish = match held {
        Held::Event(e) => quote!(__sink(#e);),
        Held::Json(v) => {
            let fail = fail(last);
            quote! {
                __sink(::cqrs_core::__private::variant_from_json::<Self>(#index, #v) #fail);
            }
        }
        Held::Stored | Held::Typed(_) => unreachable!("the last step ends at the current version"),
    };
    let _ = version;
    quote! {
        #code
        #finish
        ::core::result::Result::Ok(())
    }
}

/// The body of the `match` arm for a removed type: dropped, or mapped by a JSON function
/// to other events.
pub(super) fn removed_decoder(removed: &Removed) -> TokenStream {
    let name = removed.name.value();
    let Some(func) = &removed.upcast else {
        return quote!(::core::result::Result::Ok(()));
    };
    let what = format!(
        "function `{}` of removed type `{name}`",
        quote!(#func).to_string().replace(' ', "")
    );
    let func = json_fn(func);
    quote! {
        ::cqrs_core::__private::decode_removed::<Self, __C, __F, _>(
            __codec, #what, __payload, #func, __sink,
        )
    }
}
