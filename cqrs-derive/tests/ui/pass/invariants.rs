// Every form `#[invariant(..)]` accepts: an always-rule; Given/When/Shall rules with and
// without `given`, with one variant, `when = A | B` and `when = [A, B]` (a trailing comma
// too), their keys and sentence in any order, a raw-string sentence; a tuple and a unit
// variant in `when`; `#[invariant]` before `#[aggregate]`; `enforce_invariants`; and
// predicate methods in a plain `impl` block and in the `#[aggregate_impl]` block.
use cqrs_core::Aggregate;
use cqrs_core::invariant::{InvariantGate, InvariantKind};
use cqrs_core::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum TankEvent {
    Filled { litres: i64 },
    Drained { litres: i64 },
    Sealed,
    Labelled(String),
    Opened,
}

#[derive(Debug, Clone, PartialEq, Command)]
enum TankCommand {
    Fill { litres: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct TankError;

#[derive(Debug, Default, Aggregate)]
#[invariant(never_negative, "a tank never holds less than nothing")]
#[aggregate(command = TankCommand, event = TankEvent, error = TankError, enforce_invariants)]
#[invariant(given = is_sealed, when = Filled | Drained, shall = unchanged_when_sealed,
    "given a sealed tank, when it is filled or drained, its contents do not change")]
#[invariant(when = [Sealed, Labelled,], shall = has_label, "a tank is labelled when sealed")]
#[invariant(
    r"when a tank is opened, it is no longer sealed",
    shall = not_sealed,
    when = Opened,
)]
struct Tank {
    litres: i64,
    sealed_at: Option<i64>,
    sealed: bool,
    label: Option<String>,
}

impl Tank {
    fn never_negative(&self) -> bool {
        self.litres >= 0
    }
    fn is_sealed(&self) -> bool {
        self.sealed
    }
    fn unchanged_when_sealed(&self) -> bool {
        self.sealed_at.is_none_or(|at| at == self.litres)
    }
    fn has_label(&self) -> bool {
        !self.sealed || self.label.is_some()
    }
}

#[aggregate_impl]
impl Tank {
    fn not_sealed(&self) -> bool {
        !self.sealed
    }
    #[handle]
    fn fill(&self, litres: i64) -> TankEvent {
        TankEvent::Filled { litres }
    }
    #[apply]
    fn filled(&mut self, litres: &i64) {
        self.litres += litres;
    }
    #[apply]
    fn drained(&mut self, litres: &i64) {
        self.litres -= litres;
    }
    #[apply]
    fn sealed(&mut self) {
        self.sealed = true;
        self.sealed_at = Some(self.litres);
    }
    #[apply]
    fn labelled(&mut self, _0: &String) {
        self.label = Some(_0.clone());
    }
    #[apply]
    fn opened(&mut self) {
        // A bug: opening forgets to unseal.
    }
}

fn main() {
    const { assert!(Tank::ENFORCE_INVARIANTS) };
    let names: Vec<&str> = Tank::INVARIANTS.iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "never_negative",
            "unchanged_when_sealed",
            "has_label",
            "not_sealed"
        ]
    );
    assert_eq!(Tank::INVARIANTS[0].kind, InvariantKind::Always);
    assert_eq!(
        Tank::INVARIANTS[1].kind,
        InvariantKind::GivenWhenShall {
            given: Some("is_sealed"),
            when: &["Filled", "Drained"],
        }
    );
    assert_eq!(
        Tank::INVARIANTS[2].kind,
        InvariantKind::GivenWhenShall {
            given: None,
            when: &["Sealed", "Labelled"],
        }
    );
    assert_eq!(
        Tank::INVARIANTS[3].rule,
        "when a tank is opened, it is no longer sealed"
    );

    let mut tank = Tank::default();
    tank.apply_checked(&TankEvent::Filled { litres: 5 }).unwrap();
    tank.apply_checked(&TankEvent::Drained { litres: 2 }).unwrap();
    // The always-rule, after any event.
    let broken = tank
        .apply_checked(&TankEvent::Drained { litres: 4 })
        .unwrap_err();
    assert_eq!(broken.name, "never_negative");
    assert_eq!(broken.event_type, Some("Drained"));

    let mut tank = Tank::default();
    tank.apply_checked(&TankEvent::Filled { litres: 5 }).unwrap();
    // `when = [Sealed, Labelled]` without `given`: sealing without a label breaks it.
    let broken = tank.apply_checked(&TankEvent::Sealed).unwrap_err();
    assert_eq!(broken.name, "has_label");
    assert_eq!(
        broken.to_string(),
        "invariant `has_label` broken by `Sealed`: a tank is labelled when sealed"
    );
    tank.apply_checked(&TankEvent::Labelled("water".into()))
        .unwrap();
    // `given = is_sealed`: the tank is sealed now, so filling it breaks the rule.
    assert!(tank.invariant_gate(&TankEvent::Filled { litres: 1 }).has(0));
    let broken = tank
        .apply_checked(&TankEvent::Filled { litres: 1 })
        .unwrap_err();
    assert_eq!(broken.name, "unchanged_when_sealed");

    // The gate: an unsealed tank does not trigger the `given` rule.
    let open = Tank::default();
    assert_eq!(
        open.invariant_gate(&TankEvent::Filled { litres: 1 }),
        InvariantGate::NONE
    );
    assert!(open.invariant_gate(&TankEvent::Labelled("x".into())).has(1));
    assert!(open.invariant_gate(&TankEvent::Opened).has(2));

    // `when = Opened` (keys after the sentence): the buggy `opened` leaves it sealed.
    let mut tank = Tank::default();
    tank.apply_checked(&TankEvent::Labelled("oil".into()))
        .unwrap();
    tank.apply_checked(&TankEvent::Sealed).unwrap();
    let broken = tank.apply_checked(&TankEvent::Opened).unwrap_err();
    assert_eq!(broken.name, "not_sealed");
}
