//! Every attribute the macros accept, parsed in one place.
//!
//! Keys are named constants; each branch of a parser shows the syntax it accepts. A key
//! given twice is an error at the second one.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Attribute, LitInt, LitStr, Meta, Path, Token, Type};

use crate::ctxt::Ctxt;
use crate::util::did_you_mean;

pub(crate) const EVENT: &str = "event";
pub(crate) const COMMAND: &str = "command";
pub(crate) const AGGREGATE: &str = "aggregate";
pub(crate) const HANDLE: &str = "handle";
pub(crate) const APPLY: &str = "apply";
pub(crate) const SERVICES: &str = "services";

const NAME: &str = "name";
const VERSION: &str = "version";
const ID: &str = "id";
const COMMAND_KEY: &str = "command";
const EVENT_KEY: &str = "event";
const ERROR_KEY: &str = "error";
const SERVICES_KEY: &str = "services";

/// A value that may be set once; setting it again is an error at the second key.
pub(crate) struct Once<'c, T> {
    cx: &'c Ctxt,
    attr: String,
    key: &'static str,
    value: Option<T>,
}

impl<'c, T> Once<'c, T> {
    pub(crate) fn new(cx: &'c Ctxt, attr: &str, key: &'static str) -> Self {
        Self {
            cx,
            attr: attr.to_owned(),
            key,
            value: None,
        }
    }

