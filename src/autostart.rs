//! Start at login: the XDG autostart entry
//! `$XDG_CONFIG_HOME/autostart/NAME.desktop` (NAME the instance's `--app`,
//! `berth` by default), written per the Desktop Entry spec, for `berth
//! autostart` and the tray's "Start at login" item.
//!
//! Written by hand, not with the `auto-launch` crate: that crate writes an
//! unquoted `Exec` (a path with a space breaks, node-auto-launch #99) under
//! a hard-coded `~/.config`. Here every argument that needs it is quoted
//! with the spec's rules, `TryExec` lets the desktop skip the entry once
//! berth is uninstalled, and `X-GNOME-Autostart-enabled` is honoured both
//! ways (GNOME's tools turn an entry off by setting it to false).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::paths::AppName;

/// Why the entry could not be written or removed, in one line.
#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot find berth's own executable: {0}")]
    NoExe(std::io::Error),
    #[error("{} is not valid UTF-8: a desktop entry cannot name it", .0.display())]
    NotUtf8(PathBuf),
    #[error("{} contains a line break: a desktop entry cannot name it", .0.display())]
    LineBreak(PathBuf),
    #[error("backends folder {}: does not exist", .0.display())]
    NoSuchDir(PathBuf),
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove {}: {source}", file.display())]
    Remove {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// The berth executable the entry runs: this one, or the `berth` beside
/// `berth-tray` when called from the tray (`berth run` picks the tray itself).
pub fn berth_exe() -> Result<PathBuf, AutostartError> {
    let exe = std::env::current_exe().map_err(AutostartError::NoExe)?;
    if exe.file_name().is_some_and(|n| n == crate::paths::TRAY_EXE)
        && let Some(berth) = exe.parent().map(|d| d.join("berth"))
        && berth.is_file()
    {
        return Ok(berth);
    }
    Ok(exe)
}

/// One argument of `Exec`, quoted when it has a reserved character (Desktop
/// Entry spec, "The Exec key"), `%` doubled (field codes), then escaped as a
/// string value (`\` becomes `\\`).
pub fn exec_arg(arg: &str) -> String {
    const RESERVED: &[char] = &[
        ' ', '\t', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')',
        '`', '=',
    ];
    let arg = arg.replace('%', "%%");
    let quoted = if arg.is_empty() || arg.contains(RESERVED) {
        let mut q = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        arg
    };
    quoted.replace('\\', "\\\\")
}

/// A string value (`TryExec`): only `\` needs escaping.
fn string_value(text: &str) -> String {
    text.replace('\\', "\\\\")
}

fn utf8(path: &Path) -> Result<&str, AutostartError> {
    let text = path
        .to_str()
        .ok_or_else(|| AutostartError::NotUtf8(path.to_owned()))?;
    if text.contains(['\n', '\r']) {
        return Err(AutostartError::LineBreak(path.to_owned()));
    }
    Ok(text)
}

/// The entry's text for `exe run [--app NAME] [--backends DIR]...`
/// (`--app` for an instance other than berth's own).
pub fn entry(exe: &Path, app: &AppName, dirs: &[PathBuf]) -> Result<String, AutostartError> {
    let mut exec = vec![exec_arg(utf8(exe)?), "run".to_owned()];
    if !app.is_default() {
        exec.push("--app".to_owned());
        exec.push(exec_arg(app.as_str()));
    }
    for dir in dirs {
        exec.push("--backends".to_owned());
        exec.push(exec_arg(utf8(dir)?));
    }
    Ok(format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name={}\n\
         Comment=Desktop launcher for backends, in the system tray\n\
         Exec={}\n\
         TryExec={}\n\
         Icon=berth\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        string_value(app.as_str()),
        exec.join(" "),
        string_value(utf8(exe)?),
    ))
}

