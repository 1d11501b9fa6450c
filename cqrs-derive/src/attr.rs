//! Every attribute the macros accept, parsed in one place.
//!
//! Keys are named constants; each branch of a parser shows the syntax it accepts. A key
//! given twice is an error at the second one.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::{Parse, ParseStream};
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
pub(crate) const UPCAST: &str = "upcast";
pub(crate) const INVARIANT: &str = "invariant";
pub(crate) const PROJECTION: &str = "projection";
pub(crate) const ON: &str = "on";

const NAME: &str = "name";
const VERSION: &str = "version";
const ID: &str = "id";
const COMMAND_KEY: &str = "command";
const EVENT_KEY: &str = "event";
const ERROR_KEY: &str = "error";
const SERVICES_KEY: &str = "services";
const ALIAS: &str = "alias";
const REMOVED: &str = "removed";
const UPCAST_KEY: &str = "upcast";
const SNAPSHOT_VERSION: &str = "snapshot_version";
const ENFORCE_INVARIANTS: &str = "enforce_invariants";
const GIVEN: &str = "given";
const WHEN: &str = "when";
const SHALL: &str = "shall";
const STEP_FROM: &str = "from";
const STEP_JSON: &str = "json";
const STEP_WITH: &str = "with";
const STEP_INTO: &str = "into";
const KEY: &str = "key";
const DELETE: &str = "delete";

/// A value that may be set once; setting it again is an error at the second key.
pub(crate) struct Once<'c, T> {
    cx: &'c Ctxt,
    attr: String,
    key: &'static str,
    /// What to do about a second key; "give it once" unless set.
    hint: &'static str,
    value: Option<T>,
}

impl<'c, T> Once<'c, T> {
    pub(crate) fn new(cx: &'c Ctxt, attr: &str, key: &'static str) -> Self {
        Self {
            cx,
            attr: attr.to_owned(),
            key,
            hint: "give it once",
            value: None,
        }
    }

    /// Replaces "give it once" in the duplicate-key error.
    pub(crate) fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    pub(crate) fn set(&mut self, at: impl ToTokens, value: T) {
        if self.value.is_some() {
            self.cx.error(
                at,
                format!(
                    "duplicate `{}` key in `#[{}(..)]`: {}",
                    self.key, self.attr, self.hint
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

/// `#[event(name = "...", version = N, alias = "...")]` on an event variant.
pub(crate) struct EventVariantAttrs {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<LitInt>,
    /// A `version = ..` was given but is not a valid version (already reported).
    pub(crate) version_invalid: bool,
    /// Names the variant was stored under before, in order.
    pub(crate) aliases: Vec<LitStr>,
}

/// Parses a version literal: a whole number from 1. `kind` names the versions in the
/// error: "schema versions" or "snapshot versions".
fn version_lit(cx: &Ctxt, lit: &LitInt, what: &str, kind: &str) -> Option<u32> {
    match lit.base10_parse::<u32>() {
        Ok(0) | Err(_) => {
            cx.error(
                lit,
                format!("{what} must be a whole number from 1: {kind} start at 1"),
            );
            None
        }
        Ok(v) => Some(v),
    }
}

/// The path or type after `key =`. A string literal (serde's `with = "module"` habit) is
/// an error that shows the same value written as Rust.
fn rust_value<T: Parse>(
    input: ParseStream<'_>,
    attr: &str,
    key: &str,
    what: &str,
) -> syn::Result<T> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{key}` in `#[{attr}(..)]` takes {what} written as Rust, not a string: write \
                 `{key} = {}`",
                lit.value()
            ),
        ));
    }
    input.parse()
}

/// A non-empty string literal.
fn type_name_lit(cx: &Ctxt, meta: &ParseNestedMeta<'_>, what: &str) -> syn::Result<Option<LitStr>> {
    let lit: LitStr = meta.value()?.parse()?;
    if lit.value().is_empty() {
        cx.error(&lit, format!("`{what}` must not be empty"));
        return Ok(None);
    }
    Ok(Some(lit))
}

