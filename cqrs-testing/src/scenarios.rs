//! The `scenarios!` macro: a table of Given/When/Then cases, one `#[test]` each.

/// Declares a table of Given/When/Then scenarios of one aggregate, each its own named
/// `#[test]`.
///
/// The first item is the aggregate type, followed by `;`. Then come the cases, each a
/// test name and a body of `key: value` clauses separated by commas (a trailing comma is
/// fine). Every case expands to `#[test] fn name() { .. }` running the
/// [Given/When/Then API](crate::AggregateScenario) step by step, so it fails with the same
/// messages and makes the same [automatic checks](crate#what-every-scenario-checks-without-being-asked),
/// invariants included. Attributes and doc comments written before a case's name
/// (`#[ignore]`, `#[should_panic(expected = "..")]`, `/// why`) are put on its test; do
/// not add `#[test]` yourself.
///
/// The clauses, in this order:
///
/// | clause | what it does | API |
/// |---|---|---|
/// | `given: [e1, e2]` | events already recorded (repeatable, may be empty) | [`Given::and`](crate::Given::and) |
/// | `given_stored: [("Type", 1, json!({..})), ..]` | events as stored: type name, schema version, JSON payload (repeatable, mixes with `given`) | [`Given::and_stored`](crate::Given::and_stored) |
/// | `with_services: expr` | the services the handler gets | [`Given::with_services`](crate::Given::with_services) |
/// | `expect_violation: "rule"` | the new events must break this invariant | [`Given::expect_violation`](crate::Given::expect_violation) |
/// | `metadata: expr` | the command's [`Metadata`](cqrs_core::Metadata) | [`Given::when_with`](crate::Given::when_with) |
/// | `when: command` | the command to run (at most one) | [`Given::when`](crate::Given::when) |
/// | `then: [e1, e2]` | it produced exactly these events (`then: []`: none) | [`Then::then_events`](crate::Then::then_events) |
/// | `then_no_events` | it was accepted without events | [`Then::then_no_events`](crate::Then::then_no_events) |
/// | `then_error: error` | it was rejected with this error | [`Then::then_error`](crate::Then::then_error) |
/// | `then_error_matches: \|e\| ..` | it was rejected with an error the predicate accepts | [`Then::then_error_matches`](crate::Then::then_error_matches) |
/// | `then_events_match: \|events\| ..` | it was accepted with events the predicate accepts | [`Then::then_events_match`](crate::Then::then_events_match) |
/// | `then_given: [e1, e2]` | without `when`: the given history is exactly this | [`Given::then_given_events`](crate::Given::then_given_events) |
/// | `then_state: \|state\| ..` | asserts on the state (repeatable) | [`Then::then_state`](crate::Then::then_state) |
///
/// The `given*` clauses come first and `then*` clauses last; `then*` clauses may be
/// repeated and combined (`then: [..], then_state: |s| ..`). A case without `when` checks
/// its history alone (its invariants, codec round trips and refold), like
/// [`Given::then_state`](crate::Given::then_state).
///
/// A failing case is reported by its test name; the panic location is the line of the
/// `scenarios!` invocation (a macro's expansion cannot point at one of its clauses).
///
/// ```
/// # include!("doctest_account.rs");
/// use cqrs_testing::scenarios;
///
/// scenarios! {
///     Account;
///
///     /// A deposit adds to the balance.
///     a_deposit_adds_up {
///         given: [AccountEvent::Deposited { amount: 5 }],
///         when: AccountCommand::Deposit { amount: 2 },
///         then: [AccountEvent::Deposited { amount: 2 }],
///         then_state: |account| assert_eq!(account.balance, 7),
///     }
///
///     an_overdraft_is_refused {
///         given: [],
///         when: AccountCommand::Withdraw { amount: 1 },
///         then_error: AccountError::InsufficientFunds,
///     }
///
///     old_events_still_count {
///         given_stored: [("Deposited", 1, json!({"cents": "250"}))],
///         given: [AccountEvent::Withdrew { amount: 50 }],
///         when: AccountCommand::Withdraw { amount: 200 },
///         then: [AccountEvent::Withdrew { amount: 200 }],
///     }
///
///     #[should_panic(expected = "then_events: the events differ")]
///     a_wrong_expectation_fails {
///         when: AccountCommand::Deposit { amount: 1 },
///         then: [AccountEvent::Deposited { amount: 2 }],
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! scenarios {
    (
        $aggregate:ty;
        $( $(#[$meta:meta])* $name:ident { $($body:tt)* } $(,)? )*
    ) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                $crate::__scenario!(@given [$name] [$aggregate]
                    [<$aggregate as $crate::AggregateScenario>::given_no_events()]
                    []
                    $($body)* ,
                );
            }
        )*
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "scenarios!: expected `AggregateType;` followed by cases, each \
             `test_name { given: [..], when: command, then: [..] }`"
        );
    };
}

