//! Golden files: the committed cases of `tests/golden/account`, a report that lists every
//! failing file, bless mode, bad directories and malformed files, and capturing cases.

mod common;
mod versioned;

use std::path::{Path, PathBuf};

use common::{TempDir, panic_message};
use cqrs_core::upcast::StoredValue;
use cqrs_testing::golden::{self, Case, FileError, GoldenError, Mode};
use serde_json::json;
use versioned::AccountEvent;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/account");

/// A case file's text in canonical form.
fn case_text(
    event_type: &str,
    version: u32,
    payload: serde_json::Value,
    expected: Option<serde_json::Value>,
) -> String {
    let mut case = Case::new(event_type, version, payload);
    case.expected = expected.map(|e| e.as_array().unwrap().clone());
    case.to_json()
}

// ---- the committed cases -------------------------------------------------------------

#[test]
fn the_committed_cases_pass() {
    let summary = golden::check::<AccountEvent>(COMMITTED);
    let names: Vec<PathBuf> = summary
        .cases
        .iter()
        .map(|p| p.strip_prefix(COMMITTED).unwrap().to_owned())
        .collect();
    // Recursive, sorted by path, README.md left out.
    assert_eq!(
        names,
        [
            "closed.json",
            "deposited/v1.json",
            "noted-v1-empty-dropped.json",
            "opened/alias-account-created.json",
            "opened/v1.json",
            "opened/v2.json",
            "opened/v3-current.json",
            "removed/audited-dropped.json",
            "removed/transferred-split.json",
            "withdrawn-alias.json",
        ]
        .map(PathBuf::from)
    );
    assert!(summary.blessed.is_empty());
}

#[test]
fn the_committed_cases_are_in_canonical_form() {
    // So that blessing them rewrites nothing but `expected`.
    for case in golden::load(COMMITTED).unwrap() {
        let path = case.path.clone().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            case.to_json(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn the_committed_cases_cover_splits_drops_and_aliases() {
    let cases = golden::load(COMMITTED).unwrap();
    let by_type = |t: &str| cases.iter().find(|c| c.event_type == t).unwrap();
    let split = by_type("Transferred").decode::<AccountEvent>().unwrap();
    assert_eq!(
        split,
        [
            AccountEvent::Withdrew { amount: 9 },
            AccountEvent::Deposited { amount: 9 }
        ]
    );
    assert_eq!(by_type("Audited").decode::<AccountEvent>().unwrap(), []);
    assert_eq!(by_type("Noted").decode::<AccountEvent>().unwrap(), []);
    assert_eq!(
        by_type("AccountCreated").decode::<AccountEvent>().unwrap(),
        [versioned::opened("di", "EUR")]
    );
}

// ---- failures ------------------------------------------------------------------------

#[test]
fn a_failing_directory_reports_every_bad_file() {
    let dir = TempDir::new("failing");
    dir.write(
        "a-good.json",
        &case_text(
            "Withdrawn",
            1,
            json!({"amount": 1}),
            Some(json!([{"Withdrew": {"amount": 1}}])),
        ),
    );
    let wrong = dir.write(
        "b-wrong.json",
        &case_text(
            "Opened",
            1,
            json!({"name": "ann"}),
            Some(json!([{"Opened": {"owner": "ann", "currency": "USD"}}])),
        ),
    );
    let split = dir.write(
        "c/split-order.json",
        &case_text(
            "Transferred",
            1,
            json!({"amount": 2}),
            Some(json!([{"Deposited": {"amount": 2}}, {"Withdrew": {"amount": 2}}])),
        ),
    );
    let undecodable = dir.write(
        "d-undecodable.json",
        &case_text("Deposited", 1, json!({"cents": 5}), Some(json!([]))),
    );
    let missing = dir.write("e-missing.json", &case_text("Closed", 1, json!(null), None));
    let malformed = dir.write("f-malformed.json", "{ \"event_type\": ");

    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Verify);
    });

    assert!(
        message.starts_with(&format!(
            "golden: 5 of 6 case files under `{}` fail (decoded as `golden::versioned::AccountEvent`)\n\n--- {}\n",
            dir.path().display(),
            wrong.display()
        )),
        "{message}"
    );
    assert!(!message.contains("a-good.json"), "{message}");
    // Each bad file in path order, each with what is wrong.
    let sections: Vec<&str> = message.split("\n\n--- ").skip(1).collect();
    assert_eq!(sections.len(), 5, "{message}");
    for (section, path) in sections
        .iter()
        .zip([&wrong, &split, &undecodable, &missing, &malformed])
    {
        assert!(
            section.starts_with(&path.display().to_string()),
            "{section}"
        );
    }
    // A readable diff of the pretty-printed events.
    assert!(
        sections[0].contains(
            "`Opened` (schema v1) decodes to other events than `expected` (- expected, + actual)\n  [\n    {\n      \"Opened\": {\n-       \"currency\": \"USD\",\n+       \"currency\": \"EUR\",\n        \"owner\": \"ann\"\n      }\n    }\n  ]"
        ),
        "{}",
        sections[0]
    );
    // A split in the wrong order.
    assert!(
        sections[1]
            .contains("-     \"Deposited\": {\n+     \"Withdrew\": {\n        \"amount\": 2\n"),
        "{}",
        sections[1]
    );
    // The reason a case does not decode.
    assert!(
        sections[2].contains(
            "`Deposited` (schema v1) does not decode into `golden::versioned::AccountEvent`: \
             upcast step v1 -> v2 (json `deposited_v1`) failed: `cents` must be a string of digits"
        ),
        "{}",
        sections[2]
    );
    // What a case without `expected` decodes to.
    assert!(
        sections[3].contains(
            "no `expected` yet; `Closed` (schema v1) decodes today to:\n[\n  \"Closed\"\n]"
        ),
        "{}",
        sections[3]
    );
    assert!(
        sections[4].contains("invalid case file: not valid JSON: EOF while parsing"),
        "{}",
        sections[4]
    );
    // How to bless, once, at the end.
    assert!(
        message.ends_with(
            "to accept what the cases decode to today as their `expected`, run the tests with \
             CQRS_GOLDEN=bless (e.g. `CQRS_GOLDEN=bless cargo test`) and review the changed files"
        ),
        "{message}"
    );
}

