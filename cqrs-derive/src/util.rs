//! Small helpers: case conversion and type printing for messages.

/// `open_account` → `OpenAccount`.
pub(crate) fn snake_to_camel(snake: &str) -> String {
    let snake = snake.strip_prefix("r#").unwrap_or(snake);
    let mut out = String::with_capacity(snake.len());
    let mut upper = true;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `OpenAccount` → `open_account`.
pub(crate) fn camel_to_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A type as a user would write it, for messages: `Vec<Line>`, not `Vec < Line >`.
pub(crate) fn type_to_string(ty: &syn::Type) -> String {
    let raw = quote::quote!(#ty).to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let tight =
                |ch: char| matches!(ch, '<' | '>' | ':' | '&' | '(' | ')' | '[' | ']' | ',');
            if (tight(prev) && prev != ',') || (tight(next) && next != '&') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The candidate closest to `word`, if it is close enough to be a likely typo: an edit
/// distance of at most 2, or one containing the other (`command_type` → `command`).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|&c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d <= 2 || (c.len() >= 3 && (word.contains(c) || c.contains(word))))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_convert_both_ways() {
        assert_eq!(snake_to_camel("open_account"), "OpenAccount");
        assert_eq!(snake_to_camel("deposited"), "Deposited");
        assert_eq!(snake_to_camel("r#type"), "Type");
        assert_eq!(camel_to_snake("OpenAccount"), "open_account");
        assert_eq!(camel_to_snake("Paid"), "paid");
    }

    #[test]
    fn typos_find_the_key_they_miss() {
        let keys = ["command", "event", "error", "services", "name"];
        assert_eq!(did_you_mean("command_type", &keys), Some("command"));
        assert_eq!(did_you_mean("errors", &keys), Some("error"));
        assert_eq!(did_you_mean("evnt", &keys), Some("event"));
        assert_eq!(did_you_mean("rename", &["name", "version"]), Some("name"));
        assert_eq!(did_you_mean("label", &keys), None);
        assert_eq!(did_you_mean("key", &["id"]), None);
    }

    #[test]
    fn types_print_like_source() {
        let ty: syn::Type = syn::parse_quote!(Vec<Option<&'static str>>);
        assert_eq!(type_to_string(&ty), "Vec<Option<&'static str>>");
        let ty: syn::Type = syn::parse_quote!(std::collections::HashMap<String, u64>);
        assert_eq!(
            type_to_string(&ty),
            "std::collections::HashMap<String, u64>"
        );
    }
}