pub(crate) fn event_variant(cx: &Ctxt, attrs: &[Attribute]) -> EventVariantAttrs {
    let mut name = Once::new(cx, EVENT, NAME);
    let mut version = Once::new(cx, EVENT, VERSION);
    let mut version_invalid = false;
    let mut aliases = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(EVENT)) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(NAME) {
                // #[event(name = "Renamed")]
                if let Some(lit) = type_name_lit(cx, &meta, "#[event(name = ..)]")? {
                    name.set(&meta.path, lit);
                }
            } else if meta.path.is_ident(VERSION) {
                // #[event(version = 2)]
                let lit: LitInt = meta.value()?.parse()?;
                if version_lit(cx, &lit, "`#[event(version = ..)]`", "schema versions").is_some() {
                    version.set(&meta.path, lit);
                } else {
                    version_invalid = true;
                }
            } else if meta.path.is_ident(ALIAS) {
                // #[event(alias = "OldName")], repeatable
                if let Some(lit) = type_name_lit(cx, &meta, "#[event(alias = ..)]")? {
                    aliases.push(lit);
                }
            } else if meta.path.is_ident(REMOVED) {
                cx.error(
                    &meta.path,
                    "`removed` names a type no variant is stored under any more: put \
                     `#[event(removed = \"..\")]` on the enum, not on a variant",
                );
                skip_value(&meta)?;
            } else {
                cx.syn_error(unknown_key(&meta, EVENT, &[NAME, VERSION, ALIAS]).0);
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
        version_invalid,
        aliases,
    }
}

/// `#[event(removed = "OldType")]` or `#[event(removed = "OldType", upcast = function)]`
/// on the event enum: a stored type name no variant reads any more.
pub(crate) struct Removed {
    pub(crate) name: LitStr,
    /// The JSON function that maps it to other events; none drops it.
    pub(crate) upcast: Option<Path>,
}

pub(crate) fn event_enum(cx: &Ctxt, attrs: &[Attribute]) -> Vec<Removed> {
    let mut removed = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(EVENT)) {
        let mut name = Once::new(cx, EVENT, REMOVED)
            .hint("write one `#[event(removed = \"..\")]` per removed type");
        let mut upcast = Once::new(cx, EVENT, UPCAST_KEY);
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(REMOVED) {
                // #[event(removed = "NoteAdded")]
                if let Some(lit) = type_name_lit(cx, &meta, "#[event(removed = ..)]")? {
                    name.set(&meta.path, lit);
                }
            } else if meta.path.is_ident(UPCAST_KEY) {
                // #[event(removed = "LegacyFee", upcast = legacy_fee)]
                let func = rust_value::<Path>(meta.value()?, EVENT, UPCAST_KEY, "a function path")?;
                upcast.set(&meta.path, func);
            } else if [NAME, VERSION, ALIAS].iter().any(|k| meta.path.is_ident(k)) {
                let key = meta.path.to_token_stream().to_string();
                cx.error(
                    &meta.path,
                    format!(
                        "`{key}` describes one event: put `#[event({key} = ..)]` on a variant; \
                         on the enum, `#[event(..)]` takes `removed = \"..\"` (and \
                         optionally `upcast = function`)"
                    ),
                );
                skip_value(&meta)?;
            } else {
                cx.syn_error(unknown_key(&meta, EVENT, &[REMOVED, UPCAST_KEY]).0);
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
            continue;
        }
        let upcast = upcast.get();
        match name.get() {
            Some(name) => removed.push(Removed { name, upcast }),
            None if upcast.is_some() => cx.error(
                attr,
                "`upcast = ..` on the enum maps a removed type: name it with \
                 `#[event(removed = \"OldType\", upcast = function)]`",
            ),
            None => {}
        }
    }
    removed
}

/// `#[upcast(1 -> 2, from = OldShape)]`, `#[upcast(1 -> 2, from = OldShape, with = f)]`,
/// `#[upcast(1 -> 2, json = f)]`: one step of a variant's upcast chain.
pub(crate) struct UpcastStep<'a> {
    pub(crate) attr: &'a Attribute,
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) to_lit: LitInt,
    pub(crate) kind: StepKind,
}

// A handful of these exist per macro invocation; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum StepKind {
    /// The stored payload deserialises as `shape`, which becomes the next version through
    /// `From` or `with`.
    Typed {
        shape: Type,
        with: Option<Path>,
        /// The type handed to a following JSON step (serialised to JSON).
        into: Option<Type>,
    },
    /// A function over `serde_json::Value`.
    Json { func: Path },
}

const STEP_EXAMPLE: &str = "`#[upcast(1 -> 2, from = OpenedV1)]` (a typed step) or \
                            `#[upcast(1 -> 2, json = open_v1_to_v2)]` (a JSON step)";

pub(crate) fn upcast_steps<'a>(cx: &Ctxt, attrs: &'a [Attribute]) -> Vec<UpcastStep<'a>> {
    let mut steps = Vec::new();
    let mut failed = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident(UPCAST)) {
        // Each step's errors are gathered apart, to know whether the step was read cleanly.
        let local = Ctxt::default();
        let step = if let Meta::List(_) = attr.meta {
            attr.parse_args_with(|input: ParseStream<'_>| parse_step(&local, attr, input))
                .unwrap_or_else(|e| {
                    local.syn_error(e);
                    None
                })
        } else {
            local.error(
                attr,
                format!("`#[upcast]` describes one step of an upcast chain: write {STEP_EXAMPLE}"),
            );
            None
        };
        let errors = local.into_errors();
        failed |= step.is_none() || !errors.is_empty();
        for e in errors {
            cx.syn_error(e);
        }
        steps.extend(step);
    }
    // The chain is checked only when every step was read cleanly: a step left out would be
    // reported again as a gap, and a step with a misspelt `with` as a missing `From`.
    if failed { Vec::new() } else { steps }
}

