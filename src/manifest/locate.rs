//! Where, byte for byte, the current platform's `sha256` (and its
//! `files.sha256`) sits in a manifest, so `berth pin` can replace those bytes
//! and leave every other one alone.
//!
//! serde_yaml exposes positions only through errors, so the digest is found by
//! walking the document down to that one scalar and failing there on purpose:
//! the error's location is the scalar's first byte. The end is found by
//! scanning the quoted or plain scalar. Whatever this returns is checked again
//! by the caller, which re-parses the rewritten text.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::platform::Platform;
use super::raw::RawManifest;
use super::validate;
use super::{Backend, ManifestError};

/// The digest scalar of one platform entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSpan {
    /// The platform key of the entry (`linux-x86_64`).
    pub key: String,
    /// Byte range of the digest's characters in the text (inside the quotes,
    /// if quoted).
    pub range: Range<usize>,
}

const MARKER: &str = "berth-locate-marker";

/// Finds the `sha256` value of `platform`'s entry. `Ok(None)`: no entry for
/// this platform. `Err`: the text is not a mapping with an `executable`
/// mapping, or the value is not a plain or quoted scalar.
pub fn digest_span(text: &str, platform: Platform) -> Result<Option<DigestSpan>, String> {
    #[derive(Deserialize)]
    struct Keys {
        executable: BTreeMap<String, IgnoredAny>,
    }
    let keys: Keys = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let Some(key) = platform.choose(keys.executable.keys().map(String::as_str)) else {
        return Ok(None);
    };
    let range = span_at(text, &["executable", &key, "sha256"])?;
    Ok(Some(DigestSpan { key, range }))
}

/// Finds the `files.sha256` value of the entry `key` (as chosen by
/// [`digest_span`]); `Err` when the entry has no `files` digest there.
pub fn files_digest_span(text: &str, key: &str) -> Result<DigestSpan, String> {
    let range = span_at(text, &["executable", key, "files", "sha256"])?;
    Ok(DigestSpan {
        key: key.to_owned(),
        range,
    })
}

/// The byte range of the scalar at the mapping keys `path`.
fn span_at(text: &str, path: &[&str]) -> Result<Range<usize>, String> {
    let field = path.join(".");
    let reached = Cell::new(false);
    let walk = Walk {
        path,
        reached: &reached,
    };
    let err = match walk.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(()) => return Err(format!("{field}: missing")),
        Err(e) => e,
    };
    let start = match err.location() {
        // The error is the marker's when the walk reached the scalar: the
        // walk stops at the first error.
        Some(loc) if reached.get() => loc.index(),
        _ => return Err(format!("{field}: {err}")),
    };
    scalar_range(text, start).ok_or_else(|| {
        format!("{field}: write the digest as a plain or quoted value (no anchor, alias, tag or block scalar)")
    })
}

/// The characters of the scalar that starts at `start`, without its quotes.
fn scalar_range(text: &str, start: usize) -> Option<Range<usize>> {
    let rest = text.get(start..)?;
    let bytes = rest.as_bytes();
    match bytes.first()? {
        b'"' => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(start + 1..start + i),
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(start + 1..start + i);
                }
                i += 1;
            }
            None
        }
        b'&' | b'*' | b'!' | b'|' | b'>' => None,
        _ => {
            let mut end = bytes.len();
            for (i, b) in bytes.iter().enumerate() {
                let comment = *b == b'#' && i > 0 && matches!(bytes[i - 1], b' ' | b'\t');
                if matches!(b, b'\n' | b'\r' | b',' | b']' | b'}') || comment {
                    end = i;
                    break;
                }
            }
            let len = rest[..end].trim_end().len();
            (len > 0).then_some(start..start + len)
        }
    }
}

/// Walks down the mapping keys of `path` (`executable`, `<key>`, `sha256`)
/// and fails at the last one's value with [`MARKER`], setting `reached`: one
/// seed per level.
#[derive(Clone, Copy)]
struct Walk<'a> {
    path: &'a [&'a str],
    reached: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((want, rest)) = self.path.split_first() else {
            return Ok(());
        };
        while let Some(k) = map.next_key::<String>()? {
            if k != *want {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if rest.is_empty() {
                map.next_value_seed(Mark(self.reached))?;
            } else {
                map.next_value_seed(Walk { path: rest, ..self })?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Mark<'a>(&'a Cell<bool>);

impl<'de> DeserializeSeed<'de> for Mark<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Mark<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.0.set(true);
        Err(E::custom(MARKER))
    }
}

/// What `berth pin` reads: the manifest as validated, except that a bad
/// digest in the current platform's entry (or its `files`) is accepted (read
/// as zeros).
pub struct Pinnable {
    pub backend: Backend,
    /// The digest's place in the text; `None` when no entry fits this platform.
    pub span: Option<DigestSpan>,
    /// The `files.sha256` digest's place, when the entry has one.
    pub files_span: Option<DigestSpan>,
}

