//! Broken internal links in the book fail `cargo test` (and `.ci/run`, which also runs
//! `mdbook build`).
//!
//! Every Markdown file under `book/src` is read as it is when the test runs (chapters come
//! and go), and every link in it that does not name a scheme (`https:`, `mailto:`, …) must
//! lead somewhere: `[text](other.md)`, `[text](other.md#a-heading)`, `[text](#a-heading)`,
//! reference definitions (`[label]: other.md`), `href="…"`/`src="…"` in raw HTML, and the
//! files named by `{{#include …}}`-style directives. A file must exist inside `book/src`
//! (mdBook copies nothing else into the rendered book), and an `#anchor` must be the id
//! of a heading of the target chapter, or an `id="…"` written in its raw HTML.
//!
//! Why hand-written rather than a tool: mdBook itself does not check links at all (a link
//! to a missing chapter or heading renders as a dead link, and the build succeeds);
//! `mdbook-linkcheck` does not work with mdBook 0.5 and never checked `#anchors`; its fork
//! `mdbook-linkcheck2` inherits that limitation and would add a second tool to build in
//! CI. This test needs no tool and no network, runs in every `cargo test`, and checks the
//! anchors too, with mdBook 0.5's rules for heading ids (`id_from_content` and
//! `unique_id` of `mdbook-html`):
//!
//! * the id is the heading's text (its Markdown rendered: code spans keep their content,
//!   emphasis markers, link targets and HTML tags go), trimmed, then each character kept
//!   if alphanumeric, `_` or `-` (ASCII letters lowercased), whitespace turned into `-`,
//!   anything else dropped: ``## The `#[aggregate(..)]` attribute`` →
//!   `the-aggregate-attribute`;
//! * within one chapter, a repeated id gets `-1`, `-2`, … in order of appearance;
//! * `{#custom-id}` at the end of a heading replaces its id.
//!
//! Fenced code blocks and inline code spans are not searched for links.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// `book/src`.
fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.md` file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A line of a chapter outside fenced code blocks, with its 1-based number.
struct Line<'a> {
    number: usize,
    text: &'a str,
}

/// The lines outside fenced code blocks (```` ``` ```` or `~~~`, closed by a fence of the
/// same character at least as long).
fn prose_lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        match fence {
            Some((c, len)) => {
                if run(c) >= len && trimmed[run(c)..].trim().is_empty() {
                    fence = None;
                }
            }
            None => {
                // A backtick fence's info string holds no backtick (CommonMark): a line
                // opening with ``` `code` ``` is a code span, not a fence.
                let opened = ['`', '~']
                    .into_iter()
                    .find(|&c| run(c) >= 3 && !(c == '`' && trimmed[run(c)..].contains('`')));
                if let Some(c) = opened {
                    fence = Some((c, run(c)));
                } else {
                    out.push(Line {
                        number: i + 1,
                        text: line,
                    });
                }
            }
        }
    }
    out
}

/// `line` with every inline code span removed (`` `a](b` `` is no link).
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|&c| c == '`').count();
        let after = &rest[start + ticks..];
        let closing = "`".repeat(ticks);
        match after.find(&closing) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unclosed run of backticks is literal text.
                out.push_str(&rest[start..start + ticks]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of one prose line: `](target)`, `[label]: target`, `href="target"`,
/// `src="target"`.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    // Inline links and images.
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let target = if let Some(angled) = after.strip_prefix('<') {
            angled.split('>').next().unwrap_or("").to_owned()
        } else {
            // Up to the closing parenthesis (nested pairs allowed) or a title.
            let mut depth = 0usize;
            let mut end = after.len();
            for (i, c) in after.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => {
                        end = i;
                        break;
                    }
                    ')' => depth -= 1,
                    c if c.is_whitespace() => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            after[..end].to_owned()
        };
        out.push(target);
        rest = after;
    }
    // Reference definitions: `[label]: target`.
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() <= 3
        && let Some(close) = trimmed.strip_prefix('[').and_then(|t| t.find("]:"))
    {
        let target = trimmed[1 + close + 2..].split_whitespace().next();
        if let Some(t) = target {
            out.push(t.trim_start_matches('<').trim_end_matches('>').to_owned());
        }
    }
    // Raw HTML attributes.
    for attr in ["href=\"", "src=\""] {
        let mut rest = line.as_str();
        while let Some(at) = rest.find(attr) {
            let after = &rest[at + attr.len()..];
            out.push(after.split('"').next().unwrap_or("").to_owned());
            rest = after;
        }
    }
    out
}

