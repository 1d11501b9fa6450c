//! Golden files: stored events, old versions included, and what each must become today.
//!
//! Events are stored forever, so every upcast step written for them must keep working.
//! A golden directory pins that down: each `*.json` file in it is one **case**, a stored
//! event and the current events it must decode into.
//!
//! ```json
//! {
//!   "comment": "v1 had a single name; the currency defaulted to EUR",
//!   "event_type": "Opened",
//!   "schema_version": 1,
//!   "payload": {
//!     "name": "ann"
//!   },
//!   "expected": [
//!     {
//!       "Opened": {
//!         "currency": "EUR",
//!         "owner": "ann"
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! * `event_type`, `schema_version` and `payload` are the event as stored: its stored type
//!   name (a current name, an alias, or a removed type's name), the schema version it was
//!   written with, and its payload as JSON.
//! * `expected` lists the events it means today, each in its serde JSON form
//!   (`serde_json::to_value(&event)`: for a plain enum the externally tagged
//!   `{"Variant": {..fields..}}`). A dropped event expects `[]`, a split several entries.
//!   It may be left out (or `null`) in a new case, to be *blessed*.
//! * `comment` is optional, for the reader; nothing checks it.
//!
//! No other key is allowed, so that a misspelt key is an error rather than ignored.
//!
//! [`check`] decodes every case through [`DomainEvent::decode_json`] and compares the
//! result with `expected`. After checking *all* files it panics with one report that lists
//! every failing file with a diff of the pretty-printed JSON (`-` expected, `+` actual), or
//! the reason it does not decode, or what is wrong with the file.
//!
//! ## Which files
//!
//! Every file whose name ends in `.json` under the directory, **subdirectories
//! included** (so cases can be grouped, say one directory per event type), in the order of
//! their paths. Files and directories whose name starts with a `.` are skipped, as are
//! files with other extensions (a `README.md` beside the cases is fine). A directory that
//! is missing, or holds no case at all, is a failure: a misspelt path must not pass.
//!
//! Relative paths are resolved against the current directory, which `cargo test` sets to
//! the package's root; `concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")` does not
//! depend on it.
//!
//! ## Blessing
//!
//! Run the tests with the environment variable **`CQRS_GOLDEN=bless`**
//! (`CQRS_GOLDEN=bless cargo test`) and [`check`] writes, instead of failing, the current
//! decoding into every case whose `expected` is missing or differs, and passes for it.
//! Review the changed files before committing them: blessing accepts whatever the code
//! does today. A case that does not decode, or a malformed file, still fails. Files are
//! (re)written in one canonical form: the keys in the order above, two-space indentation,
//! object keys inside `payload` and `expected` sorted, and a trailing newline. Cases that
//! pass are left untouched. [`check_with`] takes the [`Mode`] as an argument instead of
//! reading the variable.
//!
//! ## Capturing cases
//!
//! [`write_case`] writes a new case (without `expected`) from a stored event, for example
//! one read from a production store; the next blessed run fills `expected` in.
//!
//! ```
//! # include!("doctest_account.rs");
//! # fn main() {
//! use cqrs_testing::golden::{self, Mode};
//! use serde_json::json;
//!
//! let dir = std::env::temp_dir().join(format!("cqrs-golden-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! golden::write_case(&dir, "opened-v1", "Opened", 1, json!({"name": "ann"})).unwrap();
//! golden::write_case(&dir, "transferred", "Transferred", 1, json!({"amount": 4})).unwrap();
//!
//! // The first run fills `expected` in; a test would call `golden::check`, and be run
//! // once with CQRS_GOLDEN=bless.
//! let summary = golden::check_with::<AccountEvent>(&dir, Mode::Bless);
//! assert_eq!(summary.blessed.len(), 2);
//!
//! let case = golden::Case::read(dir.join("opened-v1.json")).unwrap();
//! assert_eq!(
//!     case.expected.unwrap(),
//!     [json!({"Opened": {"owner": "ann", "currency": "EUR"}})]
//! );
//!
//! // From then on the cases pin the upcast chains down.
//! golden::check::<AccountEvent>(&dir);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # }
//! ```

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use cqrs_core::upcast::{StoredValue, Value};
use cqrs_core::{DecodeReason, DomainEvent};
use serde_json::Map;