#[test]
fn undecodable_and_malformed_files_alone_get_no_bless_hint() {
    let dir = TempDir::new("no-hint");
    dir.write("bad.json", "[]");
    dir.write(
        "nope.json",
        &case_text("Nope", 1, json!({}), Some(json!([]))),
    );
    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Verify);
    });
    assert!(message.contains("2 of 2 case files"), "{message}");
    assert!(
        message.contains("no variant of `AccountEvent` is stored under this type name"),
        "{message}"
    );
    assert!(!message.contains("CQRS_GOLDEN=bless"), "{message}");
}

#[test]
fn a_missing_directory_fails() {
    let message = panic_message(|| {
        golden::check_with::<AccountEvent>("tests/golden/acount", Mode::Verify);
    });
    assert_eq!(
        message,
        "golden: golden directory `tests/golden/acount` does not exist"
    );
    let err = golden::load("tests/golden/acount").unwrap_err();
    assert!(
        matches!(err, GoldenError::Dir { ref path, .. } if path == Path::new("tests/golden/acount"))
    );
}

#[test]
fn a_directory_without_cases_fails() {
    let dir = TempDir::new("empty");
    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Bless);
    });
    assert!(message.contains("holds no `*.json` case file"), "{message}");

    // Files that are not cases do not count.
    dir.write("README.md", "cases go here");
    dir.write(".hidden.json", "{}");
    dir.write(".git/x.json", "{}");
    dir.write("sub/notes.txt", "");
    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Verify);
    });
    assert!(message.contains("is the path misspelt?"), "{message}");
    assert!(matches!(
        golden::files(dir.path()),
        Err(GoldenError::Empty { .. })
    ));
}

#[test]
fn a_file_instead_of_a_directory_fails() {
    let dir = TempDir::new("file");
    let file = dir.write("case.json", "{}");
    let err = golden::files(&file).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("golden directory `{}` is not a directory", file.display())
    );
}