fn parse_step<'a>(
    cx: &Ctxt,
    attr: &'a Attribute,
    input: ParseStream<'_>,
) -> syn::Result<Option<UpcastStep<'a>>> {
    let versions = (|| -> syn::Result<(LitInt, LitInt)> {
        let from: LitInt = input.parse()?;
        input.parse::<Token![->]>()?;
        let to: LitInt = input.parse()?;
        Ok((from, to))
    })();
    let Ok((from_lit, to_lit)) = versions else {
        return Err(syn::Error::new(
            input.span(),
            format!(
                "`#[upcast(..)]` starts with the two versions it lifts between, written \
                 `FROM -> TO`: {STEP_EXAMPLE}"
            ),
        ));
    };
    let mut shape = Once::new(cx, UPCAST, STEP_FROM);
    let mut json = Once::new(cx, UPCAST, STEP_JSON);
    let mut with = Once::new(cx, UPCAST, STEP_WITH);
    let mut into = Once::new(cx, UPCAST, STEP_INTO);
    // A misspelt `from` or `json` is not also reported as missing.
    let mut suggested_kind = false;
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![=]>()?;
        match key.to_string().as_str() {
            STEP_FROM => {
                let ty = rust_value::<Type>(input, UPCAST, STEP_FROM, "a type")?;
                shape.set(&key, (key.clone(), ty));
            }
            STEP_JSON => {
                let func = rust_value::<Path>(input, UPCAST, STEP_JSON, "a function path")?;
                json.set(&key, (key.clone(), func));
            }
            STEP_WITH => {
                let func = rust_value::<Path>(input, UPCAST, STEP_WITH, "a function path")?;
                with.set(&key, (key.clone(), func));
            }
            STEP_INTO => {
                let ty = rust_value::<Type>(input, UPCAST, STEP_INTO, "a type")?;
                into.set(&key, (key.clone(), ty));
            }
            other => {
                let known = [STEP_FROM, STEP_JSON, STEP_WITH, STEP_INTO];
                let suggestion = did_you_mean(other, &known);
                suggested_kind |= matches!(suggestion, Some(STEP_FROM | STEP_JSON));
                let message = match suggestion {
                    Some(k) => {
                        format!("unknown key `{other}` in `#[upcast(..)]`: did you mean `{k}`?")
                    }
                    None => format!(
                        "unknown key `{other}` in `#[upcast(..)]`; expected {}",
                        one_of(&known)
                    ),
                };
                cx.error(&key, message);
                // Skip the value up to the next comma.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
        }
    }
    let (Some(from), Some(to)) = (
        version_lit(
            cx,
            &from_lit,
            "an upcast step's first version",
            "schema versions",
        ),
        version_lit(
            cx,
            &to_lit,
            "an upcast step's second version",
            "schema versions",
        ),
    ) else {
        return Ok(None);
    };
    let kind = match (shape.get(), json.get(), with.get(), into.get()) {
        (Some((_, shape)), None, with, into) => StepKind::Typed {
            shape,
            with: with.map(|(_, p)| p),
            into: into.map(|(_, t)| t),
        },
        (None, Some((_, func)), with, into) => {
            for key in with.map(|(k, _)| k).into_iter().chain(into.map(|(k, _)| k)) {
                cx.error(
                    &key,
                    format!(
                        "`{key}` belongs to a typed step (`from = OldShape`); a JSON step is \
                         just `json = function`"
                    ),
                );
            }
            StepKind::Json { func }
        }
        (Some(_), Some((key, _)), _, _) => {
            cx.error(
                key,
                "a step is either typed (`from = OldShape`) or JSON (`json = function`), not \
                 both: keep one (a typed step converts with a function through \
                 `from = OldShape, with = function`)",
            );
            return Ok(None);
        }
        (None, None, _, _) if suggested_kind => return Ok(None),
        (None, None, _, _) => {
            cx.error(
                attr,
                format!(
                    "this upcast step says neither how to read the old payload nor how to \
                     lift it: write {STEP_EXAMPLE}"
                ),
            );
            return Ok(None);
        }
    };
    Ok(Some(UpcastStep {
        attr,
        from,
        to,
        to_lit,
        kind,
    }))
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
    pub(crate) snapshot_version: Option<LitInt>,
    /// `enforce_invariants` was given.
    pub(crate) enforce_invariants: bool,
    /// Keys suggested for misspelled ones: already reported, so not missing too.
    pub(crate) suggested: Vec<&'static str>,
}