/// Writes the entry of the instance `app` (atomically: a temp file renamed
/// over) for this berth and `dirs` (made absolute; each must exist).
/// Returns the file.
pub fn enable(app: &AppName, dirs: &[PathBuf]) -> Result<PathBuf, AutostartError> {
    let file = crate::paths::autostart_file(app);
    let mut absolute = Vec::new();
    for dir in dirs {
        let dir = crate::paths::absolute(dir);
        if !dir.is_dir() {
            return Err(AutostartError::NoSuchDir(dir));
        }
        absolute.push(dir);
    }
    let text = entry(&berth_exe()?, app, &absolute)?;
    let write_err = |source| AutostartError::Write {
        file: file.clone(),
        source,
    };
    let folder = file.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(folder).map_err(write_err)?;
    // A dot name: desktops ignore it if berth dies before the rename.
    let tmp = folder.join(format!(".{app}.desktop.{}", std::process::id()));
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, &file)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(file)
}

/// Removes the entry; `Ok(false)` when there was none.
pub fn disable(app: &AppName) -> Result<bool, AutostartError> {
    let file = crate::paths::autostart_file(app);
    match fs::remove_file(&file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(AutostartError::Remove { file, source }),
    }
}

/// Is start at login on? The entry exists and neither `Hidden=true` nor
/// `X-GNOME-Autostart-enabled=false` turns it off.
pub fn is_enabled(app: &AppName) -> bool {
    fs::read_to_string(crate::paths::autostart_file(app)).is_ok_and(|text| entry_enabled(&text))
}

/// Whether an entry's text says it runs (only its `[Desktop Entry]` group).
pub fn entry_enabled(text: &str) -> bool {
    let mut in_group = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_group = line == "[Desktop Entry]";
            continue;
        }
        if !in_group {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let (key, value) = (key.trim(), value.trim());
            if (key == "Hidden" && value == "true")
                || (key == "X-GNOME-Autostart-enabled" && value == "false")
            {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_stay_bare_and_reserved_ones_are_quoted() {
        assert_eq!(exec_arg("/usr/bin/berth"), "/usr/bin/berth");
        assert_eq!(exec_arg("/opt/my apps/berth"), "\"/opt/my apps/berth\"");
        // `$` and `"` get a backslash inside the quotes, which the string
        // escape rule then doubles.
        assert_eq!(exec_arg("/a$b\"c"), r#""/a\\$b\\"c""#);
        assert_eq!(exec_arg("/50%"), "/50%%");
        assert_eq!(exec_arg(""), "\"\"");
    }

    #[test]
    fn the_entry_names_this_binary_its_folders_and_the_keys_desktops_read() {
        let text = entry(
            Path::new("/home/me/my apps/berth"),
            &AppName::default(),
            &[PathBuf::from("/home/me/back ends")],
        )
        .unwrap();
        assert!(
            text.contains(
                "\nExec=\"/home/me/my apps/berth\" run --backends \"/home/me/back ends\"\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nTryExec=/home/me/my apps/berth\n"),
            "{text}"
        );
        assert!(text.contains("\nX-GNOME-Autostart-enabled=true\n"));
        assert!(entry_enabled(&text));
        let bare = entry(Path::new("/usr/bin/berth"), &AppName::default(), &[]).unwrap();
        assert!(bare.contains("\nExec=/usr/bin/berth run\n"), "{bare}");
        assert!(bare.contains("\nName=berth\n"), "{bare}");
        let app = AppName::new("acme").unwrap();
        let acme = entry(Path::new("/usr/bin/berth"), &app, &[]).unwrap();
        assert!(
            acme.contains("\nExec=/usr/bin/berth run --app acme\n"),
            "{acme}"
        );
        assert!(acme.contains("\nName=acme\n"), "{acme}");
    }

    #[test]
    fn a_desktop_can_turn_the_entry_off() {
        assert!(!entry_enabled(
            "[Desktop Entry]\nX-GNOME-Autostart-enabled=false\n"
        ));
        assert!(!entry_enabled("[Desktop Entry]\nHidden=true\n"));
        assert!(entry_enabled(
            "[Desktop Entry]\nExec=x\n[Other]\nHidden=true\n"
        ));
    }

    #[test]
    fn a_path_with_a_line_break_is_refused() {
        let err = entry(Path::new("/a\nb/berth"), &AppName::default(), &[]).unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
    }
}
