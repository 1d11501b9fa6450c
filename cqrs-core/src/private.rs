//! Support for the code the derives generate. Not public API: no semver guarantees.

pub use ::core;
pub use ::serde;
pub use ::std;

use crate::aggregate::Aggregate;
use crate::event::{DecodeReason, DomainEvent};

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

/// The error for a type name no variant of `E` is stored under.
pub fn unknown_event_type<E: DomainEvent>(enum_name: &'static str) -> DecodeReason {
    DecodeReason::UnknownEventType {
        enum_name,
        known: E::EVENT_TYPES.join(", "),
    }
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
