//! The updates folder read with the backends folders (DESIGN.md "Updates"):
//! through the link, signed always, in force only beside its id's own
//! manifest with an `update` section, winning by the same-id rule.

use super::*;
use crate::registry::Standing;
use crate::trust::Policy;
use crate::update::install::Updates;

const FEED: &str = "http://127.0.0.1:9/feed/";

fn manifest(version: &str, update: bool) -> String {
    let update = if update {
        format!("update:\n  feed: {FEED}\n")
    } else {
        String::new()
    };
    format!(
        "id: python\nname: Python\nversion: {version}\nexecutable:\n  linux:\n    path: ./backend\n    sha256: {}\n{update}",
        "0".repeat(64)
    )
}

/// A backends folder, an updates folder, and a key trusted without
/// signatures being required.
struct Fx {
    _tmp: tempfile::TempDir,
    backends: PathBuf,
    updates: Updates,
    key: minisign::SecretKey,
    trust: Arc<Trust>,
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let backends = tmp.path().join("backends");
        let trusted = tmp.path().join("trusted");
        std::fs::create_dir_all(&backends).unwrap();
        std::fs::create_dir_all(&trusted).unwrap();
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        std::fs::write(
            trusted.join("acme.pub"),
            pair.pk.to_box().unwrap().to_string(),
        )
        .unwrap();
        let trust = Trust::load(Policy {
            require: false,
            dirs: vec![trusted],
        });
        Self {
            updates: Updates::at(tmp.path().join("updates")),
            backends,
            key: pair.sk,
            trust: Arc::new(trust),
            _tmp: tmp,
        }
    }

    fn state(&self) -> FolderState {
        FolderState::new(vec![self.backends.clone()], self.backends.join("res"))
            .with_trust(self.trust.clone())
            .with_updates(Some(self.updates.dir().to_path_buf()))
    }

    /// [`Fx::state`] after its first full read.
    fn loaded(&self) -> FolderState {
        let mut s = self.state();
        s.reload(&Scope::Full { force: false });
        s
    }

    fn ship(&self, text: &str) {
        std::fs::write(self.backends.join("python.yaml"), text).unwrap();
        settle();
    }

    fn signature(&self, key: &minisign::SecretKey, text: &str) -> String {
        minisign::sign(None, key, text.as_bytes(), None, None)
            .unwrap()
            .to_string()
    }

    /// Installs `version` through the updates folder's own API; `sign`:
    /// by the trusted key, else none.
    fn install(&self, version: &str, signature: Option<String>) {
        let id = BackendId::new("python").unwrap();
        let staging = self.updates.stage(&id).unwrap();
        let text = manifest(version, false);
        std::fs::write(staging.path().join("python.yaml"), &text).unwrap();
        if let Some(sig) = signature {
            std::fs::write(staging.path().join("python.yaml.minisig"), sig).unwrap();
        }
        self.updates
            .publish(staging, &version.parse().unwrap())
            .unwrap();
        settle();
    }

    fn install_signed(&self, version: &str) {
        let sig = self.signature(&self.key, &manifest(version, false));
        self.install(version, Some(sig));
    }

    fn link(&self) -> PathBuf {
        self.updates.dir().join("python.yaml")
    }

    fn standing(&self, s: &FolderState, file: &Path) -> Standing {
        let entry = s.catalog().entries.iter().find(|e| e.file == file);
        entry.unwrap().standing.clone()
    }
}

/// The version of python in force.
fn in_force(s: &FolderState) -> String {
    s.catalog().winner("python").unwrap().version.to_string()
}

fn settle() {
    std::thread::sleep(RACY_WINDOW + Duration::from_millis(20));
}

#[test]
fn an_installed_update_wins_with_its_own_folder_and_the_shipped_update_section() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", true));
    fx.install_signed("1.1.0");
    let s = fx.loaded();
    assert_eq!(s.problems(), []);

    let winner = s.catalog().winner("python").unwrap();
    assert_eq!(winner.version.to_string(), "1.1.0");
    assert_eq!(
        winner.file,
        fx.link(),
        "the file is the one the folder lists"
    );
    assert_eq!(winner.signed_by.as_deref(), Some("acme"));
    // Relative paths resolve in the version's real folder, not beside the link.
    let real = std::fs::canonicalize(fx.updates.dir()).unwrap();
    assert_eq!(
        winner.executable.as_ref().unwrap().candidates,
        [real.join("python/1.1.0/backend")]
    );
    assert_eq!(winner.workdir, real.join("python/1.1.0"));
    // The shipped manifest's `update` governs, and says what it shipped.
    let update = winner.update.as_ref().unwrap();
    assert_eq!(update.feed.as_str(), FEED);
    assert_eq!(update.shipped, Some("1.0.0".parse().unwrap()));
    assert_eq!(
        fx.standing(&s, &fx.backends.join("python.yaml")),
        Standing::Superseded { by: fx.link() }
    );
}