    pub(crate) fn set(&mut self, at: impl ToTokens, value: T) {
        if self.value.is_some() {
            self.cx.error(
                at,
                format!(
                    "duplicate `{}` key in `#[{}(..)]`: give it once",
                    self.key, self.attr
                ),
            );
        } else {
            self.value = Some(value);
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}

/// The error for a key `attr` does not know, suggesting the known key it likely misspells.
/// Returns that key too, so that a required key is not also reported missing.
fn unknown_key(
    meta: &ParseNestedMeta<'_>,
    attr: &str,
    known: &[&'static str],
) -> (syn::Error, Option<&'static str>) {
    let key = meta.path.to_token_stream().to_string().replace(' ', "");
    let suggestion = did_you_mean(&key, known);
    let message = match suggestion {
        Some(k) => format!("unknown key `{key}` in `#[{attr}(..)]`: did you mean `{k}`?"),
        None => format!(
            "unknown key `{key}` in `#[{attr}(..)]`; expected {}",
            one_of(known)
        ),
    };
    (meta.error(message), suggestion)
}

/// Skips the value of a key already reported as unknown (`= ...` up to the next `,`, or a
/// parenthesized list), so the keys after it are still read.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    meta.input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// `` `a`, `b` or `c` ``.
fn one_of(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `#[event(name = "...", version = N)]` on an event variant.
pub(crate) struct EventVariantAttrs {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitInt>,
}

pub(crate) fn event_variant(cx: &Ctxt, attrs: &[Attribute]) -> EventVariantAttrs {
    let mut name = Once::new(cx, EVENT, NAME);
    let mut version = Once::new(cx, EVENT, VERSION);
    for attr in attrs.iter().filter(|a| a.path().is_ident(EVENT)) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(NAME) {
                // #[event(name = "Renamed")]
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    cx.error(&lit, "`#[event(name = ..)]` must not be empty");
                } else {
                    name.set(&meta.path, lit);
                }
            } else if meta.path.is_ident(VERSION) {
                // #[event(version = 2)]
                let lit: LitInt = meta.value()?.parse()?;
                match lit.base10_parse::<u32>() {
                    Ok(0) | Err(_) => cx.error(
                        &lit,
                        "`#[event(version = ..)]` must be a whole number from 1: schema \
                         versions start at 1",
                    ),
                    Ok(_) => version.set(&meta.path, lit),
                }
            } else {
                cx.syn_error(unknown_key(&meta, EVENT, &[NAME, VERSION]).0);
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    EventVariantAttrs {
        name: name.get(),
        version: version.get(),
    }
}

/// `#[command(id)]` on a command field: it names the aggregate instance.
pub(crate) fn command_field_is_id(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    let mut id = Once::new(cx, COMMAND, ID);
    for attr in attrs.iter().filter(|a| a.path().is_ident(COMMAND)) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(ID) {
                // #[command(id)]
                id.set(&meta.path, ());
            } else {
                cx.syn_error(unknown_key(&meta, COMMAND, &[ID]).0);
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    id.get().is_some()
}

/// Rejects `#[command(..)]` / `#[event(..)]` where it means nothing (on the enum itself).
pub(crate) fn reject_misplaced(cx: &Ctxt, attrs: &[Attribute], name: &str, where_: &str) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(name)) {
        cx.error(attr, format!("`#[{name}(..)]` is not accepted {where_}"));
    }
}

/// `#[aggregate(command = C, event = E, error = Er, services = S, name = "...")]`.
pub(crate) struct AggregateAttrs {
    pub(crate) command: Option<Type>,
    pub(crate) event: Option<Type>,
    pub(crate) error: Option<Type>,
    pub(crate) services: Option<Type>,
    pub(crate) name: Option<LitStr>,
    /// Keys suggested for misspelled ones: already reported, so not missing too.
    pub(crate) suggested: Vec<&'static str>,
}

pub(crate) fn aggregate(cx: &Ctxt, attrs: &[Attribute]) -> (AggregateAttrs, bool) {
    let mut command = Once::new(cx, AGGREGATE, COMMAND_KEY);
    let mut event = Once::new(cx, AGGREGATE, EVENT_KEY);
    let mut error = Once::new(cx, AGGREGATE, ERROR_KEY);
    let mut services = Once::new(cx, AGGREGATE, SERVICES_KEY);
    let mut name = Once::new(cx, AGGREGATE, NAME);
    let mut seen = false;
    let mut suggested = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(AGGREGATE)) {
        seen = true;
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(COMMAND_KEY) {
                // #[aggregate(command = AccountCommand)]
                command.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path.is_ident(EVENT_KEY) {
                // #[aggregate(event = AccountEvent)]
                event.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path.is_ident(ERROR_KEY) {
                // #[aggregate(error = AccountError)]
                error.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path.is_ident(SERVICES_KEY) {
                // #[aggregate(services = AccountServices)]
                services.set(&meta.path, meta.value()?.parse()?);
            } else if meta.path.is_ident(NAME) {
                // #[aggregate(name = "BankAccount")]
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    cx.error(&lit, "`#[aggregate(name = ..)]` must not be empty");
                } else {
                    name.set(&meta.path, lit);
                }
            } else {
                let (error, suggestion) = unknown_key(
                    &meta,
                    AGGREGATE,
                    &[COMMAND_KEY, EVENT_KEY, ERROR_KEY, SERVICES_KEY, NAME],
                );
                suggested.extend(suggestion);
                cx.syn_error(error);
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    let attrs = AggregateAttrs {
        command: command.get(),
        event: event.get(),
        error: error.get(),
        services: services.get(),
        name: name.get(),
        suggested,
    };
    (attrs, seen)
}

/// What a method's `#[handle]` or `#[apply]` says.
pub(crate) struct MethodAttr {
    pub(crate) kind: MethodKind,
    /// The variant named explicitly: `#[handle(Deposit)]`.
    pub(crate) variant: Option<syn::Ident>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    Handle,
    Apply,
}

impl MethodKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Handle => HANDLE,
            Self::Apply => APPLY,
        }
    }
}

/// Reads `#[handle]`, `#[handle(Variant)]`, `#[apply]`, `#[apply(Variant)]` of a method.
pub(crate) fn method(cx: &Ctxt, attrs: &[Attribute]) -> Option<MethodAttr> {
    let mut found: Option<MethodAttr> = None;
    let mut conflict = false;
    for attr in attrs {
        let kind = if attr.path().is_ident(HANDLE) {
            MethodKind::Handle
        } else if attr.path().is_ident(APPLY) {
            MethodKind::Apply
        } else {
            continue;
        };
        let variant = match &attr.meta {
            // #[handle]
            Meta::Path(_) => None,
            // #[handle(Deposit)]
            Meta::List(list) => {
                match list.parse_args_with(Punctuated::<Path, Token![,]>::parse_terminated) {
                    Ok(paths) if paths.len() == 1 && paths[0].get_ident().is_some() => {
                        paths[0].get_ident().cloned()
                    }
                    _ => {
                        let example = match kind {
                            MethodKind::Handle => "Deposit",
                            MethodKind::Apply => "Deposited",
                        };
                        cx.error(
                            &list.tokens,
                            format!(
                                "`#[{0}(..)]` takes the name of one variant, e.g. \
                                 `#[{0}({example})]`",
                                kind.name()
                            ),
                        );
                        None
                    }
                }
            }
            Meta::NameValue(nv) => {
                cx.error(
                    nv,
                    format!("write `#[{0}]` or `#[{0}(Variant)]`", kind.name()),
                );
                None
            }
        };
        if let Some(prev) = &found {
            if prev.kind == kind {
                cx.error(
                    attr,
                    format!("duplicate `#[{}]` on one method: give it once", kind.name()),
                );
            } else {
                cx.error(
                    attr,
                    "a method is either `#[handle]` (decides on a command) or `#[apply]` \
                     (applies an event), not both: keep one",
                );
                // Its shape would be wrong for one of the two: say nothing more about it.
                conflict = true;
            }
            continue;
        }
        found = Some(MethodAttr { kind, variant });
    }
    if conflict { None } else { found }
}

/// True if a parameter carries `#[services]`; other attributes on it are errors.
pub(crate) fn param_is_services(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    let mut services = false;
    for attr in attrs {
        if attr.path().is_ident(SERVICES) {
            if !matches!(attr.meta, Meta::Path(_)) {
                cx.error(attr, "`#[services]` takes no arguments");
            }
            if services {
                cx.error(attr, "duplicate `#[services]` on one parameter");
            }
            services = true;
        }
    }
    services
}

/// Whether an attribute is one of ours on a method or parameter, to strip it.
pub(crate) fn is_ours(attr: &Attribute) -> bool {
    attr.path().is_ident(HANDLE) || attr.path().is_ident(APPLY) || attr.path().is_ident(SERVICES)
}

/// The serde container or variant settings that break the variant-body encoding.
pub(crate) fn serde_keys(attrs: &[Attribute]) -> Vec<(Path, TokenStream)> {
    let mut keys = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        if let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            for meta in metas {
                keys.push((meta.path().clone(), meta.to_token_stream()));
            }
        }
    }
    keys
}