#[test]
fn malformed_files_say_what_is_wrong() {
    let problems = [
        (
            "not json",
            "not valid JSON: expected ident at line 1 column 2",
        ),
        (
            "[1]",
            "a case is a JSON object with the keys event_type, schema_version, payload and expected, found an array ([1])",
        ),
        (
            "{}",
            "missing key `event_type`; missing key `schema_version`; missing key `payload`",
        ),
        (
            r#"{"event_type": "", "schema_version": 1, "payload": 1}"#,
            "`event_type` must be a non-empty string, found a string (\"\")",
        ),
        (
            r#"{"event_type": 5, "schema_version": 1, "payload": 1}"#,
            "`event_type` must be a non-empty string, found a number (5)",
        ),
        (
            r#"{"event_type": "A", "schema_version": "1", "payload": 1}"#,
            "`schema_version` must be a whole number from 0 to 4294967295, found a string (\"1\")",
        ),
        (
            r#"{"event_type": "A", "schema_version": -1, "payload": 1}"#,
            "`schema_version` must be a whole number from 0 to 4294967295, found a number (-1)",
        ),
        (
            r#"{"event_type": "A", "schema_version": 4294967296, "payload": 1}"#,
            "found a number (4294967296)",
        ),
        (
            r#"{"event_type": "A", "schema_version": 1.5, "payload": 1}"#,
            "found a number (1.5)",
        ),
        (
            r#"{"event_type": "A", "schema_version": 1, "payload": 1, "expected": {}}"#,
            "`expected` must be an array of events (or absent, to be blessed), found an object ({})",
        ),
        (
            r#"{"event_type": "A", "schema_version": 1, "payload": 1, "comment": 2}"#,
            "`comment` must be a string, found a number (2)",
        ),
        (
            r#"{"event_type": "A", "schema_version": 1, "payload": 1, "expectd": []}"#,
            "unknown key `expectd` (a case has event_type, schema_version, payload, expected and an optional comment)",
        ),
    ];
    for (text, problem) in problems {
        let err = Case::parse(text).unwrap_err();
        assert!(err.contains(problem), "{text}: {err}");
    }

    // Through a directory: every file named, with its problems.
    let dir = TempDir::new("malformed");
    let a = dir.write("a.json", "{}");
    let b = dir.write(
        "b.json",
        r#"{"event_type": "A", "schema_version": 1, "payload": 1, "expectd": []}"#,
    );
    dir.write(
        "c.json",
        &case_text("Closed", 1, json!(null), Some(json!(["Closed"]))),
    );
    let GoldenError::Files(files) = golden::load(dir.path()).unwrap_err() else {
        panic!("expected Files")
    };
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, a);
    assert_eq!(files[1].path, b);
    assert!(
        files[1].message.starts_with("unknown key `expectd`"),
        "{}",
        files[1]
    );

    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Bless);
    });
    assert!(message.contains("2 of 3 case files"), "{message}");
    assert!(
        message.contains(&format!(
            "--- {}\ninvalid case file: missing key `event_type`; missing key `schema_version`; missing key `payload`",
            a.display()
        )),
        "{message}"
    );
    // Bless mode does not touch a malformed file.
    assert_eq!(dir.read("a.json"), "{}");
}

// ---- splits and drops ------------------------------------------------------------------

#[test]
fn a_split_expects_several_events_and_a_drop_none() {
    let mut split = Case::new("Transferred", 1, json!({"amount": 3}));
    split.expected = Some(vec![
        json!({"Withdrew": {"amount": 3}}),
        json!({"Deposited": {"amount": 3}}),
    ]);
    assert_eq!(split.verify::<AccountEvent>(), Ok(()));

    // One of the two missing is a failure.
    split.expected.as_mut().unwrap().pop();
    let report = split.verify::<AccountEvent>().unwrap_err();
    assert!(
        report.contains("+   },\n+   {\n+     \"Deposited\": {\n+       \"amount\": 3\n+     }\n"),
        "{report}"
    );

    let mut drop = Case::new("Noted", 1, json!({"note": ""}));
    drop.expected = Some(vec![]);
    assert_eq!(drop.verify::<AccountEvent>(), Ok(()));

    // A drop expecting an event fails, and the other way round.
    drop.expected = Some(vec![json!({"Noted": {"text": ""}})]);
    let report = drop.verify::<AccountEvent>().unwrap_err();
    assert!(report.contains("-   {\n-     \"Noted\""), "{report}");
    let mut kept = Case::new("Noted", 1, json!({"note": "x"}));
    kept.expected = Some(vec![]);
    let report = kept.verify::<AccountEvent>().unwrap_err();
    assert!(
        report.contains("- []\n+ [\n+   {\n+     \"Noted\""),
        "{report}"
    );
}

// ---- bless -----------------------------------------------------------------------------