pub(crate) fn aggregate(cx: &Ctxt, attrs: &[Attribute]) -> (AggregateAttrs, bool) {
    let mut command = Once::new(cx, AGGREGATE, COMMAND_KEY);
    let mut event = Once::new(cx, AGGREGATE, EVENT_KEY);
    let mut error = Once::new(cx, AGGREGATE, ERROR_KEY);
    let mut services = Once::new(cx, AGGREGATE, SERVICES_KEY);
    let mut name = Once::new(cx, AGGREGATE, NAME);
    let mut snapshot_version = Once::new(cx, AGGREGATE, SNAPSHOT_VERSION);
    let mut enforce = Once::new(cx, AGGREGATE, ENFORCE_INVARIANTS);
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
            } else if meta.path.is_ident(SNAPSHOT_VERSION) {
                // #[aggregate(snapshot_version = 2)]
                let lit: LitInt = meta.value()?.parse()?;
                if version_lit(
                    cx,
                    &lit,
                    "`#[aggregate(snapshot_version = ..)]`",
                    "snapshot versions",
                )
                .is_some()
                {
                    snapshot_version.set(&meta.path, lit);
                }
            } else if meta.path.is_ident(ENFORCE_INVARIANTS) {
                // #[aggregate(enforce_invariants)]
                if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
                    cx.error(
                        &meta.path,
                        "`enforce_invariants` is a flag and takes no value: write \
                         `#[aggregate(.., enforce_invariants)]` to enforce the invariants, or \
                         leave it out",
                    );
                    skip_value(&meta)?;
                } else {
                    enforce.set(&meta.path, ());
                }
            } else {
                let (error, suggestion) = unknown_key(
                    &meta,
                    AGGREGATE,
                    &[
                        COMMAND_KEY,
                        EVENT_KEY,
                        ERROR_KEY,
                        SERVICES_KEY,
                        NAME,
                        SNAPSHOT_VERSION,
                        ENFORCE_INVARIANTS,
                    ],
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
        snapshot_version: snapshot_version.get(),
        enforce_invariants: enforce.get().is_some(),
        suggested,
    };
    (attrs, seen)
}

/// One `#[invariant(..)]` on an aggregate.
pub(crate) struct InvariantAttr {
    pub(crate) rule: LitStr,
    pub(crate) kind: InvariantForm,
}

pub(crate) enum InvariantForm {
    /// `#[invariant(predicate, "sentence")]`.
    Always { predicate: syn::Ident },
    /// `#[invariant(given = pre, when = Variant | [A, B], shall = post, "sentence")]`.
    GivenWhenShall {
        given: Option<syn::Ident>,
        when: Vec<syn::Ident>,
        shall: syn::Ident,
    },
}

impl InvariantAttr {
    /// The rule's name: its predicate, or its `shall` method.
    pub(crate) fn name(&self) -> &syn::Ident {
        match &self.kind {
            InvariantForm::Always { predicate } => predicate,
            InvariantForm::GivenWhenShall { shall, .. } => shall,
        }
    }
}

const INVARIANT_EXAMPLE: &str = "`#[invariant(balance_never_negative, \"a balance is never \
                                 negative\")]` or `#[invariant(given = is_open, when = \
                                 Withdrew, shall = within_limit, \"..\")]`";

/// Every `#[invariant(..)]` on an aggregate, in order; malformed ones are reported and left
/// out.
pub(crate) fn invariants(cx: &Ctxt, attrs: &[Attribute]) -> Vec<InvariantAttr> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident(INVARIANT))
        .filter_map(|attr| {
            let list = match &attr.meta {
                Meta::List(list) if !list.tokens.is_empty() => list,
                _ => {
                    cx.error(
                        attr,
                        format!(
                            "`#[invariant]` names the rule's method and states the rule: write \
                             {INVARIANT_EXAMPLE}"
                        ),
                    );
                    return None;
                }
            };
            match list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
                parse_invariant(cx, attr, input)
            }) {
                Ok(found) => found,
                Err(e) => {
                    cx.syn_error(e);
                    None
                }
            }
        })
        .collect()
}

/// How a method is named in `#[invariant(..)]`: `key = name`, or the always-rule's
/// `#[invariant(name, "..")]`.
fn write_method(key: Option<&str>, name: &str) -> String {
    match key {
        Some(key) => format!("`{key} = {name}`"),
        None => format!("`#[invariant({name}, \"..\")]`"),
    }
}

