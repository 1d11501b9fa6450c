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

fn unknown_key(meta: &ParseNestedMeta<'_>, attr: &str, expected: &str) -> syn::Error {
    let key = meta.path.to_token_stream().to_string().replace(' ', "");
    meta.error(format!(
        "unknown key `{key}` in `#[{attr}(..)]`; expected {expected}"
    ))
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
                    return Err(meta.error("`#[event(name = ..)]` must not be empty"));
                }
                name.set(&meta.path, lit);
            } else if meta.path.is_ident(VERSION) {
                // #[event(version = 2)]
                let lit: LitInt = meta.value()?.parse()?;
                match lit.base10_parse::<u32>() {
                    Ok(0) | Err(_) => {
                        return Err(syn::Error::new_spanned(
                            &lit,
                            "`#[event(version = ..)]` must be a whole number from 1",
                        ));
                    }
                    Ok(_) => version.set(&meta.path, lit),
                }
            } else {
                return Err(unknown_key(&meta, EVENT, "`name` or `version`"));
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
                Ok(())
            } else {
                Err(unknown_key(&meta, COMMAND, "`id`"))
            }
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
}

pub(crate) fn aggregate(cx: &Ctxt, attrs: &[Attribute]) -> (AggregateAttrs, bool) {
    let mut command = Once::new(cx, AGGREGATE, COMMAND_KEY);
    let mut event = Once::new(cx, AGGREGATE, EVENT_KEY);
    let mut error = Once::new(cx, AGGREGATE, ERROR_KEY);
    let mut services = Once::new(cx, AGGREGATE, SERVICES_KEY);
    let mut name = Once::new(cx, AGGREGATE, NAME);
    let mut seen = false;
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
                    return Err(meta.error("`#[aggregate(name = ..)]` must not be empty"));
                }
                name.set(&meta.path, lit);
            } else {
                return Err(unknown_key(
                    &meta,
                    AGGREGATE,
                    "`command`, `event`, `error`, `services` or `name`",
                ));
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
                        cx.error(
                        &list.tokens,
                        format!(
                            "`#[{}(..)]` takes the name of one variant, e.g. `#[{}(Deposited)]`",
                            kind.name(),
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
            let message = if prev.kind == kind {
                format!("duplicate `#[{}]` on one method: give it once", kind.name())
            } else {
                "a method is either `#[handle]` or `#[apply]`, not both".to_owned()
            };
            cx.error(attr, message);
            continue;
        }
        found = Some(MethodAttr { kind, variant });
    }
    found
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
