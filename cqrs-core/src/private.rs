//! Support for the code the derives generate. Not public API: no semver guarantees.

pub use ::core;
pub use ::serde;
pub use ::std;

use crate::aggregate::Aggregate;
use crate::codec::{Codec, decode_variant};
use crate::event::{DecodeReason, DomainEvent};
use crate::upcast::{IntoUpcast, Payload, StoredValue, Upcast, Value};

/// One variant of a command or event enum, as the derive saw it.
#[derive(Debug)]
pub struct VariantInfo {
    /// The variant's identifier.
    pub name: &'static str,
    /// What `#[aggregate_impl]` reports when no method handles or applies this variant.
    pub missing: &'static str,
}

/// The variants of a command or event enum; implemented by the derives and read by the
/// compile-time coverage check `#[aggregate_impl]` generates.
pub trait Variants {
    /// Every variant in declaration order.
    const VARIANTS: &'static [VariantInfo];
}

/// The dispatch `#[aggregate_impl]` generates; `#[derive(Aggregate)]` forwards to it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[aggregate_impl]` block",
    label = "`#[derive(Aggregate)]` needs the `#[handle]` and `#[apply]` methods of `{Self}`",
    note = "add `#[aggregate_impl]` on an `impl {Self} {{ .. }}` block holding one `#[handle]` method per command variant and one `#[apply]` method per event variant"
)]
pub trait Dispatch: Aggregate {
    /// Routes a command to its `#[handle]` method.
    fn dispatch_handle<'a>(
        &'a self,
        command: Self::Command,
        services: &'a Self::Services,
    ) -> impl ::core::future::Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send + 'a;

    /// Routes an event to its `#[apply]` method.
    fn dispatch_apply(&mut self, event: &Self::Event);
}