/// A method of the aggregate, named by its bare name; `first` is its first identifier,
/// already read. A path or a call is reported with the name to write, and its last
/// identifier returned so that the rest of the attribute is still read.
fn method_rest(
    cx: &Ctxt,
    first: syn::Ident,
    input: ParseStream<'_>,
    key: Option<&str>,
) -> syn::Result<syn::Ident> {
    let what = key.map_or_else(
        || "an always-rule".to_owned(),
        |k| format!("`{k}` in `#[invariant(..)]`"),
    );
    let mut path: Punctuated<syn::Ident, Token![::]> = Punctuated::new();
    path.push_value(first);
    while input.peek(Token![::]) {
        path.push_punct(input.parse()?);
        path.push_value(input.call(syn::ext::IdentExt::parse_any)?);
    }
    let name = path.last().cloned().expect("one identifier at least");
    if path.len() > 1 {
        cx.error(
            &path,
            format!(
                "{what} names a method of the aggregate by its name alone: write {}",
                write_method(key, &name.to_string())
            ),
        );
    }
    if input.peek(syn::token::Paren) {
        let call: proc_macro2::Group = input.parse()?;
        cx.error(
            call,
            format!(
                "{what} names the method, without calling it: write {}",
                write_method(key, &name.to_string())
            ),
        );
    }
    Ok(name)
}

/// The method after `given =` or `shall =`. A string is reported with the name to write.
fn method_value(cx: &Ctxt, input: ParseStream<'_>, key: &str) -> syn::Result<syn::Ident> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        cx.error(
            &lit,
            format!(
                "`{key}` in `#[invariant(..)]` takes a method name written as Rust, not a \
                 string: write `{key} = {}`",
                lit.value()
            ),
        );
        return Ok(syn::Ident::new("__cqrs_invalid", lit.span()));
    }
    let first = input.call(syn::ext::IdentExt::parse_any)?;
    method_rest(cx, first, input, Some(key))
}

