//! serde_yaml's errors reworded into [`ManifestError`]'s one line.
//!
//! serde_yaml formats `field.path: message at line L column C`; the parts are
//! split back out so every error reads `file: line L column C: field:
//! message`, then reworded where serde's text is not actionable (a misspelled
//! field gets a suggestion, a tab gets a hint) and escaped so it stays on one
//! line whatever the file quoted.

use std::path::Path;

use super::ManifestError;

/// 1-based line and column (in characters) of the end of `before`.
pub(super) fn line_column(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let last = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(before, |nl| &before[nl + 1..]);
    let column = String::from_utf8_lossy(last).chars().count() + 1;
    (line, column)
}

/// Splits serde_yaml's `field: message at line L column C` into parts.
pub(super) fn yaml_error(file: &Path, text: &str, err: &serde_yaml::Error) -> ManifestError {
    let location = err.location();
    let mut message = err.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
    }
    let mut field = None;
    if let Some((head, tail)) = message.split_once(": ")
        && !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.[]?".contains(c))
    {
        field = Some(head.to_owned());
        message = tail.to_owned();
    }
    // serde reports a missing or repeated field at the enclosing mapping:
    // name the field itself.
    for (prefix, what) in [
        ("missing field `", "required field missing"),
        ("duplicate field `", "given twice"),
    ] {
        if let Some(name) = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'))
        {
            field = Some(match field {
                Some(parent) => format!("{parent}.{name}"),
                None => name.to_owned(),
            });
            message = what.to_owned();
        }
    }
    // A key or value quoted in the message may hold a line break: the error
    // must stay on one line.
    let message: String = explain(&message, text, location.as_ref())
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    let (line, column) = match location {
        Some(loc) => (Some(loc.line()), Some(loc.column())),
        None => (None, None),
    };
    ManifestError {
        file: file.to_path_buf(),
        line,
        column,
        field,
        message,
    }
}

/// Makes serde_yaml's wording actionable: a suggestion for a misspelled
/// field, a word about tabs, plain words for the structural errors.
///
/// This reads the message's text because serde_yaml's `Error` has no public
/// kind (only its text and location): this is where the parser's error is
/// shown, and nothing is decided on it but its wording. berth's own errors
/// are typed enums and are never classified by their text.
fn explain(message: &str, text: &str, location: Option<&serde_yaml::Location>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((unknown, expected)) = rest.split_once('`')
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if let Some(best) = closest(unknown, &candidates) {
            return format!("unknown field `{unknown}`, did you mean `{best}`?");
        }
        return message.to_owned();
    }
    if message.starts_with("EOF while parsing") {
        return "no YAML document: expected a mapping with id, name, version and executable"
            .to_owned();
    }
    if message.starts_with("deserializing from YAML containing more than one document") {
        return "more than one YAML document (---): one manifest per file".to_owned();
    }
    if message.starts_with("recursion limit exceeded") {
        return "nested too deeply (YAML recursion limit exceeded)".to_owned();
    }
    if message.starts_with("repetition limit exceeded") {
        return "too many alias expansions (YAML repetition limit exceeded)".to_owned();
    }
    let tab_on_line = location
        .and_then(|loc| text.lines().nth(loc.line().saturating_sub(1)))
        .is_some_and(|l| l.contains('\t'));
    if tab_on_line && (message.contains("tab") || message.contains("cannot start any token")) {
        return format!("{message} (YAML does not allow tabs for indentation; use spaces)");
    }
    message.to_owned()
}

/// The nearest candidate within an edit distance of a third of `word`'s
/// length (at least 1).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("argz", &["args", "env"]), Some("args"));
        assert_eq!(closest("a", &["id"]), None);
        assert_eq!(closest("totally", &["id", "name"]), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