/// Compares two strings in a `const` context.
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `name` is one of `names`.
pub const fn contains(names: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < names.len() {
        if str_eq(names[i], name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether `name` is one of the `variants`.
pub const fn variant_known(variants: &[VariantInfo], name: &str) -> bool {
    let mut i = 0;
    while i < variants.len() {
        if str_eq(variants[i].name, name) {
            return true;
        }
        i += 1;
    }
    false
}

/// The message of the first variant that no method in `served` serves. `None` also when
/// `served` names a variant that does not exist: that mistake is reported at its method.
pub const fn uncovered(variants: &'static [VariantInfo], served: &[&str]) -> Option<&'static str> {
    let mut i = 0;
    while i < served.len() {
        if !variant_known(variants, served[i]) {
            return None;
        }
        i += 1;
    }
    let mut i = 0;
    while i < variants.len() {
        if !contains(served, variants[i].name) {
            return Some(variants[i].missing);
        }
        i += 1;
    }
    None
}

/// One row per command variant: its name, and per field its name and the message for a
/// handler that does not take it.
pub type HandlerFields = &'static [(&'static str, &'static [(&'static str, &'static str)])];

/// The message for the first field of `variant` that a handler taking `params` lacks.
/// `None` also when it takes a parameter that is no field: rustc reports that one.
pub const fn missing_field(
    table: HandlerFields,
    variant: &str,
    params: &[&str],
) -> Option<&'static str> {
    let mut v = 0;
    while v < table.len() {
        if str_eq(table[v].0, variant) {
            let fields = table[v].1;
            let mut p = 0;
            while p < params.len() {
                let mut f = 0;
                let mut known = false;
                while f < fields.len() {
                    known |= str_eq(fields[f].0, params[p]);
                    f += 1;
                }
                if !known {
                    return None;
                }
                p += 1;
            }
            let mut f = 0;
            while f < fields.len() {
                if !contains(params, fields[f].0) {
                    return Some(fields[f].1);
                }
                f += 1;
            }
        }
        v += 1;
    }
    None
}

/// The error for a type name no variant of `E` is stored under.
pub fn unknown_event_type<E: DomainEvent>(enum_name: &'static str) -> DecodeReason {
    DecodeReason::UnknownEventType {
        enum_name,
        known: E::EVENT_TYPES.join(", "),
    }
}

/// A failed upcast step, as a decode reason.
pub fn step_failed(
    from: u32,
    to: u32,
    step: &'static str,
    message: impl ::core::fmt::Display,
) -> DecodeReason {
    DecodeReason::Upcast {
        from,
        to,
        step,
        message: message.to_string(),
    }
}

/// Runs a JSON step; its return type decides what it may do (see [`IntoUpcast`]).
#[inline]
pub fn json_step<R: IntoUpcast>(
    step: impl FnOnce(Value) -> R,
    payload: Value,
) -> Result<Upcast, String> {
    step(payload).into_upcast()
}

/// Decodes every event a split produced, in order, each through its own chain.
pub fn decode_split<E: DomainEvent, C: Codec, F: FnMut(E)>(
    codec: &C,
    depth: u8,
    events: Vec<StoredValue>,
    sink: &mut F,
) -> Result<(), DecodeReason> {
    for StoredValue {
        event_type,
        schema_version,
        payload,
    } in events
    {
        let nested = |reason| DecodeReason::Split {
            event_type: event_type.to_string(),
            schema_version,
            reason: Box::new(reason),
        };
        let payload = Payload::split(depth, payload).map_err(nested)?;
        E::decode_payload(codec, &event_type, schema_version, payload, sink).map_err(nested)?;
    }
    Ok(())
}

/// Decodes an event stored under a removed type name through its JSON function, which
/// must split it into today's events or drop it.
pub fn decode_removed<E: DomainEvent, C: Codec, F: FnMut(E), R: IntoUpcast>(
    codec: &C,
    step: &'static str,
    payload: Payload<'_>,
    func: impl FnOnce(Value) -> R,
    sink: &mut F,
) -> Result<(), DecodeReason> {
    let fail = |message: String| DecodeReason::Removed { step, message };
    let depth = payload.depth();
    let json = payload.into_json(codec).map_err(|e| fail(e.to_string()))?;
    match json_step(func, json).map_err(fail)? {
        Upcast::Split(events) => decode_split(codec, depth, events, sink),
        Upcast::Drop => Ok(()),
        Upcast::Next(_) => Err(fail(
            "a removed type has no next version: return `Upcast::Split` with the events it \
             stands for today, or `Upcast::Drop`"
                .to_owned(),
        )),
    }
}

/// Decodes the current shape of the variant at `index` from the JSON a step produced.
pub fn variant_from_json<E: DomainEvent>(index: u32, value: Value) -> Result<E, String> {
    decode_variant(index, value)
        .map_err(|e| format!("its output does not deserialise as the current shape: {e}"))
}

/// Marks a handler that returns one event.
pub struct One;
/// Marks a handler that returns a `Vec` of events.
pub struct Many;
/// Marks a handler that returns an `Option` of an event.
pub struct Maybe;
/// Marks a handler that returns a `Result`.
pub struct Fallible<M>(M);
/// Marks a handler that cannot fail.
pub struct Infallible<M>(M);

/// What a handler may return as its events: one, a `Vec`, or an `Option`.
pub trait IntoEvents<E, M> {
    /// Converts into a list.
    fn into_events(self) -> Vec<E>;
}

#[diagnostic::do_not_recommend]
impl<E> IntoEvents<E, One> for E {
    fn into_events(self) -> Vec<E> {
        vec![self]
    }
}

#[diagnostic::do_not_recommend]
impl<E> IntoEvents<E, Many> for Vec<E> {
    fn into_events(self) -> Vec<E> {
        self
    }
}

#[diagnostic::do_not_recommend]
impl<E> IntoEvents<E, Maybe> for Option<E> {
    fn into_events(self) -> Vec<E> {
        self.into_iter().collect()
    }
}

/// What a handler may return: events, or a `Result` of events whose error converts into
/// the aggregate's error.
#[diagnostic::on_unimplemented(
    message = "a `#[handle]` method cannot return `{Self}`",
    label = "return an event, a `Vec` or an `Option` of events, or a `Result` of those",
    note = "the aggregate's event type is `{E}` and its error type is `{Er}`; a `Result`'s error must convert into `{Er}` with `From`"
)]
pub trait IntoHandled<E, Er, M> {
    /// Converts into the runtime's shape.
    fn into_handled(self) -> Result<Vec<E>, Er>;
}

#[diagnostic::do_not_recommend]
impl<T: IntoEvents<E, M>, E, Er, M> IntoHandled<E, Er, Infallible<M>> for T {
    fn into_handled(self) -> Result<Vec<E>, Er> {
        Ok(self.into_events())
    }
}

#[diagnostic::do_not_recommend]
impl<T: IntoEvents<E, M>, X, E, Er: From<X>, M> IntoHandled<E, Er, Fallible<M>> for Result<T, X> {
    fn into_handled(self) -> Result<Vec<E>, Er> {
        match self {
            Ok(t) => Ok(t.into_events()),
            Err(x) => Err(Er::from(x)),
        }
    }
}