/// The event variants after `when =`: `Variant`, `A | B` or `[A, B]`, each by its bare
/// name. Paths, fields, strings and an empty list are reported with what to write.
fn when_value(
    cx: &Ctxt,
    key: &syn::Ident,
    eq: Token![=],
    input: ParseStream<'_>,
) -> syn::Result<Vec<syn::Ident>> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        cx.error(
            &lit,
            format!(
                "`when` in `#[invariant(..)]` takes event variants written as Rust, not a \
                 string: write `when = {}`",
                lit.value()
            ),
        );
        return Ok(Vec::new());
    }
    // Each variant as written, and whether it was written as a bare name.
    let mut written: Vec<(syn::Path, Option<TokenStream>)> = Vec::new();
    let bracketed = input.peek(syn::token::Bracket);
    if bracketed {
        let content;
        let bracket = syn::bracketed!(content in input);
        while !content.is_empty() {
            written.push(variant(&content)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        if written.is_empty() {
            let mut at = key.to_token_stream();
            eq.to_tokens(&mut at);
            bracket.surround(&mut at, |_| {});
            cx.error(
                at,
                "`when = []` names no event, so the rule would never be checked: name the event \
                 variant(s) it concerns, e.g. `when = Withdrew` or `when = [Deposited, Withdrew]`",
            );
            return Ok(Vec::new());
        }
    } else {
        written.push(variant(input)?);
        while input.peek(Token![|]) {
            input.parse::<Token![|]>()?;
            written.push(variant(input)?);
        }
    }
    let names: Vec<syn::Ident> = written
        .iter()
        .map(|(path, _)| {
            path.segments
                .last()
                .expect("a path has a segment")
                .ident
                .clone()
        })
        .collect();
    let wrong = written
        .iter()
        .find(|(path, fields)| path.get_ident().is_none() || fields.is_some());
    if let Some((path, fields)) = wrong {
        let list: Vec<String> = names.iter().map(ToString::to_string).collect();
        let fix = if bracketed {
            format!("when = [{}]", list.join(", "))
        } else {
            format!("when = {}", list.join(" | "))
        };
        let without = if path.get_ident().is_none() {
            "the enum's path"
        } else {
            "fields"
        };
        let mut at = path.to_token_stream();
        at.extend(fields.clone());
        cx.error(
            at,
            format!(
                "`when` names variants of the aggregate's event enum by their name alone, \
                 without {without}: write `{fix}`"
            ),
        );
    }
    Ok(names)
}

/// One variant in `when`, as written: its path, and the fields written after it (`{ .. }`
/// or `(..)`), if any.
fn variant(input: ParseStream<'_>) -> syn::Result<(syn::Path, Option<TokenStream>)> {
    let path = input.call(syn::Path::parse_mod_style)?;
    let fields = if input.peek(syn::token::Brace) || input.peek(syn::token::Paren) {
        Some(input.parse::<proc_macro2::Group>()?.into_token_stream())
    } else {
        None
    };
    Ok((path, fields))
}

fn parse_invariant(
    cx: &Ctxt,
    attr: &Attribute,
    input: syn::parse::ParseStream<'_>,
) -> syn::Result<Option<InvariantAttr>> {
    let errors_before = cx.error_count();
    let mut predicate: Option<syn::Ident> = None;
    let mut rule: Option<LitStr> = None;
    let mut given = Once::new(cx, INVARIANT, GIVEN);
    let mut when = Once::new(cx, INVARIANT, WHEN)
        .hint("name every event the rule concerns in one `when = A | B`");
    let mut shall = Once::new(cx, INVARIANT, SHALL);
    // Keys already reported (suggested for a misspelt key, or written without `=`): not
    // reported missing too.
    let mut reported: Vec<&str> = Vec::new();
    let mut unknown_keys = false;
    while !input.is_empty() {
        if input.peek(LitStr) {
            // #[invariant(.., "the rule in words")]
            let lit: LitStr = input.parse()?;
            if lit.value().trim().is_empty() {
                cx.error(
                    &lit,
                    "an invariant's sentence must say something: state the rule in words, as \
                     a failure will quote it",
                );
            }
            if rule.is_some() {
                cx.error(
                    &lit,
                    "an invariant states its rule in one sentence: join the two, or state the \
                     second rule in an `#[invariant(..)]` of its own",
                );
            } else {
                rule = Some(lit);
            }
        } else {
            let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
            if input.peek(Token![=]) {
                let eq = input.parse::<Token![=]>()?;
                match key.to_string().as_str() {
                    // given = is_open
                    GIVEN => given.set(&key, method_value(cx, input, GIVEN)?),
                    // shall = within_limit
                    SHALL => shall.set(&key, method_value(cx, input, SHALL)?),
                    // when = Withdrew, when = Deposited | Withdrew, when = [Deposited, Withdrew]
                    WHEN => {
                        let variants = when_value(cx, &key, eq, input)?;
                        when.set(&key, (key.clone(), variants));
                    }
                    other => {
                        let known = [GIVEN, WHEN, SHALL];
                        let suggestion = did_you_mean(other, &known);
                        reported.extend(suggestion);
                        unknown_keys = true;
                        let message = match suggestion {
                            Some(k) => format!(
                                "unknown key `{other}` in `#[invariant(..)]`: did you mean `{k}`?"
                            ),
                            None => format!(
                                "unknown key `{other}` in `#[invariant(..)]`; expected {}",
                                one_of(&known)
                            ),
                        };
                        cx.error(&key, message);
                        while !input.is_empty() && !input.peek(Token![,]) {
                            input.parse::<proc_macro2::TokenTree>()?;
                        }
                    }
                }
            } else if let Some(known) = [GIVEN, WHEN, SHALL]
                .into_iter()
                .find(|k| key == k)
                .filter(|_| input.peek(syn::token::Paren))
            {
                // when(Withdrew)
                reported.push(known);
                let group: proc_macro2::Group = input.parse()?;
                let value = group.stream().to_string().replace(" ,", ",");
                let value = if value.contains(',') {
                    format!("[{value}]")
                } else {
                    value
                };
                cx.error(
                    &key,
                    format!("`{key}` takes a value: write `{key} = {value}`"),
                );
            } else {
                // #[invariant(balance_never_negative, "..")]
                let name = method_rest(cx, key, input, None)?;
                match &predicate {
                    Some(first) => cx.error(
                        &name,
                        format!(
                            "an always-rule checks one method, and this one names `{first}` \
                             already: state the rule of `{name}` in an \
                             `#[invariant({name}, \"..\")]` of its own"
                        ),
                    ),
                    None => predicate = Some(name),
                }
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    let (given, when, shall) = (given.get(), when.get(), shall.get());
    if rule.is_none() {
        let example = match (&predicate, &shall) {
            (Some(p), _) => format!("`#[invariant({p}, \"..\")]`"),
            (None, Some(s)) => {
                format!("`#[invariant(.., shall = {s}, \"given .., when .., ..\")]`")
            }
            (None, None) => INVARIANT_EXAMPLE.to_owned(),
        };
        cx.error(
            attr,
            format!(
                "this invariant does not state its rule in words: add the sentence a failure \
                 will quote, e.g. {example}"
            ),
        );
    }
    let missing = |key: &str| !reported.contains(&key);
    let kind = match (predicate, given, when, shall) {
        (Some(predicate), None, None, None) => Some(InvariantForm::Always { predicate }),
        (Some(predicate), _, _, shall) => {
            let fix = match shall {
                Some(shall) => format!(
                    "`shall = {shall}` is this rule's method, so state `{predicate}` in an \
                     `#[invariant({predicate}, \"..\")]` of its own"
                ),
                None => format!(
                    "for a Given/When/Shall rule, name its method with `shall = {predicate}`"
                ),
            };
            cx.error(
                &predicate,
                format!(
                    "an invariant is either an always-rule (`#[invariant(method, \"..\")]`) or \
                     a Given/When/Shall rule (`given = .., when = .., shall = ..`), not both: \
                     {fix}"
                ),
            );
            None
        }
        (None, given, Some((_, when)), Some(shall)) => {
            Some(InvariantForm::GivenWhenShall { given, when, shall })
        }
        (None, _, Some((when_key, _)), None) => {
            if missing(SHALL) {
                cx.error(
                    &when_key,
                    "a Given/When/Shall rule needs `shall = method`: the rule that must hold \
                     after the event",
                );
            }
            None
        }
        (None, _, None, Some(shall)) => {
            if missing(WHEN) {
                cx.error(
                    &shall,
                    "a Given/When/Shall rule needs `when = Variant`: the event(s) it concerns \
                     (for a rule that always holds, write `#[invariant(method, \"..\")]`)",
                );
            }
            None
        }
        (None, Some(given), None, None) => {
            if missing(WHEN) && missing(SHALL) {
                cx.error(
                    &given,
                    "a Given/When/Shall rule needs `when = Variant` and `shall = method` besides \
                     `given`: the event(s) it concerns and the rule that must hold after them",
                );
            }
            None
        }
        (None, None, None, None) => {
            if reported.is_empty() && !unknown_keys {
                cx.error(
                    attr,
                    format!("this invariant names no method to check: write {INVARIANT_EXAMPLE}"),
                );
            }
            None
        }
    };
    match (rule, kind) {
        (Some(rule), Some(kind)) if cx.error_count() == errors_before => {
            Ok(Some(InvariantAttr { rule, kind }))
        }
        _ => Ok(None),
    }
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

/// `#[projection(name = "account_summary")]` or `#[projection(name = "..", key = function)]`
/// on a view's `impl` block.
pub(crate) struct ProjectionArgs {
    /// The name, if given and valid.
    pub(crate) name: Option<LitStr>,
    /// The function computing a document's key, if not the aggregate id.
    pub(crate) key: Option<Path>,
}

const PROJECTION_EXAMPLE: &str = "`#[projection(name = \"account_summary\")]`";

/// Whether `name` matches `^[a-z_][a-z0-9_]{0,62}$`: it names tables, checkpoints and dead
/// letters in every backend.
pub(crate) fn valid_view_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A valid name close to an invalid one: `AccountSummary` → `account_summary`,
/// `account-summary` → `account_summary`.
fn suggest_view_name(name: &str) -> Option<String> {
    let snake = crate::util::camel_to_snake(name);
    let mut out = String::with_capacity(snake.len());
    for c in snake.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out.truncate(63);
    (valid_view_name(&out) && out.chars().any(|c| c != '_')).then_some(out)
}

pub(crate) fn projection_args(cx: &Ctxt, args: TokenStream) -> ProjectionArgs {
    let mut name = Once::new(cx, PROJECTION, NAME);
    let mut key = Once::new(cx, PROJECTION, KEY);
    // A misspelt or malformed `name` is reported once, not also as missing.
    let mut name_reported = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident(NAME) {
            // #[projection(name = "account_summary")]
            let value = meta.value()?;
            if !value.peek(LitStr) {
                name_reported = true;
                let written: syn::Expr = value.parse()?;
                let text = written.to_token_stream().to_string().replace(' ', "");
                cx.error(
                    &written,
                    format!("`name` takes a string literal: write `name = \"{text}\"`"),
                );
                return Ok(());
            }
            let lit: LitStr = value.parse()?;
            let value = lit.value();
            if valid_view_name(&value) {
                name.set(&meta.path, lit);
            } else {
                name_reported = true;
                let fix = match suggest_view_name(&value) {
                    Some(s) => format!(", e.g. `name = \"{s}\"`"),
                    None => String::new(),
                };
                cx.error(
                    &lit,
                    format!(
                        "\"{value}\" is not a valid projection name: it names the view's \
                         documents, checkpoint and dead letters in every store, so it is 1 to 63 \
                         lowercase ASCII letters, digits and `_`, not starting with a digit{fix}"
                    ),
                );
            }
        } else if meta.path.is_ident(KEY) {
            // #[projection(name = "..", key = document_key)]
            let func = rust_value::<Path>(meta.value()?, PROJECTION, KEY, "a function path")?;
            key.set(&meta.path, func);
        } else {
            let (error, suggestion) = unknown_key(&meta, PROJECTION, &[NAME, KEY]);
            name_reported |= suggestion == Some(NAME);
            cx.syn_error(error);
            skip_value(&meta)?;
        }
        Ok(())
    });
    let at = if args.is_empty() {
        proc_macro2::Span::call_site()
    } else {
        syn::spanned::Spanned::span(&args)
    };
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(e);
        name_reported = true;
    }
    let (name, key) = (name.get(), key.get());
    if name.is_none() && !name_reported {
        cx.syn_error(syn::Error::new(
            at,
            format!(
                "a projection needs a name: it names the view's documents, its checkpoint and \
                 its dead letters; write {PROJECTION_EXAMPLE}"
            ),
        ));
    }
    ProjectionArgs { name, key }
}

/// One `#[on(Enum::Variant)]` or `#[on(Enum::Variant, delete)]` of a view's method.
pub(crate) struct OnAttr {
    /// `BankEvent::Deposited`, as written.
    pub(crate) path: Path,
    /// `delete`: the document is removed after the handler.
    pub(crate) delete: bool,
}

const ON_EXAMPLE: &str = "`#[on(AccountEvent::Deposited)]`";

/// Reads every `#[on(..)]` of a method (a method may handle several variants); the ones
/// written wrong are reported and left out.
pub(crate) fn on(cx: &Ctxt, attrs: &[Attribute]) -> Vec<OnAttr> {
    let mut found = Vec::new();
    for attr in attrs.iter().filter(|a| is_on(a)) {
        let list = match &attr.meta {
            Meta::List(list) if !list.tokens.is_empty() => list,
            Meta::List(list) => {
                cx.error(
                    list,
                    format!(
                        "`#[on(..)]` names the event variant the method handles, with its enum: \
                         write {ON_EXAMPLE}"
                    ),
                );
                continue;
            }
            _ => {
                cx.error(
                    attr,
                    format!(
                        "`#[on]` names the event variant the method handles, with its enum: \
                         write {ON_EXAMPLE}"
                    ),
                );
                continue;
            }
        };
        match list.parse_args_with(|input: ParseStream<'_>| parse_on(cx, input)) {
            Ok(Some(on)) => found.push(on),
            Ok(None) => {}
            Err(e) => cx.syn_error(e),
        }
    }
    found
}

fn parse_on(cx: &Ctxt, input: ParseStream<'_>) -> syn::Result<Option<OnAttr>> {
    let errors_before = cx.error_count();
    let path = match input.call(Path::parse_mod_style) {
        Ok(path) => path,
        Err(_) => {
            return Err(syn::Error::new(
                input.span(),
                format!(
                    "`#[on(..)]` starts with the path of the event variant the method handles: \
                     write {ON_EXAMPLE}"
                ),
            ));
        }
    };
    if input.peek(syn::token::Brace) || input.peek(syn::token::Paren) {
        let fields: proc_macro2::Group = input.parse()?;
        let mut at = path.to_token_stream();
        fields.to_tokens(&mut at);
        let text = path.to_token_stream().to_string().replace(' ', "");
        cx.error(
            at,
            format!(
                "`#[on(..)]` names the variant alone, without fields: write `#[on({text})]`; \
                 the method's parameters name the fields it reads"
            ),
        );
    } else if path.segments.len() < 2 {
        let text = path.to_token_stream().to_string();
        cx.error(
            &path,
            format!(
                "`#[on({text})]` names a variant without its enum (a view may read several event \
                 enums): write `#[on(EventEnum::{text})]`"
            ),
        );
    }
    let mut delete = Once::new(cx, ON, DELETE);
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let flag: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let name = flag.to_string();
        if input.peek(Token![=]) {
            // `delete = true` and the like: a flag takes no value.
            let mut at = flag.to_token_stream();
            while !input.is_empty() && !input.peek(Token![,]) {
                at.extend([input.parse::<proc_macro2::TokenTree>()?]);
            }
            let fix = if name == DELETE {
                "write `delete` alone".to_owned()
            } else {
                format!("expected {}", one_of(&[DELETE]))
            };
            cx.error(
                at,
                format!("`#[on(..)]` takes flags, not keys with values: {fix}"),
            );
        } else if name == DELETE {
            // #[on(OrderEvent::Closed, delete)]
            delete.set(&flag, ());
        } else {
            let message = match did_you_mean(&name, &[DELETE]) {
                Some(k) => format!("unknown flag `{name}` in `#[on(..)]`: did you mean `{k}`?"),
                None => format!(
                    "unknown flag `{name}` in `#[on(..)]`; expected `delete` (the document is \
                     removed after the handler)"
                ),
            };
            cx.error(&flag, message);
        }
    }
    let delete = delete.get().is_some();
    Ok((cx.error_count() == errors_before).then_some(OnAttr { path, delete }))
}

/// Whether an attribute is `#[on..]`, to read or strip it.
pub(crate) fn is_on(attr: &Attribute) -> bool {
    attr.path().is_ident(ON)
}
