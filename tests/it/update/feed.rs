//! The update tests' shared fixtures (issue #27): a release feed made by the
//! real `berth release` with a test key that the test home trusts, served
//! from its folder by a static http server on 127.0.0.1 that can also stall
//! or dribble; and the real PyInstaller backend at two versions, 1.0.0
//! (`python/dist/backend`, the onefile build) and 1.1.0
//! (`python/dist-1.1.0/backend/`, `python/build.sh --version 1.1.0`, onedir).
//! Shared so the update tests make one of each instead of their own.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::release::{publisher_key, release};
use crate::control::home::{Home, Out};
use crate::fetch::server::{Reply, Server};

/// How the server answers a request for a release's artifact (its
/// executable or `files.tar`). The index, manifests and signatures are
/// always served normally, so a check passes and the download hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Accepts, reads the request and sends nothing.
    Stall,
    /// Headers with the file's length, then one byte a second.
    Dribble,
}

/// A static http server on 127.0.0.1 over a folder; stops when dropped.
pub struct FeedServer {
    server: Server,
    mode: Arc<Mutex<Mode>>,
}

impl FeedServer {
    /// Serves the files under `dir` (read at each request, so a folder
    /// changed later is served as it is then); 404 for anything else.
    pub fn serve(dir: &Path) -> Self {
        Self::start(dir, None)
    }

    /// [`FeedServer::serve`] over https, presenting `tls`'s certificate
    /// (from a test CA: `crate::fetch::tls`).
    pub fn https(dir: &Path, tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start(dir, Some(tls))
    }

    fn start(dir: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let (root, current) = (dir.to_owned(), mode.clone());
        let route = move |path: &str| {
            let path = path.split('?').next().unwrap_or_default();
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|part| part == "..") {
                return Reply::Status(403);
            }
            let Ok(body) = std::fs::read(root.join(rel)) else {
                return Reply::Status(404);
            };
            let artifact = ![".json", ".minisig", ".yaml"]
                .iter()
                .any(|ext| rel.ends_with(ext));
            match *current.lock().unwrap() {
                Mode::Stall if artifact => Reply::Silent,
                Mode::Dribble if artifact => Reply::Dribble {
                    size: body.len() as u64,
                    every: Duration::from_secs(1),
                },
                _ => Reply::Body(body),
            }
        };
        let server = match tls {
            None => Server::http(route),
            Some(tls) => Server::https(tls, route),
        };
        Self { server, mode }
    }

    /// The feed's URL, `http(s)://127.0.0.1:PORT/` (a folder URL, as a
    /// manifest's `update.feed` names it).
    pub fn url(&self) -> String {
        self.server.url("/").to_string()
    }

    /// How artifacts are served from now on.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// A publisher's key (`berth keygen`) trusted in a test home, and the
/// folder `home/feed` it releases into.
pub struct Publisher {
    pub key: PathBuf,
    pub feed: PathBuf,
}

impl Publisher {
    /// A publisher whose key `home` trusts.
    pub fn new(home: &Home) -> Self {
        let publisher = Self::untrusted(home);
        publisher.trust(home);
        publisher
    }

    /// A publisher whose key `home` does not trust (yet).
    pub fn untrusted(home: &Home) -> Self {
        Self {
            key: publisher_key(home),
            feed: home.path().join("feed"),
        }
    }

    /// Trusts the publisher's public key in `home`'s trusted keys.
    pub fn trust(&self, home: &Home) {
        let trusted = home.path().join("config/berth/trusted");
        std::fs::create_dir_all(&trusted).unwrap();
        std::fs::copy(
            self.key.with_extension("pub"),
            trusted.join("publisher.pub"),
        )
        .unwrap();
    }

    /// `berth release MANIFEST --key KEY --out FEED`, which must succeed.
    pub fn release(&self, home: &Home, manifest: &Path) {
        let out = release(home, manifest, &self.key, &self.feed);
        assert_eq!(out.code(), 0, "berth release: {out:?}");
    }
}

/// A trusted publisher's `demo` 1.1.0 (the script of
/// [`super::release::publisher_backend`]) released and served.
pub fn demo_1_1_0_served(home: &Home) -> FeedServer {
    let publisher = Publisher::new(home);
    publisher.release(home, &super::release::publisher_backend(home, "1.1.0"));
    FeedServer::serve(&publisher.feed)
}

/// `demo` 1.0.0 (`exec sleep 30`) in `home`, following a served feed that
/// offers the publisher's 1.1.0, with `extra` lines (indented) in its
/// `update` section.
pub fn demo_following(home: &Home, extra: &str) -> FeedServer {
    let server = demo_1_1_0_served(home);
    home.backend(
        "demo",
        "exec sleep 30",
        &format!("update:\n  feed: {}\n{extra}", server.url()),
    );
    server
}