use crate::{diff_lines, pretty_json};

/// The environment variable [`check`] reads its [`Mode`] from: `bless` to write the
/// current decoding into the cases, unset (or `verify`) to check them.
pub const ENV_VAR: &str = "CQRS_GOLDEN";

/// The keys a case file may have, in the order they are written.
const KEYS: [&str; 5] = [
    "comment",
    "event_type",
    "schema_version",
    "payload",
    "expected",
];

/// How deep [`files`] descends into subdirectories before suspecting a symlink loop.
const MAX_DEPTH: usize = 32;

/// What [`check_with`] does with a case whose `expected` is missing or differs.
///
/// ```
/// use cqrs_testing::golden::Mode;
///
/// assert_eq!("bless".parse::<Mode>(), Ok(Mode::Bless));
/// assert_eq!("verify".parse::<Mode>(), Ok(Mode::Verify));
/// assert_eq!("".parse::<Mode>(), Ok(Mode::Verify));
/// assert!("yes".parse::<Mode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Fail for it: the default.
    #[default]
    Verify,
    /// Write the current decoding into it as its `expected`, and pass.
    Bless,
}

impl Mode {
    /// The mode [`ENV_VAR`] (`CQRS_GOLDEN`) asks for: [`Mode::Bless`] for `bless`,
    /// [`Mode::Verify`] when it is unset, empty or `verify`.
    ///
    /// ```
    /// use cqrs_testing::golden::Mode;
    ///
    /// // Unless the tests run with CQRS_GOLDEN=bless:
    /// # if std::env::var_os("CQRS_GOLDEN").is_none() {
    /// assert_eq!(Mode::from_env(), Mode::Verify);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// For any other value, so that a typo such as `CQRS_GOLDEN=bles` does not silently
    /// check instead of blessing.
    #[track_caller]
    pub fn from_env() -> Self {
        match std::env::var(ENV_VAR) {
            Ok(value) => match value.parse() {
                Ok(mode) => mode,
                Err(error) => panic!("golden: {error}"),
            },
            Err(std::env::VarError::NotPresent) => Mode::Verify,
            Err(std::env::VarError::NotUnicode(value)) => {
                panic!("golden: {ENV_VAR} is not valid unicode: {value:?}")
            }
        }
    }
}

impl FromStr for Mode {
    type Err = String;

    /// `bless` is [`Mode::Bless`]; `verify` or an empty string is [`Mode::Verify`].
    fn from_str(value: &str) -> Result<Self, String> {
        match value.trim() {
            "bless" => Ok(Mode::Bless),
            "" | "verify" => Ok(Mode::Verify),
            other => Err(format!(
                "{ENV_VAR} must be `bless` (write what the cases decode to today as their \
                 `expected`) or `verify` (the default), found `{other}`"
            )),
        }
    }
}

/// One golden case: a stored event and the events it must become today.
///
/// Read from a file with [`Case::read`] (or all of a directory's with [`load`]), or made
/// with [`Case::new`] and written with [`Case::write`]. See the [module docs](self) for
/// the file format.
///
/// ```
/// # include!("doctest_account.rs");
/// # fn main() {
/// use cqrs_testing::golden::Case;
/// use serde_json::json;
///
/// let case = Case::parse(
///     r#"{
///         "event_type": "Withdrawn",
///         "schema_version": 1,
///         "payload": {"amount": 2},
///         "expected": [{"Withdrew": {"amount": 2}}]
///     }"#,
/// )
/// .unwrap();
/// assert_eq!(case.verify::<AccountEvent>(), Ok(()));
/// assert_eq!(case.decode::<AccountEvent>().unwrap(), [AccountEvent::Withdrew { amount: 2 }]);
///
/// // A case that expects something else explains how it differs.
/// let mut wrong = case.clone();
/// wrong.expected = Some(vec![json!({"Withdrew": {"amount": 3}})]);
/// let report = wrong.verify::<AccountEvent>().unwrap_err();
/// assert!(report.contains("-       \"amount\": 3\n+       \"amount\": 2"), "{report}");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Case {
    /// The file the case was read from; `None` for a case made in code.
    pub path: Option<PathBuf>,
    /// A note for the reader.
    pub comment: Option<String>,
    /// The stored type name: a current name, an alias, or a removed type's name.
    pub event_type: String,
    /// The schema version the payload is written in.
    pub schema_version: u32,
    /// The stored payload.
    pub payload: Value,
    /// The current events it must decode into, in their serde JSON form; `None` until
    /// blessed.
    pub expected: Option<Vec<Value>>,
}

