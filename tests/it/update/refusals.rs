//! Only trusted bytes (issue #27, point 4) through the real binary's
//! `berth update ID`, carried out by a running launcher: each refusal is one
//! line naming what is wrong, and changes nothing (the updates folder, the
//! backend's status, its running process of the old version).
//!
//! One feed made by the real `berth release` is served; each case serves a
//! tampered copy of it. Tested elsewhere and not again here:
//! - the index unsigned, changed after signing, or signed by an untrusted
//!   key: `update/check.rs` (`--check`, the same reading of the index);
//! - a version not higher than the installed one: `update/verbs.rs`;
//! - an http feed on a non-loopback host: the manifest's `update.feed`
//!   check (`manifest/fixtures.rs`, through `berth check`), and at run
//!   time the download side's rule on every hop (`fetch.rs`);
//! - each rule of the download side on its own: `fetch.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::feed::{FeedServer, Publisher};
use super::release::publisher_backend;
use crate::control::home::{Home, Out, one_line};
use crate::fetch::server::{Reply, Server};
use crate::fetch::tls::Ca;

/// What `berth update` must refuse: how the served copy is tampered with,
/// and what the one line must say.
struct Case {
    name: &'static str,
    tamper: fn(&Feed),
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "a manifest without a signature",
        tamper: |f| std::fs::remove_file(f.release("demo.yaml.minisig")).unwrap(),
        says: "demo.yaml.minisig: the server answered 404",
    },
    Case {
        name: "a manifest changed after signing",
        tamper: |f| {
            // Same size: the signature is what tells.
            let manifest = f.release("demo.yaml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(&manifest, text.replace("name: Demo", "name: Evil")).unwrap();
        },
        says: "demo.yaml: not trusted: its signature does not match demo.yaml",
    },
    Case {
        name: "a manifest signed by an untrusted key",
        tamper: |f| sign(&f.release("demo.yaml"), &f.stranger),
        says: "demo.yaml: not trusted: its signature signed by key",
    },
    Case {
        name: "a manifest for another id, signed",
        tamper: |f| {
            let manifest = f.release("demo.yaml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(&manifest, text.replace("id: demo", "id: other")).unwrap();
            sign(&manifest, &f.key);
            f.resign_index();
        },
        says: "a manifest for other, not demo",
    },
    Case {
        name: "an executable of another digest",
        tamper: |f| {
            let exe = f.release("run.sh");
            let mut bytes = std::fs::read(&exe).unwrap();
            bytes[0] ^= 1;
            std::fs::write(&exe, bytes).unwrap();
        },
        says: "run.sh: SHA-256 is",
    },
    Case {
        name: "an executable shorter than signed",
        tamper: |f| {
            let exe = f.release("run.sh");
            let bytes = std::fs::read(&exe).unwrap();
            std::fs::write(&exe, &bytes[..bytes.len() - 1]).unwrap();
        },
        says: "bytes, expected",
    },
    Case {
        name: "a body larger than announced",
        tamper: |f| append(&f.release("run.sh"), &[b'#'; 100_000]),
        says: "run.sh: larger than",
    },
    Case {
        name: "a files archive of another digest",
        tamper: |f| {
            let tar = f.release("files.tar");
            let mut bytes = std::fs::read(&tar).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 1;
            std::fs::write(&tar, bytes).unwrap();
        },
        says: "files.tar: SHA-256 is",
    },
];

/// The pristine feed, the copy being served, and the keys to sign with.
struct Feed {
    pristine: PathBuf,
    served: PathBuf,
    /// The publisher's secret key (trusted).
    key: PathBuf,
    /// Another key, not trusted.
    stranger: PathBuf,
}

impl Feed {
    fn release(&self, name: &str) -> PathBuf {
        let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
        self.served
            .join(format!("demo/1.1.0/{platform}"))
            .join(name)
    }

    /// Serves a fresh copy of the pristine feed.
    fn reset(&self) {
        let _ = std::fs::remove_dir_all(&self.served);
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&self.pristine)
            .arg(&self.served)
            .status()
            .unwrap();
        assert!(copied.success());
    }

    /// The index naming the served manifest's size and digest, signed by
    /// the publisher: a publisher's mistake, not a forgery.
    fn resign_index(&self) {
        let index = self.served.join("index.json");
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
        let manifest = self.release("demo.yaml");
        let entry = &mut json["releases"][0]["manifest"];
        entry["size"] = std::fs::metadata(&manifest).unwrap().len().into();
        entry["sha256"] = berth::integrity::hash_file(&manifest)
            .unwrap()
            .to_string()
            .into();
        std::fs::write(&index, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        sign(&index, &self.key);
    }
}

fn append(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    f.write_all(bytes).unwrap();
}

/// Writes `file.minisig` by the secret key `key` (a `berth keygen` key).
fn sign(file: &Path, key: &Path) {
    let secret = minisign::SecretKeyBox::from_string(&std::fs::read_to_string(key).unwrap())
        .unwrap()
        .into_unencrypted_secret_key()
        .unwrap();
    let bytes = std::fs::read(file).unwrap();
    let signature = minisign::sign(None, &secret, &bytes[..], None, None).unwrap();
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    std::fs::write(name, signature.to_string()).unwrap();
}

/// Every path below the updates folder (sorted), to see that nothing
/// changed.
fn listing(home: &Home) -> Vec<PathBuf> {
    let dir = home.path().join("data/berth/updates");
    let mut paths: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .map(|e| e.unwrap().path().to_owned())
        .collect();
    paths.sort();
    paths
}

fn update(home: &Home, id: &str) -> Out {
    home.run(&["update", id])
}

/// The refusal `out` is one line that says `says`.
#[track_caller]
fn refused(out: &Out, says: &str) {
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains(says), "{out:?}");
}