#[test]
fn bless_writes_missing_and_differing_expectations_and_leaves_the_rest() {
    let dir = TempDir::new("bless");
    // Passing, but not in canonical form: left as it is.
    let good = "{\"event_type\":\"Withdrawn\",\"schema_version\":1,\"payload\":{\"amount\":1},\"expected\":[{\"Withdrew\":{\"amount\":1}}]}";
    dir.write("good.json", good);
    dir.write(
        "missing.json",
        r#"{"comment": "a split", "payload": {"amount": 2}, "schema_version": 1, "event_type": "Transferred"}"#,
    );
    dir.write(
        "nested/wrong.json",
        r#"{"event_type": "Opened", "schema_version": 1, "payload": {"name": "ann"}, "expected": [{"Opened": {"owner": "ann"}}]}"#,
    );
    dir.write(
        "null.json",
        r#"{"event_type": "Audited", "schema_version": 1, "payload": {"z": 1, "a": [{"y": 1, "b": 2}]}, "expected": null}"#,
    );

    let summary = golden::check_with::<AccountEvent>(dir.path(), Mode::Bless);
    assert_eq!(summary.cases.len(), 4);
    assert_eq!(
        summary.blessed,
        [
            dir.path().join("missing.json"),
            dir.path().join("nested/wrong.json"),
            dir.path().join("null.json"),
        ]
    );

    assert_eq!(dir.read("good.json"), good);
    assert_eq!(
        dir.read("missing.json"),
        r#"{
  "comment": "a split",
  "event_type": "Transferred",
  "schema_version": 1,
  "payload": {
    "amount": 2
  },
  "expected": [
    {
      "Withdrew": {
        "amount": 2
      }
    },
    {
      "Deposited": {
        "amount": 2
      }
    }
  ]
}
"#
    );
    assert_eq!(
        dir.read("nested/wrong.json"),
        r#"{
  "event_type": "Opened",
  "schema_version": 1,
  "payload": {
    "name": "ann"
  },
  "expected": [
    {
      "Opened": {
        "currency": "EUR",
        "owner": "ann"
      }
    }
  ]
}
"#
    );
    // Keys sorted at every depth of the payload; a drop expects [].
    assert_eq!(
        dir.read("null.json"),
        r#"{
  "event_type": "Audited",
  "schema_version": 1,
  "payload": {
    "a": [
      {
        "b": 2,
        "y": 1
      }
    ],
    "z": 1
  },
  "expected": []
}
"#
    );
    // No temporary file is left behind.
    assert_eq!(golden::files(dir.path()).unwrap().len(), 4);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    assert_eq!(
        std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .count(),
        1
    );

    // Now they pass, and blessing again changes nothing.
    assert!(
        golden::check_with::<AccountEvent>(dir.path(), Mode::Verify)
            .blessed
            .is_empty()
    );
    assert!(
        golden::check_with::<AccountEvent>(dir.path(), Mode::Bless)
            .blessed
            .is_empty()
    );
}

#[test]
fn bless_still_fails_for_a_case_that_does_not_decode_but_blesses_the_others() {
    let dir = TempDir::new("bless-broken");
    dir.write("a.json", &case_text("Opened", 9, json!({}), None));
    dir.write("b.json", &case_text("Closed", 1, json!(null), None));
    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Bless);
    });
    assert!(message.contains("1 of 2 case files"), "{message}");
    assert!(
        message.contains("schema version 9 cannot be read"),
        "{message}"
    );
    assert!(!message.contains("b.json"), "{message}");
    assert!(!message.contains("CQRS_GOLDEN=bless"), "{message}");
    // b.json was blessed all the same; a.json was left alone.
    assert_eq!(
        Case::read(dir.path().join("b.json")).unwrap().expected,
        Some(vec![json!("Closed")])
    );
    assert_eq!(
        Case::read(dir.path().join("a.json")).unwrap().expected,
        None
    );
}

#[test]
fn the_mode_parses_bless_and_verify_and_nothing_else() {
    assert_eq!("bless".parse::<Mode>(), Ok(Mode::Bless));
    assert_eq!(" bless\n".parse::<Mode>(), Ok(Mode::Bless));
    assert_eq!("verify".parse::<Mode>(), Ok(Mode::Verify));
    assert_eq!("".parse::<Mode>(), Ok(Mode::Verify));
    assert_eq!(Mode::default(), Mode::Verify);
    let err = "bles".parse::<Mode>().unwrap_err();
    assert!(err.starts_with("CQRS_GOLDEN must be `bless`"), "{err}");
    assert!(err.ends_with("found `bles`"), "{err}");
    assert_eq!(golden::ENV_VAR, "CQRS_GOLDEN");
}

// ---- capturing cases -------------------------------------------------------------------

