//! Several backends folders, through the real binary with real folders and
//! real inotify events: `--backends` repeated, the default user folder plus
//! the installed one beside the real berth binary, the same-id rule across
//! folders, and bad folders (given twice, a file, unreadable, missing), each
//! named in one line while the other folders are served.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::control::home::{BERTH, Home, Launcher, Out, wait_until};

/// Well over 3x the 100 ms debounce on a loaded machine.
const T: Duration = Duration::from_secs(15);

/// An executable `#!/bin/sh` backend beside the test's folders.
fn exe(home: &Home) -> PathBuf {
    crate::util::script(home.path(), "srv.sh", "exec sleep 600")
}

/// A manifest for `exe` (absolute path) with its real digest.
fn manifest(dir: &Path, file: &str, id: &str, version: &str, exe: &Path) {
    let digest = berth::integrity::hash_file(exe).unwrap();
    fs::write(
        dir.join(file),
        format!(
            "id: {id}\nname: Backend {id}\nversion: {version}\nexecutable:\n  linux:\n    path: {}\n    sha256: {digest}\nstop: {{ timeout: 2s }}\n",
            exe.display()
        ),
    )
    .unwrap();
}

/// `berth run --headless` with one `--backends` per folder.
fn launch(home: &Home, dirs: &[&Path]) -> Launcher {
    let mut extra: Vec<&str> = Vec::new();
    for dir in &dirs[1..] {
        extra.push("--backends");
        extra.push(dir.to_str().unwrap());
    }
    // The harness passes its own folder first; these follow it.
    assert_eq!(dirs[0], home.backends());
    home.launch_with(&extra)
}

/// Starts a launcher from `cmd`, its stderr into `launcher.err`.
fn spawn(home: &Home, mut cmd: Command) -> Launcher {
    let err = home.path().join("launcher.err");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    Launcher { child, err }
}

/// Waits until `status --json` answers and satisfies `pred`; panics with
/// the last list.
fn wait_status(home: &Home, what: &str, pred: impl Fn(&[serde_json::Value]) -> bool) {
    let mut last = Vec::new();
    let ok = wait_until(T, || {
        let out = home.run(&["status", "--json"]);
        last = serde_json::from_str(&out.stdout()).unwrap_or_default();
        out.code() == 0 && pred(&last)
    });
    assert!(ok, "{what}: {last:#?}");
}

fn entry<'a>(list: &'a [serde_json::Value], file: &Path) -> Option<&'a serde_json::Value> {
    list.iter()
        .find(|b| b["file"] == file.display().to_string())
}

