//! What people read: sizes, durations, exit descriptions, file names and
//! tables, one spelling each, shared by the CLI, the tray, the control
//! socket's replies and the notifications, so one backend never reads two
//! ways.
//!
//! Sizes use powers of 1024 written `KB`/`MB`/`GB`, as pm2, top and htop do,
//! and as berth reads sizes (`--log-max-size 10MB` is 10 × 2²⁰ bytes): the
//! number a user types and the number berth prints mean the same thing.

use std::path::Path;
use std::time::Duration;

/// `512 B`, `8.5 MB`, `41 MB`, `1.2 GB`: one decimal below ten, none above,
/// so a figure stays short in a tray label and in a table column.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 10.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// How long something has run: `45s`, `3m 12s`, `2h 5m`, `4d 3h`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A duration as a manifest writes it: `15s`, `500ms`, `2m`, `1h`, so an
/// error quotes the value the user wrote.
pub fn as_written(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// A state's word with how the last process ended, the one spelling of
/// `berth status`, socket replies, the tray and notifications: `exited
/// (code 1)`, `Exited (SIGKILL)`, or the word alone when neither is known.
pub fn with_exit(word: &str, code: Option<i32>, signal: Option<&str>) -> String {
    match exit(code, signal) {
        Some(how) => format!("{word} ({how})"),
        None => word.to_owned(),
    }
}

/// How a process ended: the signal's name if a signal ended it, else
/// `code N`; `None` when neither is known.
fn exit(code: Option<i32>, signal: Option<&str>) -> Option<String> {
    match (signal, code) {
        (Some(sig), _) => Some(sig.to_owned()),
        (None, Some(code)) => Some(format!("code {code}")),
        (None, None) => None,
    }
}

/// `text` flattened to one line (control characters become spaces) and
/// cut to `max` characters, the last one `…`: for a label or a
/// notification line, where the full text is in the log.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut short: String = flat.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// The last part of a path as text (`/b/python.yaml` → `python.yaml`).
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether `files` all sit in one folder. Then people tell them apart by
/// file name; files from several backends folders are shown by their full
/// paths (`status`, `check` and the tray alike), since the same name may be
/// in two folders and the folder says which copy it is.
pub fn one_folder<'a>(files: impl IntoIterator<Item = &'a Path>) -> bool {
    let mut parents = files.into_iter().map(Path::parent);
    match parents.next() {
        Some(first) => parents.all(|p| p == first),
        None => true,
    }
}

/// `file` as [`one_folder`] says to show it: its name, or its full path.
pub fn file_label(file: &Path, by_name: bool) -> String {
    match file.file_name() {
        Some(name) if by_name => name.to_string_lossy().into_owned(),
        _ => file.display().to_string(),
    }
}

/// A plain table for a terminal: a header row, columns two spaces apart,
/// no borders and no trailing blanks, so it reads like `ps` and `pm2 ls`
/// and stays easy for `awk` and `grep`.
pub fn table<R, C>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = Vec<C>>,
    C: Into<comfy_table::Cell>,
{
    use comfy_table::{ContentArrangement, Table, presets};
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        t.add_row(row);
    }
    let last = header.len().saturating_sub(1);
    for column in t.column_iter_mut() {
        let right = if column.index == last { 0 } else { 2 };
        column.set_padding((0, right));
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_several_folders_are_shown_by_full_path() {
        let one = [Path::new("/a/x.yaml"), Path::new("/a/y.yaml")];
        assert!(one_folder(one));
        assert_eq!(file_label(one[0], one_folder(one)), "x.yaml");
        let two = [Path::new("/a/x.yaml"), Path::new("/b/x.yaml")];
        assert!(!one_folder(two));
        assert_eq!(file_label(two[1], one_folder(two)), "/b/x.yaml");
        assert!(one_folder([]));
    }

    #[test]
    fn sizes_use_powers_of_1024_like_the_size_options() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(8_912_896), "8.5 MB");
        assert_eq!(bytes(41 << 20), "41 MB");
        assert_eq!(bytes(10 << 20), "10 MB");
        assert_eq!(bytes(3 << 30), "3.0 GB");
    }

    #[test]
    fn elapsed_times_read_like_pm2() {
        let s = Duration::from_secs;
        assert_eq!(elapsed(s(0)), "0s");
        assert_eq!(elapsed(s(45)), "45s");
        assert_eq!(elapsed(s(192)), "3m 12s");
        assert_eq!(elapsed(s(7500)), "2h 5m");
        assert_eq!(elapsed(s(4 * 86400 + 3 * 3600)), "4d 3h");
    }

    #[test]
    fn durations_are_written_like_the_manifest() {
        assert_eq!(as_written(Duration::from_secs(15)), "15s");
        assert_eq!(as_written(Duration::from_millis(500)), "500ms");
        assert_eq!(as_written(Duration::from_secs(120)), "2m");
        assert_eq!(as_written(Duration::from_secs(7200)), "2h");
        assert_eq!(as_written(Duration::from_millis(1500)), "1500ms");
        assert_eq!(as_written(Duration::ZERO), "0s");
    }

    #[test]
    fn exits_name_the_signal_before_the_code() {
        assert_eq!(exit(Some(1), None).as_deref(), Some("code 1"));
        assert_eq!(exit(None, Some("SIGKILL")).as_deref(), Some("SIGKILL"));
        assert_eq!(exit(Some(137), Some("SIGKILL")).as_deref(), Some("SIGKILL"));
        assert_eq!(exit(None, None), None);
    }

    #[test]
    fn tables_align_columns_two_spaces_apart_without_trailing_blanks() {
        let out = table(
            &["ID", "STATE", "NOTE"],
            [
                vec!["python", "running", ""],
                vec!["a", "exited (code 1)", "x"],
            ],
        );
        assert_eq!(
            out,
            "ID      STATE            NOTE\n\
             python  running\n\
             a       exited (code 1)  x\n"
        );
    }

    #[test]
    fn one_line_flattens_and_cuts_at_max_characters() {
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcde…");
        assert_eq!(one_line("ééééééé", 6).chars().count(), 6);
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("/b/python.yaml"), "python.yaml");
        assert_eq!(file_name("python.yaml"), "python.yaml");
    }
}