#[test]
fn a_captured_case_fails_until_blessed() {
    let dir = TempDir::new("capture");
    let path = golden::write_case(
        dir.path(),
        "deposited/v1-big",
        "Deposited",
        1,
        json!({"cents": "99999"}),
    )
    .unwrap();
    assert_eq!(path, dir.path().join("deposited/v1-big.json"));
    assert_eq!(
        dir.read("deposited/v1-big.json"),
        "{\n  \"event_type\": \"Deposited\",\n  \"schema_version\": 1,\n  \"payload\": {\n    \"cents\": \"99999\"\n  }\n}\n"
    );

    let message = panic_message(|| {
        golden::check_with::<AccountEvent>(dir.path(), Mode::Verify);
    });
    assert!(message.contains("no `expected` yet"), "{message}");
    assert!(message.contains("\"amount\": 99999"), "{message}");
    assert!(message.contains("CQRS_GOLDEN=bless"), "{message}");

    golden::check_with::<AccountEvent>(dir.path(), Mode::Bless);
    let case = Case::read(&path).unwrap();
    assert_eq!(
        case.expected,
        Some(vec![json!({"Deposited": {"amount": 99999}})])
    );
    golden::check_with::<AccountEvent>(dir.path(), Mode::Verify);

    // Capturing it again keeps the blessed file.
    golden::write_case(
        dir.path(),
        "deposited/v1-big.json",
        "Deposited",
        1,
        json!({"cents": "99999"}),
    )
    .unwrap();
    assert_eq!(Case::read(&path).unwrap(), case);
}

#[test]
fn write_case_never_overwrites_another_event_and_stays_inside_the_directory() {
    let dir = TempDir::new("capture-refused");
    golden::write_case(dir.path(), "x", "Closed", 1, json!(null)).unwrap();
    let err = golden::write_case(dir.path(), "x", "Closed", 2, json!(null)).unwrap_err();
    assert!(
        err.to_string().contains(
            "it exists and holds another stored event (`Closed`, schema v1, payload null)"
        ),
        "{err}"
    );
    dir.write("broken.json", "nope");
    let err = golden::write_case(dir.path(), "broken", "Closed", 1, json!(null)).unwrap_err();
    assert!(
        err.to_string()
            .contains("it exists and is not a valid case (not valid JSON"),
        "{err}"
    );
    for name in ["", "../escape", "/tmp/abs"] {
        let err = golden::write_case(dir.path(), name, "Closed", 1, json!(null)).unwrap_err();
        assert!(matches!(err, GoldenError::Write { .. }), "{name}: {err}");
        assert!(
            err.to_string()
                .contains("is not a file name inside the directory"),
            "{err}"
        );
    }
    assert!(!dir.path().parent().unwrap().join("escape.json").exists());
}

#[test]
fn cases_convert_from_and_to_stored_values() {
    let stored = StoredValue::new("AccountCreated", 1, json!({"name": "ann"}));
    let mut case = Case::from(stored.clone());
    assert_eq!(case.stored(), stored);
    assert_eq!(
        case.decode::<AccountEvent>().unwrap(),
        [versioned::opened("ann", "EUR")]
    );

    case.comment = Some("quotes \" and \\ and\nnewlines survive".into());
    case.expected = Some(case.actual::<AccountEvent>().unwrap());
    assert_eq!(Case::parse(&case.to_json()).unwrap(), case);

    let dir = TempDir::new("write");
    let path = dir.path().join("deep/er/case.json");
    case.write(&path).unwrap();
    let mut read = Case::read(&path).unwrap();
    assert_eq!(read.path.take().as_deref(), Some(path.as_path()));
    assert_eq!(read, case);
}

#[test]
fn reading_a_missing_case_file_names_it() {
    let err = Case::read("tests/golden/account/nope.json").unwrap_err();
    let GoldenError::Files(files) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        files[..],
        [FileError {
            path: "tests/golden/account/nope.json".into(),
            message: "does not exist".into()
        }]
    );
    assert_eq!(
        err.to_string(),
        "1 invalid case file\n  tests/golden/account/nope.json: does not exist"
    );
}

#[test]
fn golden_cases_can_start_a_scenario() {
    use cqrs_testing::prelude::*;

    // Every stored event of the committed cases, as one history.
    let cases = golden::load(COMMITTED).unwrap();
    versioned::Account::given_no_events()
        .and_stored_values(cases.iter().map(Case::stored))
        .then_given_events(
            cases
                .iter()
                .flat_map(|c| c.decode::<AccountEvent>().unwrap()),
        );
}