fn winner(list: &[serde_json::Value], id: &str) -> Option<(String, String)> {
    list.iter()
        .find(|b| b["id"] == id && b["state"] != "superseded")
        .map(|b| {
            (
                b["file"].as_str().unwrap_or_default().to_owned(),
                b["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

/// Issue #18 point 3: every folder watched, a user copy with a higher
/// version overrides the shipped one without a stop, and removing it brings
/// the shipped one back, still without a stop.
#[test]
fn several_folders_are_watched_and_an_id_competes_across_them() {
    let home = Home::new();
    let exe = exe(&home);
    let user = home.backends();
    let shipped = home.path().join("shipped");
    fs::create_dir(&shipped).unwrap();
    manifest(&shipped, "py.yaml", "py", "1.0.0", &exe);
    let launcher = launch(&home, &[&user, &shipped]);

    let out = home.run(&["start", "py"]);
    assert_eq!(out.code(), 0, "{out:?}\n{}", launcher.stderr());
    let pid = home.status_of("py")["pid"].as_u64().unwrap();

    // A user copy with a higher version: an edit of the running backend.
    manifest(&user, "py.yaml", "py", "1.1.0", &exe);
    wait_status(&home, "the user copy wins", |list| {
        winner(list, "py") == Some((user.join("py.yaml").display().to_string(), "1.1.0".into()))
    });
    let list = home.status_json();
    let py = winner(&list, "py").unwrap();
    assert_eq!(py.1, "1.1.0");
    let running = list
        .iter()
        .find(|b| b["id"] == "py" && b["state"] == "running");
    assert_eq!(
        running.and_then(|b| b["pid"].as_u64()),
        Some(pid),
        "{list:#?}"
    );
    assert_eq!(
        entry(&list, &shipped.join("py.yaml")).map(|b| &b["state"]),
        Some(&serde_json::json!("superseded")),
        "{list:#?}"
    );
    // Two folders: the table names each file by its full path.
    let table = home.run(&["status"]);
    assert!(
        table
            .stdout()
            .contains(&shipped.join("py.yaml").display().to_string())
            && table
                .stdout()
                .contains(&user.join("py.yaml").display().to_string()),
        "{table:?}"
    );

    // `check` with the same folders agrees, naming files by full path.
    let check = home.run(&["check", user.to_str().unwrap(), shipped.to_str().unwrap()]);
    assert_eq!(check.code(), 0, "{check:?}");
    let superseded = check
        .stdout()
        .lines()
        .find(|l| l.starts_with(&shipped.join("py.yaml").display().to_string()))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        superseded.contains("superseded")
            && superseded.contains(&format!("by {}", user.join("py.yaml").display())),
        "{check:?}"
    );

    // Removed: the shipped file wins again, and nothing was stopped.
    fs::remove_file(user.join("py.yaml")).unwrap();
    wait_status(&home, "the shipped file wins again", |list| {
        winner(list, "py")
            .is_some_and(|(file, _)| file == shipped.join("py.yaml").display().to_string())
    });
    assert_eq!(home.status_of("py")["pid"].as_u64(), Some(pid));
    assert!(crate::control::home::alive(pid));

    // The user folder deleted with a copy in it: nothing changes while it is
    // gone; re-created empty, the copy counts as removed, still no stop.
    manifest(&user, "py.yaml", "py", "1.2.0", &exe);
    wait_status(&home, "the user copy wins again", |list| {
        winner(list, "py").is_some_and(|(_, version)| version == "1.2.0")
    });
    fs::remove_dir_all(&user).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        winner(&home.status_json(), "py").map(|(_, v)| v).as_deref(),
        Some("1.2.0"),
        "nothing in a missing folder counts as removed"
    );
    fs::create_dir(&user).unwrap();
    wait_status(
        &home,
        "the shipped file wins once the folder is back",
        |list| winner(list, "py").is_some_and(|(_, version)| version == "1.0.0"),
    );
    assert_eq!(home.status_of("py")["pid"].as_u64(), Some(pid));

    // Each folder is watched: a new file in the second folder appears.
    manifest(&shipped, "web.yaml", "web", "1.0.0", &exe);
    wait_status(&home, "web appears", |list| winner(list, "web").is_some());
    drop(launcher);
}

/// Issue #18 point 7: a folder given twice (through a symlink and another
/// spelling), one that is a file, one that is missing and one that cannot be
/// read: one line each naming it, and the good folder still served. The
/// missing one is picked up once it appears.
#[test]
fn bad_folders_are_named_once_each_and_the_others_are_served() {
    let home = Home::new();
    let exe = exe(&home);
    let good = home.backends();
    manifest(&good, "ok.yaml", "ok", "1.0.0", &exe);
    let link = home.path().join("alias");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let respelled = home.path().join("alias/../b");
    let file = home.path().join("plain-file");
    fs::write(&file, "not a folder").unwrap();
    let missing = home.path().join("later");
    let locked = home.path().join("locked");
    fs::create_dir(&locked).unwrap();
    manifest(&locked, "hidden.yaml", "hidden", "1.0.0", &exe);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();

    let dirs: Vec<&Path> = vec![&good, &link, &respelled, &file, &missing, &locked];
    let mut cmd = unprivileged(&home, &["run", "--headless"]);
    for dir in &dirs {
        cmd.arg("--backends").arg(dir);
    }
    let launcher = spawn(&home, cmd);
    wait_status(&home, "the good folder is served", |list| {
        winner(list, "ok").is_some()
    });
    let list = home.status_json();
    assert!(winner(&list, "hidden").is_none(), "{list:#?}");
    let ids: Vec<&serde_json::Value> = list.iter().map(|b| &b["id"]).collect();
    assert_eq!(ids, [&serde_json::json!("ok")], "read once: {list:#?}");
    assert_eq!(home.run(&["start", "ok"]).code(), 0);

    let stderr = launcher.stderr();
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    for (dir, says) in [
        (&link, "the same folder as"),
        (&respelled, "the same folder as"),
        (&file, "is not a folder"),
        (&missing, "is missing"),
        (&locked, "cannot read the backends folder"),
    ] {
        let named: Vec<&&str> = problems
            .iter()
            .filter(|l| l.contains(&format!("{}:", dir.display())))
            .collect();
        assert_eq!(named.len(), 1, "{}: {stderr}", dir.display());
        assert!(named[0].contains(says), "{}: {stderr}", dir.display());
    }
    assert!(
        !problems
            .iter()
            .any(|l| l.contains(&format!("{}:", good.display()))),
        "{stderr}"
    );

    // The missing folder appears: its parent's watch sees it.
    fs::create_dir(&missing).unwrap();
    manifest(&missing, "late.yaml", "late", "1.0.0", &exe);
    wait_status(&home, "the late folder is picked up", |list| {
        winner(list, "late").is_some()
    });

    // `check` takes the same list and says the same, one line each.
    let check = Out(unprivileged(&home, &["check"])
        .args(&dirs)
        .output()
        .unwrap());
    assert_eq!(check.code(), 1, "{check:?}");
    let stderr = check.stderr();
    for dir in [&link, &respelled, &file, &locked] {
        let named = stderr
            .lines()
            .filter(|l| l.contains(&format!("{}:", dir.display())))
            .count();
        assert_eq!(named, 1, "{}: {check:?}", dir.display());
    }
    assert!(check.stdout().contains("ok.yaml") && check.stdout().contains("late.yaml"));

    // Made readable: the chmod is seen (the parent's watch) and its file read.
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    wait_status(&home, "the unlocked folder is read", |list| {
        winner(list, "hidden").is_some()
    });
    drop(launcher);

    // Nothing usable at all: a usage error, one line, before the socket.
    let other = Home::new();
    let out = other.run(&[
        "run",
        "--headless",
        "--backends",
        file.to_str().unwrap(),
        "--backends",
        "/nonexistent/berth-a",
    ]);
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(crate::control::home::one_line(&out.stderr()), "{out:?}");
    assert!(
        out.stderr().contains("is not a folder")
            && out.stderr().contains("/nonexistent/berth-a does not exist"),
        "{out:?}"
    );
    assert!(!other.socket().exists());
}

/// `berth ARGS` for `home` that cannot read what its permissions forbid:
/// as root, the capabilities that bypass them are dropped first (setpriv).
fn unprivileged(home: &Home, args: &[&str]) -> Command {
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = home.berth_at(Path::new("setpriv"));
        c.args([
            "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search",
            BERTH,
        ]);
        c
    } else {
        home.berth_bare()
    };
    cmd.arg("--socket").arg(home.socket()).args(args);
    cmd
}

/// The installed layout: with no `--backends`, berth reads the user folder
/// (created on first run) and `backends/` beside the real berth binary,
/// found through a symlink like `/usr/bin/berth`; `check` and `pin` read the
/// same two folders.
#[test]
fn the_default_folders_are_the_user_folder_and_the_installed_one() {
    let home = Home::new();
    let exe = exe(&home);
    // /usr/lib/berth/berth with /usr/bin/berth -> it, as the package lays it.
    let lib = home.path().join("usr/lib/berth");
    let installed = lib.join("backends");
    fs::create_dir_all(&installed).unwrap();
    let real = lib.join("berth");
    fs::hard_link(BERTH, &real).unwrap();
    fs::create_dir_all(home.path().join("usr/bin")).unwrap();
    let bin = home.path().join("usr/bin/berth");
    std::os::unix::fs::symlink("../lib/berth/berth", &bin).unwrap();
    manifest(&installed, "py.yaml", "py", "1.0.0", &exe);
    // A current folder without ./backends.
    let cwd = home.path().join("elsewhere");
    fs::create_dir(&cwd).unwrap();
    let user = home.path().join("config/berth/backends");
    let berth = |args: &[&str]| {
        let mut cmd = home.berth_at(&bin);
        cmd.current_dir(&cwd)
            .arg("--socket")
            .arg(home.socket())
            .args(args);
        cmd
    };

    // No user folder yet: `check` reads the installed one alone.
    let check = Out(berth(&["check"]).output().unwrap());
    assert_eq!(check.code(), 0, "{check:?}");
    assert!(
        check.stdout().contains("py.yaml") && check.stdout().contains(" ok "),
        "{check:?}"
    );

    let launcher = spawn(&home, berth(&["run", "--headless"]));
    wait_status(&home, "the installed backend is served", |list| {
        winner(list, "py").is_some()
    });
    assert!(
        user.is_dir(),
        "the user folder is created: {}",
        launcher.stderr()
    );
    manifest(&user, "py.yaml", "py", "2.0.0", &exe);
    wait_status(&home, "the user copy wins", |list| {
        winner(list, "py") == Some((user.join("py.yaml").display().to_string(), "2.0.0".into()))
    });
    // `check` and `pin` see the same two folders, the user copy winning.
    let check = Out(berth(&["check"]).output().unwrap());
    assert_eq!(check.code(), 0, "{check:?}");
    let row = |file: &Path| {
        check
            .stdout()
            .lines()
            .find(|l| l.starts_with(&file.display().to_string()))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no row for {}: {check:?}", file.display()))
    };
    assert!(row(&user.join("py.yaml")).contains(" ok "), "{check:?}");
    assert!(
        row(&installed.join("py.yaml")).contains("superseded"),
        "{check:?}"
    );
    let pin = Out(berth(&["pin", "py"]).output().unwrap());
    assert_eq!(pin.code(), 0, "{pin:?}");
    assert!(
        pin.stdout().starts_with(&format!(
            "{}: py already pinned",
            user.join("py.yaml").display()
        )),
        "{pin:?}"
    );
    drop(launcher);
}