/// What a case decodes to, compared with what it expects.
enum Outcome {
    Pass,
    /// It does not decode, or its events do not serialise.
    Broken(String),
    Missing(Vec<Value>),
    Differs {
        expected: Vec<Value>,
        actual: Vec<Value>,
    },
}

impl Case {
    /// A case for the stored event `event_type` at `schema_version` with `payload`, with
    /// no `expected` yet.
    ///
    /// ```
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let case = Case::new("Opened", 1, json!({"name": "ann"}));
    /// assert_eq!(case.expected, None);
    /// ```
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Value) -> Self {
        Self {
            path: None,
            comment: None,
            event_type: event_type.into(),
            schema_version,
            payload,
            expected: None,
        }
    }

    /// Parses the text of a case file. The error says what is wrong: not JSON, a missing
    /// or unknown key, or a value of the wrong type (every problem of the file at once).
    ///
    /// ```
    /// use cqrs_testing::golden::Case;
    ///
    /// let err = Case::parse(r#"{"event_type": "Opened", "schema_version": "1"}"#).unwrap_err();
    /// assert!(err.contains("`schema_version` must be a whole number"), "{err}");
    /// assert!(err.contains("missing key `payload`"), "{err}");
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
        let Value::Object(mut object) = value else {
            return Err(format!(
                "a case is a JSON object with the keys event_type, schema_version, payload \
                 and expected, found {}",
                describe_value(&value)
            ));
        };
        let mut problems = Vec::new();
        for key in object.keys() {
            if !KEYS.contains(&key.as_str()) {
                problems.push(format!(
                    "unknown key `{key}` (a case has event_type, schema_version, payload, \
                     expected and an optional comment)"
                ));
            }
        }
        let event_type = match object.remove("event_type") {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(other) => {
                problems.push(format!(
                    "`event_type` must be a non-empty string, found {}",
                    describe_value(&other)
                ));
                None
            }
            None => {
                problems.push("missing key `event_type`".to_owned());
                None
            }
        };
        let schema_version = match object.remove("schema_version") {
            Some(value) => match value.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(version) => Some(version),
                None => {
                    problems.push(format!(
                        "`schema_version` must be a whole number from 0 to {}, found {}",
                        u32::MAX,
                        describe_value(&value)
                    ));
                    None
                }
            },
            None => {
                problems.push("missing key `schema_version`".to_owned());
                None
            }
        };
        let payload = object.remove("payload");
        if payload.is_none() {
            problems.push("missing key `payload`".to_owned());
        }
        let expected = match object.remove("expected") {
            None | Some(Value::Null) => None,
            Some(Value::Array(events)) => Some(events),
            Some(other) => {
                problems.push(format!(
                    "`expected` must be an array of events (or absent, to be blessed), \
                     found {}",
                    describe_value(&other)
                ));
                None
            }
        };
        let comment = match object.remove("comment") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                problems.push(format!(
                    "`comment` must be a string, found {}",
                    describe_value(&other)
                ));
                None
            }
        };
        match (event_type, schema_version, payload) {
            (Some(event_type), Some(schema_version), Some(payload)) if problems.is_empty() => {
                Ok(Self {
                    path: None,
                    comment,
                    event_type,
                    schema_version,
                    payload,
                    expected,
                })
            }
            _ => Err(problems.join("; ")),
        }
    }

    /// Reads and parses the case file at `path` (see [`parse`](Self::parse)).
    ///
    /// ```
    /// use cqrs_testing::golden::{Case, GoldenError};
    ///
    /// let err = Case::read("no/such/case.json").unwrap_err();
    /// assert!(matches!(err, GoldenError::Files(ref files) if files.len() == 1));
    /// ```
    pub fn read(path: impl AsRef<Path>) -> Result<Self, GoldenError> {
        let path = path.as_ref();
        read_case(path).map_err(|message| {
            GoldenError::Files(vec![FileError {
                path: path.to_owned(),
                message,
            }])
        })
    }

    /// The stored event, to hand to [`Given::and_stored_values`](crate::Given::and_stored_values)
    /// or to decode with other codecs.
    ///
    /// ```
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let stored = Case::new("Opened", 1, json!({"name": "ann"})).stored();
    /// assert_eq!((&*stored.event_type, stored.schema_version), ("Opened", 1));
    /// ```
    pub fn stored(&self) -> StoredValue {
        StoredValue::new(
            self.event_type.clone(),
            self.schema_version,
            self.payload.clone(),
        )
    }

    /// Decodes the stored event through `E`'s upcast chains
    /// ([`DomainEvent::decode_json`]).
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let dropped = Case::new("Audited", 3, json!({"by": "eve"}));
    /// assert_eq!(dropped.decode::<AccountEvent>().unwrap(), []);
    /// # }
    /// ```
    pub fn decode<E: DomainEvent>(&self) -> Result<Vec<E>, DecodeReason> {
        E::decode_json(&self.event_type, self.schema_version, self.payload.clone())
    }

    /// What the case decodes to today, each event in its serde JSON form: what
    /// `expected` must equal. The error says why it does not decode.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let split = Case::new("Transferred", 1, json!({"amount": 4}));
    /// assert_eq!(
    ///     split.actual::<AccountEvent>().unwrap(),
    ///     [json!({"Deposited": {"amount": 4}}), json!({"Withdrew": {"amount": 4}})]
    /// );
    /// # }
    /// ```
    pub fn actual<E: DomainEvent>(&self) -> Result<Vec<Value>, String> {
        let events = self.decode::<E>().map_err(|reason| {
            format!(
                "`{}` (schema v{}) does not decode into `{}`: {reason}",
                self.event_type,
                self.schema_version,
                std::any::type_name::<E>()
            )
        })?;
        events
            .iter()
            .map(|event| {
                serde_json::to_value(event).map_err(|error| {
                    format!(
                        "`{}` (schema v{}) decodes, but the event {event:?} does not \
                         serialise to JSON: {error}",
                        self.event_type, self.schema_version
                    )
                })
            })
            .collect()
    }

    /// Checks that the case decodes into exactly its `expected` events. The error is a
    /// readable report: why it does not decode, a diff (`-` expected, `+` actual) of the
    /// pretty-printed events, or, with no `expected`, what it decodes to and how to bless
    /// it.
    ///
    /// ```
    /// # include!("doctest_account.rs");
    /// # fn main() {
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let mut case = Case::new("Deposited", 1, json!({"cents": "250"}));
    /// assert!(case.verify::<AccountEvent>().unwrap_err().contains("CQRS_GOLDEN=bless"));
    /// case.expected = Some(vec![json!({"Deposited": {"amount": 250}})]);
    /// assert_eq!(case.verify::<AccountEvent>(), Ok(()));
    /// # }
    /// ```
    pub fn verify<E: DomainEvent>(&self) -> Result<(), String> {
        match self.outcome::<E>() {
            Outcome::Pass => Ok(()),
            outcome => Err(self.explain(&outcome)),
        }
    }

    /// The case in its canonical file form: the keys in the order `comment`,
    /// `event_type`, `schema_version`, `payload`, `expected` (absent ones left out),
    /// two-space indentation, object keys inside `payload` and `expected` sorted, and a
    /// trailing newline.
    ///
    /// ```
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let mut case = Case::new("Opened", 1, json!({"name": "ann", "age": 3}));
    /// case.expected = Some(vec![]);
    /// assert_eq!(
    ///     case.to_json(),
    ///     "{\n  \"event_type\": \"Opened\",\n  \"schema_version\": 1,\n  \"payload\": {\n    \
    ///      \"age\": 3,\n    \"name\": \"ann\"\n  },\n  \"expected\": []\n}\n"
    /// );
    /// ```
    pub fn to_json(&self) -> String {
        /// The file's keys, in the order they are written.
        #[derive(serde::Serialize)]
        struct File<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            comment: Option<&'a str>,
            event_type: &'a str,
            schema_version: u32,
            payload: Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            expected: Option<Vec<Value>>,
        }
        let file = File {
            comment: self.comment.as_deref(),
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: sorted(&self.payload),
            expected: self
                .expected
                .as_ref()
                .map(|events| events.iter().map(sorted).collect()),
        };
        // Serialising strings, numbers and JSON values cannot fail.
        let mut out = serde_json::to_string_pretty(&file).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Writes the case to `path` in its [canonical form](Self::to_json), creating the
    /// directories it needs and replacing any file there.
    ///
    /// ```
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let path = std::env::temp_dir()
    ///     .join(format!("cqrs-golden-write-{}", std::process::id()))
    ///     .join("opened/v1.json");
    /// Case::new("Opened", 1, json!({"name": "ann"})).write(&path).unwrap();
    /// assert_eq!(Case::read(&path).unwrap().event_type, "Opened");
    /// # std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    /// ```
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), GoldenError> {
        let path = path.as_ref();
        write_file(path, &self.to_json()).map_err(|error| GoldenError::Write {
            path: path.to_owned(),
            message: error.to_string(),
        })
    }

    fn outcome<E: DomainEvent>(&self) -> Outcome {
        let actual = match self.actual::<E>() {
            Ok(actual) => actual,
            Err(message) => return Outcome::Broken(message),
        };
        match &self.expected {
            None => Outcome::Missing(actual),
            Some(expected) if *expected == actual => Outcome::Pass,
            Some(expected) => Outcome::Differs {
                expected: expected.clone(),
                actual,
            },
        }
    }

    fn explain(&self, outcome: &Outcome) -> String {
        let stored = format!("`{}` (schema v{})", self.event_type, self.schema_version);
        match outcome {
            Outcome::Pass => format!("{stored} decodes as expected"),
            Outcome::Broken(message) => message.clone(),
            Outcome::Missing(actual) => format!(
                "no `expected` yet; {stored} decodes today to:\n{}\n\n\
                 {}",
                pretty_json(&Value::Array(actual.iter().map(sorted).collect())),
                bless_hint()
            ),
            Outcome::Differs { expected, actual } => {
                let expected = pretty_json(&Value::Array(expected.iter().map(sorted).collect()));
                let actual = pretty_json(&Value::Array(actual.iter().map(sorted).collect()));
                format!(
                    "{stored} decodes to other events than `expected` (- expected, + actual)\n{}",
                    diff_lines(&format!("{expected}\n"), &format!("{actual}\n"))
                )
            }
        }
    }
}