#[test]
fn each_untrusted_byte_is_refused_in_one_line_and_changes_nothing() {
    let home = Home::new();
    let publisher = Publisher::new(&home);
    publisher.release(&home, &publisher_backend(&home, "1.1.0"));
    let keys = home.path().join("keys");
    let out = home.run(&["keygen", "stranger", "--dir", keys.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    let feed = Feed {
        pristine: publisher.feed.clone(),
        served: home.path().join("served"),
        key: publisher.key.clone(),
        stranger: keys.join("stranger.key"),
    };
    feed.reset();
    let server = FeedServer::serve(&feed.served);
    home.backend(
        "demo",
        "exec sleep 30",
        &format!("update:\n  feed: {}\n", server.url()),
    );
    let _launcher = home.launch();
    assert_eq!(home.run(&["start", "demo"]).code(), 0);
    let before = home.status_of("demo");
    assert_eq!(before["version"], "1.0.0");
    let pid = before["pid"].as_u64().unwrap();
    let files = listing(&home);

    for case in CASES {
        feed.reset();
        (case.tamper)(&feed);
        eprintln!("case: {}", case.name);
        refused(&update(&home, "demo"), case.says);
        assert_eq!(
            listing(&home),
            files,
            "{}: the updates folder changed",
            case.name
        );
        let now = home.status_of("demo");
        for field in ["state", "version", "pid"] {
            assert_eq!(now[field], before[field], "{}: {field}", case.name);
        }
        assert!(crate::control::home::alive(pid), "{}", case.name);
        assert!(
            now["update"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(case.says)),
            "{}: {now}",
            case.name
        );
    }
}

/// A launcher that trusts the test CA (`SSL_CERT_FILE`) and nothing else.
fn launch_with_ca(home: &Home, ca: &Path) -> crate::control::home::Launcher {
    home.launch_with_cmd(&[], |cmd| {
        cmd.env("SSL_CERT_FILE", ca).env_remove("SSL_CERT_DIR");
        for proxy in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env_remove(proxy);
        }
    })
}

#[test]
fn https_feeds_are_verified_for_real_and_never_redirected_to_http() {
    let home = Home::new();
    let dir = home.path().join("ca");
    std::fs::create_dir(&dir).unwrap();
    let ca = Ca::new("berth test CA");
    let pem = ca.write_pem(&dir, "ca.pem");
    let publisher = Publisher::new(&home);
    publisher.release(&home, &publisher_backend(&home, "1.1.0"));

    // The feed over https, its certificate from the CA the launcher trusts.
    let good = FeedServer::https(&publisher.feed, ca.server(&["127.0.0.1"]));
    // A certificate from a CA nobody trusts.
    let stranger = Ca::new("another CA");
    let wrong = Server::https(stranger.server(&["127.0.0.1"]), |_| Reply::Status(404));
    // Every request sent on to the same feed over plain http.
    let plain = FeedServer::serve(&publisher.feed);
    let base = plain.url();
    let downgrade = Server::https(ca.server(&["127.0.0.1"]), move |path| {
        Reply::Redirect(format!("{}{}", base, path.trim_start_matches('/')))
    });
    for (id, url) in [
        ("demo", good.url()),
        ("wrong", wrong.url("/").to_string()),
        ("downgrade", downgrade.url("/").to_string()),
    ] {
        home.backend(id, "exec sleep 30", &format!("update:\n  feed: {url}\n"));
    }
    let _launcher = launch_with_ca(&home, &pem);

    let out = update(&home, "wrong");
    refused(&out, &format!("{}index.json.minisig: ", wrong.url("/")));
    assert!(
        out.stderr().to_lowercase().contains("certificate"),
        "{out:?}"
    );
    let out = update(&home, "downgrade");
    refused(&out, "refused: https never redirects to http");
    let updates = home.path().join("data/berth/updates");
    for id in ["wrong", "downgrade"] {
        assert!(!updates.join(id).exists() && !updates.join(format!("{id}.yaml")).exists());
    }

    let out = update(&home, "demo");
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(home.status_of("demo")["version"], "1.1.0");
}