#[test]
fn an_installed_update_must_be_signed_by_a_trusted_key_even_when_signatures_are_not_required() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", true));
    fx.install("1.1.0", None);
    let mut s = fx.loaded();
    let shipped = s.catalog().winner("python").unwrap();
    assert_eq!(shipped.version.to_string(), "1.0.0");
    assert_eq!(shipped.update.as_ref().unwrap().shipped, None);
    let Standing::Untrusted { reason } = fx.standing(&s, &fx.link()) else {
        panic!("{:?}", s.catalog());
    };
    assert!(
        reason.ends_with(
            "python/1.1.0/python.yaml: not signed (python.yaml.minisig is missing) and an installed update must be signed by a trusted key"
        ),
        "{reason}"
    );

    // Signed, but by a key nobody trusts: untrusted too.
    let stranger = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    fx.install(
        "1.2.0",
        Some(fx.signature(&stranger.sk, &manifest("1.2.0", false))),
    );
    s.reload(&paths_of(&fx.link()));
    assert!(matches!(
        fx.standing(&s, &fx.link()),
        Standing::Untrusted { .. }
    ));
    assert_eq!(in_force(&s), "1.0.0");
}

fn paths_of(path: &Path) -> Scope {
    Scope::Paths(BTreeSet::from([path.to_path_buf()]))
}

#[test]
fn an_installed_update_counts_only_beside_its_own_manifest_with_an_update_section() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", false));
    fx.install_signed("1.1.0");
    let mut s = fx.loaded();
    let shipped = fx.backends.join("python.yaml");
    let not_in_force = format!(
        "{}: not in force: no manifest of python with an update section in the backends folders",
        fx.link().display()
    );
    // The shipped definition is in force; the update says why it is not.
    assert_eq!(
        s.catalog().winner("python").unwrap().file,
        shipped,
        "without an update section the shipped definition wins"
    );
    assert_eq!(
        fx.standing(&s, &fx.link()),
        Standing::Incompatible {
            reason: format!("{not_in_force} ({} has none)", shipped.display())
        }
    );

    // The section comes back (one file's change): the update counts again.
    fx.ship(&manifest("1.0.0", true));
    s.reload(&paths_of(&shipped));
    assert_eq!(s.catalog().winner("python").unwrap().file, fx.link());

    // No own manifest at all: nothing of that id is in force.
    std::fs::remove_file(&shipped).unwrap();
    s.reload(&paths_of(&shipped));
    assert!(s.catalog().winner("python").is_none());
    assert_eq!(
        fx.standing(&s, &fx.link()),
        Standing::Incompatible {
            reason: not_in_force
        }
    );
}

#[test]
fn a_shipped_manifest_of_the_same_or_a_higher_version_wins_over_the_installed_update() {
    let fx = Fx::new();
    fx.install_signed("1.1.0");
    let shipped = fx.backends.join("python.yaml");
    for version in ["1.1.0", "1.2.0"] {
        fx.ship(&manifest(version, true));
        let s = fx.loaded();
        let winner = s.catalog().winner("python").unwrap();
        assert_eq!(
            (&winner.file, winner.version.to_string()),
            (&shipped, version.into())
        );
        assert_eq!(winner.update.as_ref().unwrap().shipped, None);
        assert_eq!(
            fx.standing(&s, &fx.link()),
            Standing::Superseded {
                by: shipped.clone()
            }
        );
        assert!(s.catalog().entries.iter().all(|e| e.error.is_none()));
    }
}

#[test]
fn moving_the_link_is_one_change_of_that_id() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", true));
    fx.install_signed("1.1.0");
    let mut s = fx.loaded();
    fx.install_signed("1.2.0");
    let r = s.reload(&paths_of(&fx.link()));
    assert_eq!((r.reread, r.changed), (1, true));
    let winner = s.catalog().winner("python").unwrap();
    assert_eq!(winner.version.to_string(), "1.2.0");
    assert!(winner.executable.as_ref().unwrap().candidates[0].ends_with("python/1.2.0/backend"));

    // Rolled back to the shipped version: the link is gone.
    fx.updates
        .rollback(&BackendId::new("python").unwrap())
        .unwrap();
    fx.updates
        .rollback(&BackendId::new("python").unwrap())
        .unwrap();
    let r = s.reload(&paths_of(&fx.link()));
    assert_eq!((r.dropped, r.changed), (1, true));
    assert_eq!(in_force(&s), "1.0.0");
}

#[test]
fn a_missing_updates_folder_is_no_problem_and_is_read_once_it_exists() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", true));
    let mut s = fx.loaded();
    assert_eq!(s.problems(), []);
    fx.install_signed("1.1.0");
    s.reload(&Scope::Full { force: false });
    assert_eq!(in_force(&s), "1.1.0");
}

#[test]
fn an_installed_update_is_named_after_its_id() {
    let fx = Fx::new();
    fx.ship(&manifest("1.0.0", true));
    fx.install_signed("1.1.0");
    let other = fx.updates.dir().join("other.yaml");
    std::fs::rename(fx.link(), &other).unwrap();
    settle();
    let s = fx.loaded();
    let entry = s
        .catalog()
        .entries
        .iter()
        .find(|e| e.file == other)
        .unwrap();
    assert_eq!(entry.standing, Standing::Invalid);
    let error = entry.error.as_deref().unwrap();
    assert!(
        error.ends_with(
            "python/1.1.0/python.yaml: id python in the updates folder's other.yaml: an installed update is named after its id"
        ),
        "{error}"
    );
    assert_eq!(in_force(&s), "1.0.0");
}