impl From<StoredValue> for Case {
    /// A case for a stored event, with no `expected` yet.
    ///
    /// ```
    /// use cqrs_core::upcast::StoredValue;
    /// use cqrs_testing::golden::Case;
    /// use serde_json::json;
    ///
    /// let case = Case::from(StoredValue::new("Opened", 1, json!({"name": "ann"})));
    /// assert_eq!(case, Case::new("Opened", 1, json!({"name": "ann"})));
    /// ```
    fn from(stored: StoredValue) -> Self {
        Case::new(stored.event_type, stored.schema_version, stored.payload)
    }
}

/// A case file that cannot be read, is not a valid case, or cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Why golden cases could not be listed, read or written.
///
/// ```
/// use cqrs_testing::golden::{self, GoldenError};
///
/// let err = golden::load("tests/no-such-golden-dir").unwrap_err();
/// assert!(matches!(err, GoldenError::Dir { .. }));
/// assert!(err.to_string().contains("does not exist"), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum GoldenError {
    /// The directory is missing, not a directory, or cannot be listed.
    Dir {
        /// The directory (or a subdirectory of it).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The directory holds no case file at all.
    Empty {
        /// The directory.
        path: PathBuf,
    },
    /// Case files that cannot be read or are not valid cases: every one found.
    Files(Vec<FileError>),
    /// A case file cannot be written.
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for GoldenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoldenError::Dir { path, message } => {
                write!(f, "golden directory `{}` {message}", path.display())
            }
            GoldenError::Empty { path } => write!(
                f,
                "golden directory `{}` holds no `*.json` case file (subdirectories \
                 included): is the path misspelt?",
                path.display()
            ),
            GoldenError::Files(files) => {
                write!(f, "{} invalid case file", files.len())?;
                if files.len() != 1 {
                    f.write_str("s")?;
                }
                for file in files {
                    write!(f, "\n  {file}")?;
                }
                Ok(())
            }
            GoldenError::Write { path, message } => {
                write!(f, "cannot write case file `{}`: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for GoldenError {}

/// What [`check_with`] went through, when every case passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Every case file, in the order checked.
    pub cases: Vec<PathBuf>,
    /// The case files whose `expected` was (re)written ([`Mode::Bless`] only).
    pub blessed: Vec<PathBuf>,
}

/// Every case file under `dir`, subdirectories included, sorted by path: the files
/// [`check`] reads (see the [module docs](self#which-files)).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("cqrs-golden-files-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// std::fs::create_dir_all(dir.join("b")).unwrap();
/// for file in ["b/2.json", "a.json", "notes.md", ".hidden.json"] {
///     std::fs::write(dir.join(file), "{}").unwrap();
/// }
/// let files = cqrs_testing::golden::files(&dir).unwrap();
/// assert_eq!(files, [dir.join("a.json"), dir.join("b/2.json")]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
///
/// [`GoldenError::Dir`] if `dir` is missing, not a directory or cannot be listed;
/// [`GoldenError::Empty`] if it holds no case file.
pub fn files(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, GoldenError> {
    let dir = dir.as_ref();
    let metadata = fs::metadata(dir).map_err(|error| dir_error(dir, &error))?;
    if !metadata.is_dir() {
        return Err(GoldenError::Dir {
            path: dir.to_owned(),
            message: "is not a directory".to_owned(),
        });
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out)?;
    if out.is_empty() {
        return Err(GoldenError::Empty {
            path: dir.to_owned(),
        });
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), GoldenError> {
    if depth > MAX_DEPTH {
        return Err(GoldenError::Dir {
            path: dir.to_owned(),
            message: format!("is nested deeper than {MAX_DEPTH} directories: a symlink loop?"),
        });
    }
    let entries = fs::read_dir(dir).map_err(|error| dir_error(dir, &error))?;
    for entry in entries {
        let entry = entry.map_err(|error| dir_error(dir, &error))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: a linked directory of cases is read too.
        let metadata = fs::metadata(&path).map_err(|error| dir_error(&path, &error))?;
        if metadata.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn dir_error(path: &Path, error: &io::Error) -> GoldenError {
    GoldenError::Dir {
        path: path.to_owned(),
        message: match error.kind() {
            io::ErrorKind::NotFound => "does not exist".to_owned(),
            _ => format!("cannot be read: {error}"),
        },
    }
}

/// Reads every case under `dir` (see [`files`]), for checks of one's own, such as a
/// property test over every stored shape.
///
/// ```
/// # include!("doctest_account.rs");
/// # fn main() {
/// use cqrs_testing::golden::{self, Case};
/// use serde_json::json;
///
/// let dir = std::env::temp_dir().join(format!("cqrs-golden-load-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut case = Case::new("Withdrawn", 1, json!({"amount": 1}));
/// case.expected = Some(vec![json!({"Withdrew": {"amount": 1}})]);
/// case.write(dir.join("withdrawn.json")).unwrap();
///
/// for case in golden::load(&dir).unwrap() {
///     case.verify::<AccountEvent>().unwrap();
///     assert!(case.path.is_some());
/// }
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
///
/// # Errors
///
/// As [`files`], or [`GoldenError::Files`] listing every file that cannot be read or is
/// not a valid case.
pub fn load(dir: impl AsRef<Path>) -> Result<Vec<Case>, GoldenError> {
    let mut cases = Vec::new();
    let mut bad = Vec::new();
    for path in files(dir)? {
        match read_case(&path) {
            Ok(case) => cases.push(case),
            Err(message) => bad.push(FileError { path, message }),
        }
    }
    if bad.is_empty() {
        Ok(cases)
    } else {
        Err(GoldenError::Files(bad))
    }
}

fn read_case(path: &Path) -> Result<Case, String> {
    let text = fs::read_to_string(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {error}"),
    })?;
    let mut case = Case::parse(&text)?;
    case.path = Some(path.to_owned());
    Ok(case)
}

/// Checks every case under `dir` against `E`, in the mode [`ENV_VAR`] asks for
/// (`CQRS_GOLDEN=bless` to bless): [`check_with`] with [`Mode::from_env`].
///
/// ```no_run
/// # include!("doctest_account.rs");
/// #[test]
/// fn stored_events_still_decode() {
///     cqrs_testing::golden::check::<AccountEvent>(concat!(
///         env!("CARGO_MANIFEST_DIR"),
///         "/tests/golden"
///     ));
/// }
/// # fn main() {}
/// ```
///
/// # Panics
///
/// As [`check_with`]; and if `CQRS_GOLDEN` has a value other than `bless` or `verify`.
#[track_caller]
pub fn check<E: DomainEvent>(dir: impl AsRef<Path>) -> Summary {
    check_with::<E>(dir, Mode::from_env())
}

/// Checks every case under `dir`: each must decode through `E`'s upcast chains into
/// exactly its `expected` events. With [`Mode::Bless`], a case whose `expected` is missing
/// or differs gets the current decoding written into it instead, and passes.
///
/// ```
/// # include!("doctest_account.rs");
/// # fn main() {
/// use cqrs_testing::golden::{self, Case, Mode};
/// use serde_json::json;
///
/// let dir = std::env::temp_dir().join(format!("cqrs-golden-check-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut case = Case::new("Opened", 1, json!({"name": "ann"}));
/// case.expected = Some(vec![json!({"Opened": {"owner": "ann", "currency": "USD"}})]);
/// case.write(dir.join("opened.json")).unwrap();
///
/// let failure = std::panic::catch_unwind(|| golden::check_with::<AccountEvent>(&dir, Mode::Verify))
///     .unwrap_err();
/// let report = failure.downcast_ref::<String>().unwrap();
/// assert!(report.contains("opened.json"), "{report}");
/// assert!(report.contains("-       \"currency\": \"USD\",\n+       \"currency\": \"EUR\","), "{report}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
///
/// # Panics
///
/// After checking every file, with one report listing each failing file: the diff of its
/// `expected` and actual events, why it does not decode, what is wrong with the file, or
/// (without `expected`, outside bless mode) what it decodes to and how to bless it. Also
/// if `dir` is missing or holds no case file.
#[track_caller]
pub fn check_with<E: DomainEvent>(dir: impl AsRef<Path>, mode: Mode) -> Summary {
    let dir = dir.as_ref();
    let cases = match files(dir) {
        Ok(cases) => cases,
        Err(error) => panic!("golden: {error}"),
    };
    let mut failures = Vec::new();
    let mut blessable = false;
    let mut blessed = Vec::new();
    for path in &cases {
        let case = match read_case(path) {
            Ok(case) => case,
            Err(message) => {
                failures.push((path, format!("invalid case file: {message}")));
                continue;
            }
        };
        match case.outcome::<E>() {
            Outcome::Pass => {}
            Outcome::Missing(actual) | Outcome::Differs { actual, .. } if mode == Mode::Bless => {
                let mut case = case;
                case.expected = Some(actual);
                match case.write(path) {
                    Ok(()) => blessed.push(path.clone()),
                    Err(error) => failures.push((path, format!("cannot bless: {error}"))),
                }
            }
            outcome @ (Outcome::Missing(_) | Outcome::Differs { .. }) => {
                blessable = true;
                failures.push((path, case.explain(&outcome)));
            }
            outcome @ Outcome::Broken(_) => failures.push((path, case.explain(&outcome))),
        }
    }
    for path in &blessed {
        eprintln!("golden: blessed {}", path.display());
    }
    if !failures.is_empty() {
        let mut report = format!(
            "golden: {} of {} case files under `{}` fail (decoded as `{}`)",
            failures.len(),
            cases.len(),
            dir.display(),
            std::any::type_name::<E>()
        );
        for (path, message) in &failures {
            let _ = write!(report, "\n\n--- {}\n{message}", path.display());
        }
        if blessable && mode == Mode::Verify {
            let _ = write!(report, "\n\n{}", bless_hint());
        }
        panic!("{report}");
    }
    Summary { cases, blessed }
}

fn bless_hint() -> String {
    format!(
        "to accept what the cases decode to today as their `expected`, run the tests with \
         {ENV_VAR}=bless (e.g. `{ENV_VAR}=bless cargo test`) and review the changed files"
    )
}

/// Writes a new case file `name` (`.json` is appended if missing; it may name
/// subdirectories, which are created) under `dir` for the stored event `event_type` at
/// `schema_version` with `payload`, with no `expected`: the next run in bless mode fills
/// it in. Returns the file's path.
///
/// Running it again for the same event does nothing, so a capturing test or tool may be
/// rerun; a file of that name holding another event is an error, never overwritten.
///
/// ```
/// use cqrs_testing::golden;
/// use serde_json::json;
///
/// let dir = std::env::temp_dir().join(format!("cqrs-golden-capture-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let path = golden::write_case(&dir, "opened/v1", "Opened", 1, json!({"name": "ann"})).unwrap();
/// assert_eq!(path, dir.join("opened/v1.json"));
/// // Again: nothing changes.
/// golden::write_case(&dir, "opened/v1", "Opened", 1, json!({"name": "ann"})).unwrap();
/// // Another event under the same name is refused.
/// assert!(golden::write_case(&dir, "opened/v1", "Opened", 1, json!({"name": "bo"})).is_err());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
///
/// [`GoldenError::Write`] if `name` is empty, absolute or leads out of `dir` (`..`), if
/// a file of that name holds another event or is not a valid case, or if it cannot be
/// written.
pub fn write_case(
    dir: impl AsRef<Path>,
    name: &str,
    event_type: &str,
    schema_version: u32,
    payload: Value,
) -> Result<PathBuf, GoldenError> {
    let dir = dir.as_ref();
    let file_name = if name.ends_with(".json") {
        name.to_owned()
    } else {
        format!("{name}.json")
    };
    let relative = Path::new(&file_name);
    let path = dir.join(relative);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if name.is_empty() || !plain {
        return Err(GoldenError::Write {
            path,
            message: format!(
                "`{name}` is not a file name inside the directory (no absolute path, no `..`)"
            ),
        });
    }
    let case = Case::new(event_type, schema_version, payload);
    if path.exists() {
        return match read_case(&path) {
            Ok(existing) if existing.stored() == case.stored() => Ok(path),
            Ok(existing) => Err(GoldenError::Write {
                path,
                message: format!(
                    "it exists and holds another stored event (`{}`, schema v{}, payload \
                     {}); choose another name, or delete the file first",
                    existing.event_type, existing.schema_version, existing.payload
                ),
            }),
            Err(message) => Err(GoldenError::Write {
                path,
                message: format!("it exists and is not a valid case ({message})"),
            }),
        };
    }
    case.write(&path)?;
    Ok(path)
}

/// Writes `text` to `path` through a temporary file beside it, so that an interrupted
/// write leaves the old file (or none), never half of one.
fn write_file(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, text)?;
    fs::rename(&temporary, path).inspect_err(|_| {
        let _ = fs::remove_file(&temporary);
    })
}

/// `value` with the keys of every object in it sorted, whatever map serde_json uses.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(&String, &Value)> = object.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::new();
            for (key, value) in entries {
                out.insert(key.clone(), sorted(value));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A value's JSON type and, shortened, its text: `a string ("1")`.
fn describe_value(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    if value.is_null() {
        return kind.to_owned();
    }
    let mut text = value.to_string();
    if text.chars().count() > 60 {
        text = text.chars().take(57).collect::<String>() + "...";
    }
    format!("{kind} ({text})")
}