/// Validates `bytes` like [`validate::parse`], but tolerates a faulty digest
/// in the entry `pin` would rewrite. Any other fault is the strict error.
pub fn parse_pinnable(
    file: &Path,
    bytes: &[u8],
    places: &super::Places,
    platform: Platform,
) -> Result<Pinnable, ManifestError> {
    let strict = validate::parse_raw(file, bytes);
    let text = std::str::from_utf8(bytes).ok();
    let span = text.and_then(|t| digest_span(t, platform).ok().flatten());
    let files_span = text
        .zip(span.as_ref())
        .and_then(|(t, s)| files_digest_span(t, &s.key).ok());
    let raw = match (strict, text, &span) {
        (Ok(raw), _, _) => raw,
        (Err(e), Some(text), Some(span)) => {
            let zeros = with_digests(text, [Some(span), files_span.as_ref()], &"0".repeat(64));
            validate::parse_raw(file, zeros.as_bytes()).map_err(|_| e)?
        }
        (Err(e), _, _) => return Err(e),
    };
    Ok(Pinnable {
        backend: validate::to_backend(raw, file, places, platform),
        span,
        files_span,
    })
}

/// `text` with every given span replaced by `hex` (spans do not overlap).
pub fn with_digests<'a>(
    text: &str,
    spans: impl IntoIterator<Item = Option<&'a DigestSpan>>,
    hex: &str,
) -> String {
    let mut spans: Vec<&DigestSpan> = spans.into_iter().flatten().collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.range.start));
    let mut out = text.to_owned();
    for span in spans {
        out = with_digest(&out, span, hex);
    }
    out
}

/// `text` with the digest at `span` replaced by `hex`.
pub fn with_digest(text: &str, span: &DigestSpan, hex: &str) -> String {
    let mut out = String::with_capacity(text.len() + hex.len());
    out.push_str(&text[..span.range.start]);
    out.push_str(hex);
    out.push_str(&text[span.range.end..]);
    out
}

/// The platform table of `raw` with `key`'s digest blanked, to compare two
/// texts that must differ only there.
pub fn without_digest(mut raw: RawManifest, key: &str) -> RawManifest {
    if let Some(entry) = raw.executable.0.get_mut(key) {
        entry.sha256 = super::scalar::Sha256(super::Digest([0; 32]));
        if let Some(files) = entry.files.as_mut() {
            files.sha256 = super::scalar::Sha256(super::Digest([0; 32]));
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: Platform = Platform {
        os: "linux",
        arch: "x86_64",
    };

    fn span_text(text: &str) -> Option<String> {
        digest_span(text, LINUX)
            .unwrap()
            .map(|s| format!("{}={}", s.key, &text[s.range]))
    }

    #[test]
    fn finds_the_most_specific_entry_in_every_style() {
        let text = "id: a # sha256: nope\nexecutable:\n  linux: { path: x, sha256: aaa }\n  linux-x86_64:\n    sha256: \"b\\\"bb\"   # c\n    path: y\n";
        assert_eq!(span_text(text).as_deref(), Some("linux-x86_64=b\\\"bb"));
        let text = "executable:\n  linux:\n    path: x\n    sha256: 'it''s'\n";
        assert_eq!(span_text(text).as_deref(), Some("linux=it''s"));
        let text = "executable:\n  linux:\n    path: x\n    sha256: 00ff  # zeros\n";
        assert_eq!(span_text(text).as_deref(), Some("linux=00ff"));
        let text = "executable: {linux: {sha256: 12ab, path: x}}";
        assert_eq!(span_text(text).as_deref(), Some("linux=12ab"));
        let text = "\u{feff}executable: {linux: {sha256: 12ab, path: x}}";
        assert_eq!(span_text(text).as_deref(), Some("linux=12ab"));
        assert_eq!(span_text("executable: {windows: {sha256: 1}}"), None);
    }

    #[test]
    fn finds_the_files_digest_of_the_entry() {
        let text = "executable:\n  linux:\n    sha256: aa\n    files: { dir: _internal, sha256: \"bb\" }\n    path: x\n";
        let s = digest_span(text, LINUX).unwrap().unwrap();
        assert_eq!(&text[s.range.clone()], "aa");
        let f = files_digest_span(text, &s.key).unwrap();
        assert_eq!(&text[f.range.clone()], "bb");
        let both = with_digests(text, [Some(&s), Some(&f)], "00");
        assert!(
            both.contains("sha256: 00\n") && both.contains("sha256: \"00\""),
            "{both}"
        );
        assert!(files_digest_span("executable: {linux: {sha256: a, path: x}}", "linux").is_err());
    }

    #[test]
    fn refuses_what_it_cannot_rewrite_in_place() {
        for text in [
            "z: &z abc\nexecutable: {linux: {sha256: *z, path: x}}",
            "executable: {linux: {sha256: !!str abc, path: x}}",
            "executable:\n  linux:\n    sha256: |\n      abc\n",
            "executable: {linux: {sha256: [a], path: x}}",
            "executable: {linux: {path: x}}",
            "executable: [1]",
        ] {
            assert!(digest_span(text, LINUX).is_err(), "{text}");
        }
    }
}
