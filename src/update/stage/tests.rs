use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;
use crate::update::feed::Index;

/// A feed served from a folder (declared fake: the network side is the
/// download module's, tested against real servers there). `download`
/// keeps that side's contract: the size and digest are checked.
struct Folder(PathBuf);

impl Folder {
    fn file(&self, url: &Url) -> Result<Vec<u8>, String> {
        let rel = url.path().trim_start_matches("/feed/");
        fs::read(self.0.join(rel)).map_err(|_| format!("{url}: the server answered 404"))
    }
}

impl Get for Folder {
    async fn get(&self, url: &Url, max_bytes: u64) -> Result<Vec<u8>, String> {
        let bytes = self.file(url)?;
        if bytes.len() as u64 > max_bytes {
            return Err(format!("{url}: larger than {max_bytes} bytes: cut"));
        }
        Ok(bytes)
    }
}

impl Download for Folder {
    async fn download(
        &self,
        url: &Url,
        size: u64,
        sha256: &Digest,
        dest: &Path,
    ) -> Result<(), String> {
        let bytes = self.file(url)?;
        let got = crate::integrity::hash_reader(&bytes[..]).unwrap();
        if bytes.len() as u64 != size || got != *sha256 {
            return Err(format!(
                "{url}: SHA-256 is {got}, the signed one is {sha256}"
            ));
        }
        fs::write(dest, bytes).map_err(|e| e.to_string())
    }
}

struct World {
    tmp: tempfile::TempDir,
}