/// The files named by mdBook's `{{#include path}}`, `{{#rustdoc_include path}}` and
/// `{{#playground path}}` directives of a line (a `:anchor` or line range after the path
/// is not part of it).
fn include_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("{{#") {
        let after = &rest[at + 3..];
        let Some(end) = after.find("}}") else { break };
        let mut words = after[..end].split_whitespace();
        let directive = words.next().unwrap_or("");
        if ["include", "rustdoc_include", "playground"].contains(&directive)
            && let Some(path) = words.next()
        {
            out.push(path.split(':').next().unwrap_or(path).to_owned());
        }
        rest = &after[end..];
    }
    out
}

/// A heading's Markdown turned into the text mdBook renders: code spans keep their
/// content verbatim; outside them, links keep their text, HTML tags, emphasis markers and
/// backslash escapes go.
fn heading_text(markdown: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = markdown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '`' => {
                let ticks = chars[i..].iter().take_while(|&&x| x == '`').count();
                let body_start = i + ticks;
                let close = (body_start..chars.len()).find(|&j| {
                    chars[j..].iter().take_while(|&&x| x == '`').count() == ticks
                        && (j == 0 || chars[j - 1] != '`')
                });
                match close {
                    Some(j) => {
                        let body: String = chars[body_start..j].iter().collect();
                        // CommonMark strips one space on each side of a padded span.
                        let body = if body.len() > 2 && body.starts_with(' ') && body.ends_with(' ')
                        {
                            body[1..body.len() - 1].to_owned()
                        } else {
                            body
                        };
                        out.push_str(&body);
                        i = j + ticks;
                    }
                    None => {
                        out.extend(&chars[i..body_start]);
                        i = body_start;
                    }
                }
            }
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '<' => match chars[i..].iter().position(|&x| x == '>') {
                Some(end) => i += end + 1,
                None => {
                    out.push(c);
                    i += 1;
                }
            },
            '!' if chars.get(i + 1) == Some(&'[') => i += 1,
            '[' | ']' => {
                // `](url)`: the target is not text.
                if c == ']'
                    && chars.get(i + 1) == Some(&'(')
                    && let Some(end) = chars[i..].iter().position(|&x| x == ')')
                {
                    i += end + 1;
                } else {
                    i += 1;
                }
            }
            '*' => i += 1,
            '_' => {
                // Intra-word underscores are text; others delimit emphasis.
                let before = i > 0 && chars[i - 1].is_alphanumeric();
                let after = chars.get(i + 1).is_some_and(|x| x.is_alphanumeric());
                if before && after {
                    out.push(c);
                }
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// mdBook's `id_from_content`.
fn id_from_content(text: &str) -> String {
    text.trim()
        .chars()
        .filter_map(|ch| {
            if ch.is_alphanumeric() || ch == '_' || ch == '-' {
                Some(ch.to_ascii_lowercase())
            } else if ch.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The ATX heading of a line (`## Title ##`): its content, if the line is one.
fn atx_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let hashes = trimmed.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &trimmed[hashes..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // An optional closing sequence of `#`s, preceded by a space.
    let without_closing = rest.trim_end_matches('#');
    let rest = if without_closing.len() < rest.len()
        && (without_closing.is_empty() || without_closing.ends_with([' ', '\t']))
    {
        without_closing.trim_end()
    } else {
        rest
    };
    Some(rest)
}

/// Every anchor of a chapter: its headings' ids and the `id="…"` of its raw HTML.
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut counter: HashMap<String, u32> = HashMap::new();
    for line in prose_lines(text) {
        if let Some(content) = atx_heading(line.text) {
            // `{#custom-id}` at the end replaces the generated id.
            let custom = content
                .rfind('{')
                .filter(|_| content.ends_with('}'))
                .and_then(|open| {
                    content[open + 1..content.len() - 1]
                        .split_whitespace()
                        .find_map(|a| a.strip_prefix('#'))
                        .map(str::to_owned)
                });
            let id = match custom {
                Some(id) => id,
                None => {
                    let id = id_from_content(&heading_text(content));
                    let count = counter.entry(id.clone()).or_insert(0);
                    let unique = if *count == 0 {
                        id
                    } else {
                        format!("{id}-{count}")
                    };
                    *count += 1;
                    unique
                }
            };
            out.insert(id);
        }
        let html = without_code_spans(line.text);
        let mut rest = html.as_str();
        while let Some(at) = rest.find("id=\"") {
            let after = &rest[at + 4..];
            out.insert(after.split('"').next().unwrap_or("").to_owned());
            rest = after;
        }
    }
    out
}

/// `path` with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `%20` and friends.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a target names a scheme (`https:`, `mailto:`) or a host (`//host`): not ours
/// to check.
fn is_external(target: &str) -> bool {
    if target.starts_with("//") {
        return true;
    }
    match target.find(':') {
        Some(colon) => {
            let scheme = &target[..colon];
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        None => false,
    }
}

/// What is wrong with `target`, written in `from`, if anything. An included file
/// (`included`) may lie outside `book/src`: its text is copied into the chapter.
fn check_target(
    src: &Path,
    from: &Path,
    target: &str,
    included: bool,
    anchor_cache: &mut HashMap<PathBuf, HashSet<String>>,
) -> Option<String> {
    let target = target.trim();
    if target.is_empty() {
        return Some("an empty link target".to_owned());
    }
    if is_external(target) {
        return None;
    }
    if target.starts_with('/') {
        return Some(format!(
            "`{target}` is absolute: write it relative to this file, so that it works from \
             any place the book is served"
        ));
    }
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (target, None),
    };
    let path = percent_decode(path.split('?').next().unwrap_or(path));
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        let joined = normalize(&from.parent().expect("a file has a directory").join(&path));
        // mdBook renders `x.md` as `x.html`; a link may name either.
        match joined.extension() {
            Some(e) if e == "html" => joined.with_extension("md"),
            _ => joined,
        }
    };
    if !included && !file.starts_with(src) {
        return Some(format!(
            "`{target}` leads out of book/src, which the rendered book does not contain: link \
             to the repository's address instead"
        ));
    }
    if !file.is_file() {
        let shown = match file.strip_prefix(src) {
            Ok(inside) => format!("src/{}", inside.display()),
            Err(_) => file.display().to_string(),
        };
        return Some(format!("`{target}`: there is no file {shown}"));
    }
    let fragment = percent_decode(fragment.unwrap_or(""));
    if fragment.is_empty() || file.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let anchors = anchor_cache.entry(file.clone()).or_insert_with(|| {
        anchors(&fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())))
    });
    if anchors.contains(&fragment) {
        return None;
    }
    let mut known: Vec<&String> = anchors.iter().collect();
    known.sort();
    let shown = file.strip_prefix(src).unwrap_or(&file).display();
    Some(format!(
        "`{target}`: src/{shown} has no heading or id `{fragment}`; its anchors are {known:?}"
    ))
}

/// Every broken link of the book, as `file:line: problem`.
fn broken_links(src: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut cache = HashMap::new();
    for file in markdown_files(src) {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file
            .strip_prefix(src)
            .unwrap_or(&file)
            .display()
            .to_string();
        for line in prose_lines(&text) {
            for target in link_targets(line.text) {
                if let Some(p) = check_target(src, &file, &target, false, &mut cache) {
                    problems.push(format!("src/{name}:{}: {p}", line.number));
                }
            }
        }
        // Includes may sit inside code fences: look at every line.
        for (i, line) in text.lines().enumerate() {
            for target in include_targets(line) {
                if let Some(p) = check_target(src, &file, &target, true, &mut cache) {
                    problems.push(format!("src/{name}:{}: include {p}", i + 1));
                }
            }
        }
    }
    problems
}

#[test]
fn every_internal_link_of_the_book_leads_somewhere() {
    let src = src_dir();
    assert!(
        src.join("SUMMARY.md").is_file(),
        "no book/src/SUMMARY.md at {}",
        src.display()
    );
    let problems = broken_links(&src);
    assert!(
        problems.is_empty(),
        "{} broken link(s) in the book:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn heading_ids_follow_mdbook() {
    let cases = [
        ("Read models and projections", "read-models-and-projections"),
        (
            "The `#[aggregate(..)]` attribute",
            "the-aggregate-attribute",
        ),
        ("`#[upcast(FROM -> TO, ..)]`", "upcastfrom---to-"),
        (
            "Snapshots have a version too",
            "snapshots-have-a-version-too",
        ),
        ("*Emphasis* and snake_case", "emphasis-and-snake_case"),
        ("A [link](other.md) in a heading", "a-link-in-a-heading"),
        (
            "`SqliteOptions`: durability, readers",
            "sqliteoptions-durability-readers",
        ),
        ("Über 中文", "Über-中文"),
    ];
    for (heading, id) in cases {
        assert_eq!(
            id_from_content(&heading_text(heading)),
            id,
            "heading {heading:?}"
        );
    }
    let text = "# A\n\n## Same\n\n```\n## Not a heading\n```\n\n## Same\n\n### Custom {#mine}\n\n\
                <a id=\"raw\"></a>\n\n``` `a code span, not a fence` ```\n\n## After\n";
    let found = anchors(text);
    for id in ["a", "same", "same-1", "mine", "raw", "after"] {
        assert!(found.contains(id), "{id} missing from {found:?}");
    }
    assert!(!found.contains("not-a-heading"));
}

#[test]
fn a_broken_link_or_anchor_is_reported() {
    let dir = std::env::temp_dir().join(format!("cqrs-book-links-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let src = dir.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    // Outside src/, where an include (only) may reach.
    fs::write(dir.join("outside.rs"), "fn main() {}\n").unwrap();
    fs::write(src.join("SUMMARY.md"), "- [A](a.md)\n- [Gone](gone.md)\n").unwrap();
    fs::write(
        src.join("a.md"),
        "# A\n\n## Part one\n\n[ok](sub/b.md#b) [ok](#part-one) [ok](https://example.com)\n\
         [bad anchor](#part-two) [bad file](sub/c.md) `[in code](nowhere.md)`\n\n\
         ```rust\n// [in a fence](nowhere.md)\n```\n\n[ref]: sub/b.md#nope\n",
    )
    .unwrap();
    fs::write(
        src.join("sub/b.md"),
        "# B\n\n[up](../a.md#part-one) [out](../../x.md)\n\n```rust\n\
         {{#include ../../outside.rs:main}}\n{{#rustdoc_include ../missing.rs}}\n```\n",
    )
    .unwrap();
    let problems = broken_links(&src);
    let _ = fs::remove_dir_all(&dir);
    let expected = [
        "src/SUMMARY.md:2: `gone.md`",
        "src/a.md:6: `#part-two`",
        "src/a.md:6: `sub/c.md`",
        "src/a.md:12: `sub/b.md#nope`",
        "src/sub/b.md:3: `../../x.md` leads out of book/src",
        "src/sub/b.md:7: include `../missing.rs`: there is no file src/missing.rs",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (p, e) in problems.iter().zip(expected) {
        assert!(p.starts_with(e), "{p:?} does not start with {e:?}");
    }
}
