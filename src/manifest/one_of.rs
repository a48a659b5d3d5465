//! Mappings that take exactly one of several keys (`ready`'s probe,
//! `health`'s check), checked while serde reads them.
//!
//! A leaf that `raw` and `health` both use, so neither imports the other
//! for it.

use serde::de;

/// Exactly one of `given` (name, present) is present: `ready`'s probe,
/// `health`'s check. The error names them all: "no probe: expected one of
/// stdout_json, tcp or http".
pub fn exactly_one<E: de::Error>(what: &str, given: &[(&str, bool)]) -> Result<(), E> {
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    let list = match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    match given.iter().filter(|(_, present)| *present).count() {
        1 => Ok(()),
        0 => Err(E::custom(format_args!("no {what}: expected one of {list}"))),
        _ => Err(E::custom(format_args!(
            "more than one {what}: give only one of {list}"
        ))),
    }
}