impl World {
    /// A publisher's onedir-like backend `demo` at `version`, released
    /// with the real `berth release` into `feed/`.
    fn new(version: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let world = Self { tmp };
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        fs::write(
            world.path("acme.key"),
            pair.sk.to_box(None).unwrap().to_string(),
        )
        .unwrap();
        fs::create_dir(world.path("trusted")).unwrap();
        fs::write(
            world.path("trusted/acme.pub"),
            pair.pk.to_box().unwrap().to_string(),
        )
        .unwrap();
        world.release(version);
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Publishes `version` as `berth release` lays it out (the command's
    /// own tests hold it to that layout; it is in `cli`, above this module).
    fn release(&self, version: &str) {
        let platform = crate::manifest::platform::Platform::current().keys()[0].clone();
        let rel = format!("demo/{version}/{platform}");
        let dir = self.path(&format!("feed/{rel}"));
        let lib = self.path("src/lib");
        fs::create_dir_all(&lib).unwrap();
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("run.sh");
        fs::write(&exe, format!("#!/bin/sh\necho {version}\n")).unwrap();
        fs::write(lib.join("data.txt"), version).unwrap();
        fs::set_permissions(lib.join("data.txt"), fs::Permissions::from_mode(0o640)).unwrap();
        let _ = fs::remove_file(lib.join("link"));
        std::os::unix::fs::symlink("data.txt", lib.join("link")).unwrap();
        let mut tar = tar::Builder::new(fs::File::create(dir.join(FILES_TAR)).unwrap());
        tar.follow_symlinks(false);
        tar.append_dir_all("", &lib).unwrap();
        tar.into_inner().unwrap();
        let sha = crate::integrity::hash_file(&exe).unwrap();
        let tree = crate::tree::digest(&lib).unwrap();
        let manifest = dir.join("demo.yaml");
        fs::write(
            &manifest,
            format!("id: demo\nname: Demo\nversion: {version}\nexecutable:\n  {platform}:\n    path: run.sh\n    sha256: {sha}\n    files: {{ dir: lib, sha256: {tree} }}\n"),
        )
        .unwrap();
        let key = minisign::SecretKeyBox::from_string(
            &fs::read_to_string(self.path("acme.key")).unwrap(),
        )
        .unwrap()
        .into_unencrypted_secret_key()
        .unwrap();
        let signature =
            minisign::sign(None, &key, &fs::read(&manifest).unwrap()[..], None, None).unwrap();
        fs::write(dir.join("demo.yaml.minisig"), signature.to_string()).unwrap();
        let artifact = |name: &str| crate::update::feed::Artifact {
            path: format!("{rel}/{name}"),
            size: fs::metadata(dir.join(name)).unwrap().len(),
            sha256: crate::integrity::hash_file(&dir.join(name))
                .unwrap()
                .to_string(),
        };
        let mut index = Index::new();
        index.add(Release {
            id: "demo".into(),
            version: version.parse().unwrap(),
            platform,
            manifest: artifact("demo.yaml"),
            executable: artifact("run.sh"),
            files: Some(artifact(FILES_TAR)),
        });
        fs::write(self.path("feed/index.json"), index.to_bytes()).unwrap();
    }

    fn trust(&self) -> Trust {
        Trust::load(crate::trust::Policy {
            require: true,
            dirs: vec![self.path("trusted")],
        })
    }

    fn updates(&self) -> Updates {
        Updates::at(self.path("updates"))
    }

    fn offered(&self, version: &str) -> Release {
        let index = Index::parse(&fs::read(self.path("feed/index.json")).unwrap()).unwrap();
        let platform = crate::manifest::platform::Platform::current().keys()[0].clone();
        index
            .releases
            .into_iter()
            .find(|r| r.version.to_string() == version && r.platform == platform)
            .unwrap()
    }

    async fn stage(
        &self,
        installed: &str,
        offered: &str,
        trust: &Trust,
    ) -> Result<Staging, StageError> {
        stage(
            &self.updates(),
            Wanted {
                id: &BackendId::new("demo").unwrap(),
                installed: &installed.parse().unwrap(),
                feed: &Url::parse("http://127.0.0.1:1/feed/").unwrap(),
                release: &self.offered(offered),
            },
            trust,
            &Places::from(PathBuf::from("/nonexistent")),
            &Folder(self.path("feed")),
        )
        .await
    }

    /// Nothing but the updates folder's own (empty) folder for demo.
    fn nothing_staged(&self) -> bool {
        fs::read_dir(self.path("updates/demo")).map_or(true, |mut d| d.next().is_none())
    }
}

#[tokio::test]
async fn a_release_from_the_feed_is_installed_whole_and_verifies() {
    let world = World::new("1.1.0");
    let trust = world.trust();
    let staging = world.stage("1.0.0", "1.1.0", &trust).await.unwrap();
    let updates = world.updates();
    updates.publish(staging, &"1.1.0".parse().unwrap()).unwrap();

    // What the registry will read: through the link, the signed manifest
    // with its executable and files folder beside it.
    let link = updates.link(&BackendId::new("demo").unwrap());
    let real = fs::canonicalize(&link).unwrap();
    let bytes = fs::read(&real).unwrap();
    assert_eq!(
        trust.verdict(&real, &bytes),
        crate::trust::Verdict::Signed("acme".into())
    );
    let backend = crate::manifest::parse(&real, &bytes, &PathBuf::from("/x").into()).unwrap();
    let exe = backend.executable.unwrap();
    let path = exe.resolve().unwrap().to_path_buf();
    crate::integrity::verify(&exe.candidates, &exe.sha256).unwrap();
    crate::tree::check(&path, exe.files.as_ref().unwrap()).unwrap();
    let mode = fs::metadata(path.with_file_name("lib/data.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let hidden: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "the archive is not left: {hidden:?}");
}

#[tokio::test]
async fn a_version_not_higher_than_the_installed_one_is_refused() {
    let world = World::new("1.1.0");
    let err = world
        .stage("1.1.0", "1.1.0", &world.trust())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "demo 1.1.0 is not higher than the installed 1.1.0: not installed"
    );
    assert!(world.nothing_staged());
}

#[tokio::test]
async fn a_manifest_signed_by_an_untrusted_key_is_refused() {
    let world = World::new("1.1.0");
    let nobody = Trust::none();
    let err = world
        .stage("1.0.0", "1.1.0", &nobody)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("demo.yaml: not trusted: its signature signed by key"),
        "{err}"
    );
    assert!(world.nothing_staged());
}

#[tokio::test]
async fn an_artifact_that_differs_from_the_signed_digest_is_refused_and_nothing_stays() {
    let world = World::new("1.1.0");
    let platform = crate::manifest::platform::Platform::current().keys()[0].clone();
    let exe = world.path(&format!("feed/demo/1.1.0/{platform}/run.sh"));
    fs::write(&exe, "#!/bin/sh\necho evil\n").unwrap();
    let err = world
        .stage("1.0.0", "1.1.0", &world.trust())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("run.sh: SHA-256 is"), "{err}");
    assert!(world.nothing_staged());
}

#[tokio::test]
async fn a_manifest_for_another_id_is_refused() {
    let world = World::new("1.1.0");
    let err = stage(
        &world.updates(),
        Wanted {
            id: &BackendId::new("other").unwrap(),
            installed: &"1.0.0".parse().unwrap(),
            feed: &Url::parse("http://127.0.0.1:1/feed/").unwrap(),
            release: &world.offered("1.1.0"),
        },
        &world.trust(),
        &Places::from(PathBuf::from("/nonexistent")),
        &Folder(world.path("feed")),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("a manifest for demo, not other: not installed"),
        "{err}"
    );
}
