//! Semantic checks that need the whole input: duplicate names, serde representation,
//! handler and apply method shapes.

use std::collections::HashMap;

use quote::ToTokens;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::ast::{Enum, Method, Param};
use crate::attr::{self, MethodKind};
use crate::ctxt::Ctxt;
use crate::util::snake_to_camel;

/// The payload of an event is its variant's body, so the enum must use serde's default
/// externally tagged form and every variant must deserialize.
pub(crate) fn serde_representation(cx: &Ctxt, input: &Enum<'_>, derive: &str) {
    for (path, tokens) in attr::serde_keys(&input.original.attrs) {
        for key in ["tag", "content", "untagged"] {
            if path.is_ident(key) {
                cx.error(
                    &tokens,
                    format!(
                        "`#[serde({key} ..)]` cannot be used with `#[derive({derive})]`: the \
                         stored payload is the variant's body and its name is kept beside it, \
                         so keep serde's default (externally tagged) representation"
                    ),
                );
            }
        }
    }
    for variant in &input.variants {
        for (path, tokens) in attr::serde_keys(&variant.original.attrs) {
            for key in [
                "skip",
                "skip_deserializing",
                "skip_serializing",
                "other",
                "untagged",
            ] {
                if path.is_ident(key) {
                    cx.error(
                        &tokens,
                        format!(
                            "`#[serde({key})]` cannot be used on a variant of a \
                             `#[derive({derive})]` enum: every variant is stored and read back"
                        ),
                    );
                }
            }
        }
    }
}

/// Two variants stored under the same type name could not be told apart when read.
pub(crate) fn unique_event_types(cx: &Ctxt, names: &[(String, proc_macro2::TokenStream)]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, (name, at)) in names.iter().enumerate() {
        if let Some(&first) = seen.get(name.as_str()) {
            let (_, first_at) = &names[first];
            let first_at = first_at.to_string();
            cx.error(
                at,
                format!(
                    "two event variants are stored under the type name \"{name}\" (the other \
                     is `{first_at}`); give one a distinct name with `#[event(name = \"..\")]`"
                ),
            );
        } else {
            seen.insert(name, i);
        }
    }
}

/// Reads and checks one `#[handle]` / `#[apply]` method.
pub(crate) fn method<'a>(
    cx: &Ctxt,
    func: &'a syn::ImplItemFn,
    found: attr::MethodAttr,
) -> Option<Method<'a>> {
    let kind = found.kind;
    let sig = &func.sig;
    let name = &sig.ident;
    let what = kind.name();
    let mut ok = true;

    // Receiver: `&self` for handle, `&mut self` for apply.
    let wanted = match kind {
        MethodKind::Handle => "&self",
        MethodKind::Apply => "&mut self",
    };
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => {
            let good = r.reference.is_some()
                && r.colon_token.is_none()
                && (r.mutability.is_some() == (kind == MethodKind::Apply));
            if !good {
                let found = r.to_token_stream().to_string().replace("& ", "&");
                cx.error(
                    r,
                    format!("`#[{what}]` method `{name}` takes `{wanted}`, found `{found}`"),
                );
                ok = false;
            }
        }
        _ => {
            cx.error(
                name,
                format!("`#[{what}]` method `{name}` must take `{wanted}` first"),
            );
            ok = false;
        }
    }

    if !sig.generics.params.is_empty() {
        cx.error(
            &sig.generics,
            format!("`#[{what}]` method `{name}` cannot be generic"),
        );
        ok = false;
    }
    if sig.asyncness.is_some() && kind == MethodKind::Apply {
        cx.error(
            sig.asyncness,
            format!(
                "`#[apply]` method `{name}` cannot be `async`: applying an event is pure and \
                 does no I/O, remove `async`"
            ),
        );
        ok = false;
    }
    if kind == MethodKind::Apply {
        if let ReturnType::Type(_, ty) = &sig.output {
            cx.error(
                ty,
                format!("`#[apply]` method `{name}` returns nothing: it only changes `self`"),
            );
            ok = false;
        }
    } else if let ReturnType::Default = sig.output {
        cx.error(
            name,
            format!(
                "`#[handle]` method `{name}` must return its events: an event, a `Vec` or an \
                 `Option` of events, or a `Result` of those"
            ),
        );
        ok = false;
    }

    let mut fields = Vec::new();
    let mut services = None;
    for input in sig.inputs.iter().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let is_services = attr::param_is_services(cx, &pat_type.attrs);
        if is_services {
            if kind == MethodKind::Apply {
                cx.error(
                    pat_type,
                    "`#[apply]` methods cannot take `#[services]`: applying an event uses only the \
                     event and the state, remove this parameter",
                );
                ok = false;
            } else if services.is_some() {
                cx.error(
                    pat_type,
                    format!(
                        "`#[handle]` method `{name}` has two `#[services]` parameters; take one"
                    ),
                );
                ok = false;
            } else if !matches!(*pat_type.ty, Type::Reference(_)) {
                let param = pat_type.pat.to_token_stream().to_string();
                let ty = crate::util::type_to_string(&pat_type.ty);
                cx.error(
                    &pat_type.ty,
                    format!(
                        "the `#[services]` parameter borrows the aggregate's services: write \
                         `{param}: &{ty}`"
                    ),
                );
                ok = false;
            } else {
                services = Some(pat_type);
            }
            continue;
        }
        let ident = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                cx.error(
                    other,
                    format!(
                        "`#[{what}]` parameters are plain names that match the variant's fields \
                         (`_0`, `_1`, … for tuple fields)"
                    ),
                );
                ok = false;
                continue;
            }
        };
        if kind == MethodKind::Apply && !matches!(*pat_type.ty, Type::Reference(_)) {
            let ty = crate::util::type_to_string(&pat_type.ty);
            cx.error(
                &pat_type.ty,
                format!("`#[apply]` parameters borrow the event's fields: write `{ident}: &{ty}`"),
            );
            ok = false;
        }
        fields.push(Param { ident });
    }

    let variant = found
        .variant
        .clone()
        .unwrap_or_else(|| syn::Ident::new(&snake_to_camel(&name.to_string()), name.span()));
    ok.then_some(Method {
        kind,
        func,
        variant,
        named_explicitly: found.variant.is_some(),
        fields,
        services,
        is_async: sig.asyncness.is_some(),
    })
}

/// One method per variant and kind.
pub(crate) fn one_method_per_variant(cx: &Ctxt, methods: &[Method<'_>]) {
    let mut seen: HashMap<(bool, String), &syn::Ident> = HashMap::new();
    for m in methods {
        let key = (m.kind == MethodKind::Handle, m.variant.to_string());
        if let Some(first) = seen.get(&key) {
            let noun = match m.kind {
                MethodKind::Handle => "command",
                MethodKind::Apply => "event",
            };
            cx.error(
                &m.func.sig.ident,
                format!(
                    "{noun} variant `{}` already has a `#[{}]` method, `{first}`; keep one",
                    m.variant,
                    m.kind.name()
                ),
            );
        } else {
            seen.insert(key, &m.func.sig.ident);
        }
    }
}