/// The onedir build of the backend at 1.1.0: its folder, holding `backend`
/// and `_internal/` (`None`: absent, and the caller skips).
pub fn pyinstaller_1_1_0() -> Option<PathBuf> {
    let exe = crate::util::pyinstaller_build(
        "python/dist-1.1.0/backend/backend",
        "python/build.sh --version 1.1.0",
    )?;
    Some(exe.parent().unwrap().to_owned())
}

/// What both versions' manifests share: ready on the backend's ready line
/// (which holds its port; `GET /api/status` there says its version), a
/// quick stop, then `extra` (an `update` section).
fn python_manifest(version: &str, executable: &str, extra: &str) -> String {
    format!(
        "id: python\nname: Python\nversion: {version}\nexecutable:\n  linux:\n{executable}args: [\"--port\", \"0\"]\nready: {{ stdout_json: {{ status: ready }}, timeout: 30s }}\nstop: {{ timeout: 5s }}\n{extra}"
    )
}

/// The backend `python` at 1.0.0 in `home`'s backends folder: the real
/// onefile build, pinned, with `extra` added (its `update` section).
/// `false`: the build is absent and the caller skips.
pub fn python_1_0_0(home: &Home, extra: &str) -> bool {
    let Some(exe) = crate::util::pyinstaller_backend() else {
        return false;
    };
    let sha = berth::integrity::hash_file(&exe).unwrap();
    let executable = format!("    path: {}\n    sha256: {sha}\n", exe.display());
    std::fs::write(
        home.backends().join("python.yaml"),
        python_manifest("1.0.0", &executable, extra),
    )
    .unwrap();
    true
}

/// Releases the real onedir build at 1.1.0 (executable and `_internal`,
/// pinned) into `publisher`'s feed, its manifest with `extra` added.
/// `false`: the build is absent and the caller skips.
pub fn release_python_1_1_0(home: &Home, publisher: &Publisher, extra: &str) -> bool {
    let Some(dir) = pyinstaller_1_1_0() else {
        return false;
    };
    let exe = dir.join("backend");
    let sha = berth::integrity::hash_file(&exe).unwrap();
    let tree = berth::tree::digest(&dir.join("_internal")).unwrap();
    let executable = format!(
        "    path: {}\n    sha256: {sha}\n    files: {{ dir: _internal, sha256: {tree} }}\n",
        exe.display()
    );
    let src = home.path().join("src-1.1.0");
    std::fs::create_dir_all(&src).unwrap();
    let manifest = src.join("python.yaml");
    std::fs::write(&manifest, python_manifest("1.1.0", &executable, extra)).unwrap();
    publisher.release(home, &manifest);
    true
}

/// The version the backend `id` says it is: `GET /api/status` on the port
/// of its ready line, as `status --json` shows it.
pub fn served_version(home: &Home, id: &str) -> String {
    let status = home.status_of(id);
    let port = status["ready_json"]["port"]
        .as_u64()
        .unwrap_or_else(|| panic!("{id} has no port in its ready line: {status}"));
    let body = http_get(&format!("127.0.0.1:{port}"), "/api/status");
    let json: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{id}'s /api/status is not JSON ({e}): {body}"));
    json["version"].as_str().unwrap_or_default().to_owned()
}

/// Waits (at most a minute) for a `berth` spawned with piped output, such
/// as a `berth update` left running while the test looks elsewhere.
pub fn finished(mut child: Child) -> Out {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "berth never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    Out(child.wait_with_output().unwrap())
}

/// A plain HTTP/1.0 GET: the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    match reply.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_owned(),
        None => panic!("no HTTP reply from {addr}{path}: {reply}"),
    }
}

/// The modes others rely on (a stall test that never stalled would pass
/// for the wrong reason): the index is served whatever the mode, an
/// artifact stalls with nothing sent, or comes a byte a second.
#[test]
fn the_feed_server_stalls_and_dribbles_only_artifacts() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.json"), "{}").unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/backend"), vec![7u8; 4096]).unwrap();
    let server = FeedServer::serve(dir.path());
    let addr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let request = |path: &str| {
        let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
        write!(tcp, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        tcp
    };
    assert_eq!(http_get(&addr, "/a/backend").len(), 4096);
    assert_eq!(http_get(&addr, "/missing"), "");

    server.set_mode(Mode::Stall);
    assert_eq!(http_get(&addr, "/index.json"), "{}");
    let mut stalled = request("/a/backend");
    stalled
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        stalled.read(&mut byte).is_err(),
        "a stalled server sent something"
    );

    server.set_mode(Mode::Dribble);
    let mut dribbled = BufReader::new(request("/a/backend"));
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        dribbled.read_line(&mut line).unwrap();
    }
    dribbled.read_exact(&mut byte).unwrap();
    let first = Instant::now();
    dribbled.read_exact(&mut byte).unwrap();
    assert!(
        first.elapsed() > Duration::from_millis(700),
        "{:?}",
        first.elapsed()
    );
}