/// The body of one `scenarios!` case, munched clause by clause into a Given/When/Then
/// call chain: `@given` before `when`, `@then` after it.
#[doc(hidden)]
#[macro_export]
macro_rules! __scenario {
    // ---- before `when` ----------------------------------------------------------------
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)*] , $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a] [$($acc)*] [$($meta)*] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)*]
        given : [$($event:expr),* $(,)?] , $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a]
            [$($acc)* .and(::std::vec![$($event),*])] [$($meta)*] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)*]
        given_stored : [$(($ty:expr, $version:expr, $payload:expr $(,)?)),* $(,)?] ,
        $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a]
            [$($acc)* $(.and_stored($ty, $version, $payload))*] [$($meta)*] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] with_services : $services:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a]
            [$($acc)* .with_services($services)] [] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] expect_violation : $rule:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a]
            [$($acc)* .expect_violation($rule)] [] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] metadata : $metadata:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@given [$case] [$a] [$($acc)*] [$metadata] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] when : $command:expr , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)* .when($command)] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$metadata:expr] when : $command:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@then [$case]
            [$($acc)* .when_with($command, $metadata)] $($rest)*)
    };
    // Without `when`: the history alone.
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] then_given : [$($event:expr),* $(,)?] ,
        $($rest:tt)*) => {
        $crate::__scenario!(@then [$case]
            [$($acc)* .then_given_events(::std::vec![$($event),*])] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] then_state : $check:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)* .then_state($check)] $($rest)*)
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] []) => {
        let _ = $($acc)*.then_state(|_| {});
    };
    // Mistakes.
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)*] given $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: write `given: [event, ..],` \
             (a list of events in brackets, then a comma)"
        ));
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)*] given_stored $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: write \
             `given_stored: [(\"Type\", version, json!({..})), ..],` (a list of (type name, \
             schema version, JSON payload) in brackets, then a comma)"
        ));
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [$($meta:tt)+] $key:ident $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: `metadata` comes last \
             before `when`: found `", ::core::stringify!($key), "` after it"
        ));
    };
    (@given [$case:ident] [$a:ty] [$($acc:tt)*] [] $key:ident $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: unexpected `",
            ::core::stringify!($key), "` before `when`; a case is `given: [..]`, \
             `given_stored: [..]`, `with_services: ..`, `expect_violation: \"rule\"`, \
             `metadata: ..`, then `when: command`, then `then: [..]`, `then_no_events`, \
             `then_error: ..`, `then_error_matches: ..`, `then_events_match: ..` or \
             `then_state: ..`, each followed by a comma"
        ));
    };
    (@given [$case:ident] $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: expected a clause such as \
             `given: [event, ..],` or `when: command,`"
        ));
    };

    // ---- after `when` -----------------------------------------------------------------
    (@then [$case:ident] [$($acc:tt)*] , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)*] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then : [$($event:expr),* $(,)?] , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case]
            [$($acc)* .then_events(::std::vec![$($event),*])] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then_no_events , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)* .then_no_events()] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then_error : $error:expr , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)* .then_error($error)] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then_error_matches : $predicate:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@then [$case]
            [$($acc)* .then_error_matches($predicate)] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then_events_match : $predicate:expr ,
        $($rest:tt)*) => {
        $crate::__scenario!(@then [$case]
            [$($acc)* .then_events_match($predicate)] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*] then_state : $check:expr , $($rest:tt)*) => {
        $crate::__scenario!(@then [$case] [$($acc)* .then_state($check)] $($rest)*)
    };
    (@then [$case:ident] [$($acc:tt)*]) => {
        let _ = $($acc)*;
    };
    // Mistakes.
    (@then [$case:ident] [$($acc:tt)*] then $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: write `then: [event, ..],` \
             (a list of events in brackets, then a comma)"
        ));
    };
    (@then [$case:ident] [$($acc:tt)*] when $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: a case sends one command, \
             but `when` comes twice"
        ));
    };
    (@then [$case:ident] [$($acc:tt)*] $key:ident $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: unexpected `",
            ::core::stringify!($key), "` after `when`; expected `then: [..]`, \
             `then_no_events`, `then_error: ..`, `then_error_matches: ..`, \
             `then_events_match: ..` or `then_state: ..`, each followed by a comma"
        ));
    };
    (@then [$case:ident] $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "scenarios!: in case `", ::core::stringify!($case), "`: expected a `then*` clause \
             such as `then: [event, ..],`"
        ));
    };
}
