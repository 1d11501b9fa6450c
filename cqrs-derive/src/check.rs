//! Semantic checks that need the whole input: duplicate names, serde representation,
//! handler and apply method shapes.

use std::collections::HashMap;

use quote::ToTokens;
use syn::{FnArg, Pat, ReturnType, Type};

use crate::ast::{Enum, Handler, Method, Param};
use crate::attr::{self, MethodKind, StepKind, UpcastStep};
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

/// Two variants stored under the same type name could not be told apart when read. The
/// names are every current name (an identifier for a variant stored under its own name, a
/// string for `#[event(name = "..")]`), alias and removed type.
pub(crate) fn unique_event_types(cx: &Ctxt, names: &[(String, proc_macro2::TokenStream)]) {
    let variant =
        |tokens: &proc_macro2::TokenStream| syn::parse2::<syn::Ident>(tokens.clone()).ok();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, (name, at)) in names.iter().enumerate() {
        let Some(&first) = seen.get(name.as_str()) else {
            seen.insert(name, i);
            continue;
        };
        let (_, first_at) = &names[first];
        // A variant stored under its own identifier is the default: the string that collides
        // with it (a `name`, an alias or a removed type) is the one to change, before or after.
        let (at, other) = match (variant(at), variant(first_at)) {
            (Some(_), None) => (first_at, at),
            _ => (at, first_at),
        };
        let message = match variant(other) {
            Some(v) => format!(
                "\"{name}\" is already the stored type name of variant `{v}`, and a stored \
                 type name must lead to one variant: change or remove this one"
            ),
            None => format!(
                "\"{name}\" is given twice among this enum's stored type names (`name`, `alias` \
                 and `removed`), and a stored type name must lead to one variant: change or \
                 remove one"
            ),
        };
        cx.error(at, message);
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

/// Checks the upcast chain of one variant at `version` and returns its steps ordered by
/// version, or `None` after reporting what is wrong: a step that does not lead to the next
/// version (or leads back: a cycle), a step past the current version, two steps from one
/// version, a gap, and a typed step that must say what it hands to a JSON step.
pub(crate) fn upcast_chain<'s, 'a>(
    cx: &Ctxt,
    variant: &syn::Ident,
    version: u32,
    steps: &'s [UpcastStep<'a>],
) -> Option<Vec<&'s UpcastStep<'a>>> {
    let mut ok = true;
    let mut by_from: std::collections::BTreeMap<u32, &UpcastStep<'a>> = Default::default();
    for step in steps {
        let (from, to) = (step.from, step.to);
        if to <= from {
            let goes = if to == from { "nowhere" } else { "back down" };
            cx.error(
                &step.to_lit,
                format!(
                    "an upcast step lifts a payload one version up (`1 -> 2`, `2 -> 3`, ..); \
                     `{from} -> {to}` goes {goes}, which would make the chain a cycle"
                ),
            );
            ok = false;
        } else if to != from + 1 {
            cx.error(
                &step.to_lit,
                format!(
                    "an upcast step leads to the next version: write `{from} -> {}`, and one \
                     step from each version after it",
                    from + 1
                ),
            );
            ok = false;
        } else if to > version {
            cx.error(
                &step.to_lit,
                format!(
                    "this step leads to version {to}, but `{variant}` is written at version \
                     {version}: set `#[event(version = {to})]` on the variant, or drop the step"
                ),
            );
            ok = false;
        } else if by_from.insert(from, step).is_some() {
            cx.error(
                step.attr,
                format!("two upcast steps start from version {from} of `{variant}`: keep one"),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let ordered: Vec<&UpcastStep<'a>> = by_from.values().copied().collect();
    if let Some(first) = ordered.first() {
        for k in first.from..version {
            if !by_from.contains_key(&k) {
                let before_gap = by_from
                    .range(..k)
                    .next_back()
                    .map(|(_, s)| *s)
                    .unwrap_or(first);
                cx.error(
                    before_gap.attr,
                    format!(
                        "the upcast chain of `{variant}` has a gap: this step leads to version \
                         {k}, and nothing lifts version {k} to {}: add `#[upcast({k} -> {}, ..)]`",
                        k + 1,
                        k + 1
                    ),
                );
                return None;
            }
        }
    }
    for step in &ordered {
        let StepKind::Typed { into, .. } = &step.kind else {
            continue;
        };
        let next = by_from.get(&step.to);
        let kinds = (next.map(|n| &n.kind), into);
        if matches!(
            kinds,
            (Some(StepKind::Json { .. }), None)
                | (Some(StepKind::Typed { .. }), Some(_))
                | (None, Some(_))
        ) {
            ok = false;
        }
        match kinds {
            (Some(StepKind::Json { .. }), None) => cx.error(
                step.attr,
                format!(
                    "the step from version {} is a JSON step, so this typed step must say what \
                     it hands over: add `into = <the shape of version {}>` (serialised to JSON)",
                    step.to, step.to
                ),
            ),
            (Some(StepKind::Typed { .. }), Some(into)) => cx.error(
                into,
                format!(
                    "`into` is for a typed step followed by a JSON step; the step from version \
                     {} is typed, so this one produces its `from` type: remove `into`",
                    step.to
                ),
            ),
            (None, Some(into)) => cx.error(
                into,
                format!(
                    "version {} is the current one, so this step produces the event enum \
                     (through `From` or `with`): remove `into`",
                    step.to
                ),
            ),
            _ => {}
        }
    }
    ok.then_some(ordered)
}

/// Reads and checks the shape of an `#[on(..)]` method of a view: `&mut self` first, then
/// plain names borrowing the variant's fields; not generic, not `async`. Returns the
/// parameters, or `None` after reporting what is wrong. The return type is left to rustc
/// (nothing, or a `Result<(), E: Display>`).
pub(crate) fn on_method(cx: &Ctxt, func: &syn::ImplItemFn) -> Option<Vec<Param>> {
    let sig = &func.sig;
    let name = &sig.ident;
    let mut ok = true;
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => {
            if r.reference.is_none() || r.mutability.is_none() || r.colon_token.is_some() {
                let found = r.to_token_stream().to_string().replace("& ", "&");
                cx.error(
                    r,
                    format!(
                        "`#[on]` method `{name}` takes `&mut self`, found `{found}`: a handler \
                         updates the view's document"
                    ),
                );
                ok = false;
            }
        }
        _ => {
            cx.error(
                name,
                format!(
                    "`#[on]` method `{name}` must take `&mut self` first: a handler updates the \
                     view's document"
                ),
            );
            ok = false;
        }
    }
    if !sig.generics.params.is_empty() {
        cx.error(
            &sig.generics,
            format!("`#[on]` method `{name}` cannot be generic"),
        );
        ok = false;
    }
    if let Some(asyncness) = sig.asyncness {
        cx.error(
            asyncness,
            format!(
                "`#[on]` method `{name}` cannot be `async`: a projection applies events \
                 synchronously, inside the store's transaction; remove `async`"
            ),
        );
        ok = false;
    }
    let mut fields = Vec::new();
    for input in sig.inputs.iter().skip(1) {
        let FnArg::Typed(pat_type) = input else {
            continue;
        };
        let ident = match &*pat_type.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                cx.error(
                    other,
                    "`#[on]` parameters are plain names that match the variant's fields (`_0`, \
                     `_1`, … for tuple fields)",
                );
                ok = false;
                continue;
            }
        };
        if !matches!(*pat_type.ty, Type::Reference(_)) {
            let ty = crate::util::type_to_string(&pat_type.ty);
            cx.error(
                &pat_type.ty,
                format!("`#[on]` parameters borrow the event's fields: write `{ident}: &{ty}`"),
            );
            ok = false;
        }
        fields.push(Param { ident });
    }
    ok.then_some(fields)
}

/// One handler per variant: the document would otherwise change twice for one event, in
/// an order nobody chose.
pub(crate) fn one_handler_per_variant(cx: &Ctxt, handlers: &[Handler<'_>]) {
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    for h in handlers {
        let path = h.path.to_token_stream().to_string().replace(' ', "");
        if let Some(first) = seen.get(&path) {
            cx.error(
                &h.path,
                format!(
                    "`{path}` is already handled by `{first}`: a view has one handler per \
                     variant; keep one, or call one method from the other"
                ),
            );
        } else {
            seen.insert(path, &h.func.sig.ident);
        }
    }
}
