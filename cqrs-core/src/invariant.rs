//! Invariants: the rules an aggregate's state always obeys, declared once on the
//! aggregate and checked after every applied event.
//!
//! `#[derive(Aggregate)]` takes two forms of `#[invariant(..)]`:
//!
//! - an **always-rule**: a method `fn(&self) -> bool` and the sentence it stands for,
//!   `#[invariant(balance_never_negative, "a balance is never negative")]`, checked after
//!   every event;
//! - a **Given/When/Shall rule**: a precondition on the state before the event (`given`),
//!   the event variants it concerns (`when`), and the rule that must hold after applying
//!   one (`shall`), each a method `fn(&self) -> bool` but `when`:
//!   `#[invariant(given = is_airborne, when = DestinationChanged, shall = route_matches_destination,
//!   "given an airborne flight, when its destination changes, its arrival route leads there")]`.
//!
//! Rules are checked after **each** event, not after a command's whole batch: every event
//! is a state the aggregate is replayed through, so each must leave it valid. When two
//! facts restore a rule only together, record them in one event (or order the events so
//! that each step is valid).
//!
//! Every Given/When/Then scenario of `cqrs-testing` checks them after each event, and the
//! runtime enforces them when the aggregate opts in with
//! `#[aggregate(.., enforce_invariants)]` (or [`CqrsBuilder::enforce_invariants`]): a command
//! whose events would break one is refused with
//! [`CommandError::Invariant`](crate::CommandError::Invariant) before anything is appended.
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::invariant::InvariantViolation;
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! enum TankEvent { Filled { litres: i64 }, Drained { litres: i64 } }
//! #[derive(Debug, Clone, PartialEq, Command)]
//! enum TankCommand { Fill { litres: i64 }, Drain { litres: i64 } }
//! #[derive(Debug, thiserror::Error)]
//! #[error("never")]
//! struct TankError;
//!
//! #[derive(Debug, Default, Aggregate)]
//! #[aggregate(command = TankCommand, event = TankEvent, error = TankError)]
//! #[invariant(never_negative, "a tank never holds less than nothing")]
//! #[invariant(given = is_empty, when = Drained, shall = still_empty, "an empty tank stays empty when drained")]
//! struct Tank { litres: i64 }
//!
//! impl Tank {
//!     fn never_negative(&self) -> bool { self.litres >= 0 }
//!     fn is_empty(&self) -> bool { self.litres == 0 }
//!     fn still_empty(&self) -> bool { self.litres == 0 }
//! }
//!
//! #[aggregate_impl]
//! impl Tank {
//!     #[handle] fn fill(&self, litres: i64) -> TankEvent { TankEvent::Filled { litres } }
//!     // A bug: nothing stops draining more than the tank holds.
//!     #[handle] fn drain(&self, litres: i64) -> TankEvent { TankEvent::Drained { litres } }
//!     #[apply] fn filled(&mut self, litres: &i64) { self.litres += litres }
//!     #[apply] fn drained(&mut self, litres: &i64) { self.litres -= litres }
//! }
//!
//! let mut tank = Tank::default();
//! tank.apply_checked(&TankEvent::Filled { litres: 5 }).unwrap();
//! let broken = tank.apply_checked(&TankEvent::Drained { litres: 7 }).unwrap_err();
//! assert_eq!(broken.name, "never_negative");
//! assert_eq!(broken.to_string(), "invariant `never_negative` broken by `Drained`: a tank never holds less than nothing");
//! assert_eq!(Tank::INVARIANTS.len(), 2);
//! ```
//!
//! [`CqrsBuilder::enforce_invariants`]: crate::CqrsBuilder::enforce_invariants

use std::fmt;

/// One declared invariant, as `#[derive(Aggregate)]` lists it in
/// [`Aggregate::INVARIANTS`](crate::Aggregate::INVARIANTS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invariant {
    /// The rule's name: its predicate method (the `shall` method of a Given/When/Shall
    /// rule).
    pub name: &'static str,
    /// The sentence it stands for, as a domain expert would say it.
    pub rule: &'static str,
    /// When it is checked.
    pub kind: InvariantKind,
}

/// When an invariant is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvariantKind {
    /// After every event.
    Always,
    /// After an event of one of the `when` variants, if `given` held before it.
    GivenWhenShall {
        /// The precondition method, evaluated on the state before the event.
        given: Option<&'static str>,
        /// The event variants the rule concerns.
        when: &'static [&'static str],
    },
}

/// An invariant that does not hold after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct InvariantViolation {
    /// The rule's name (its predicate method).
    pub name: &'static str,
    /// Its sentence.
    pub rule: &'static str,
    /// The type of the event after which it failed, if the check followed an event.
    pub event_type: Option<&'static str>,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event_type {
            Some(event) => write!(
                f,
                "invariant `{}` broken by `{event}`: {}",
                self.name, self.rule
            ),
            None => write!(f, "invariant `{}` broken: {}", self.name, self.rule),
        }
    }
}

impl InvariantViolation {
    /// The violation of `invariant`, not yet tied to an event.
    pub fn of(invariant: &Invariant) -> Self {
        Self {
            name: invariant.name,
            rule: invariant.rule,
            event_type: None,
        }
    }
}

/// Which Given/When/Shall rules an event triggers: those whose `when` names its variant
/// and whose `given` held on the state before it. Computed before the event is applied
/// and consumed by the check after it, so the state never has to be copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvariantGate(u64);

impl InvariantGate {
    /// The most Given/When/Shall rules one aggregate may declare.
    pub const MAX_RULES: usize = 64;

    /// No rule triggered.
    pub const NONE: Self = Self(0);

    /// This gate with rule `index` (its position among the Given/When/Shall rules)
    /// triggered.
    #[must_use]
    pub const fn with(self, index: usize) -> Self {
        Self(self.0 | (1 << index))
    }

    /// Whether rule `index` is triggered.
    pub const fn has(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
}
