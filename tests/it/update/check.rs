//! `berth update ID --check` against a real web server on 127.0.0.1
//! (Python's http.server) serving a folder made by `berth release`.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::release::{publisher_backend, publisher_key, release};
use crate::control::home::{Home, Out, one_line, wait_until};

/// `python3 -m http.server` serving `dir` on a free loopback port.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn serve(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(15), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "http.server never served"
        );
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The home's backend `demo` at 1.0.0 whose feed is `feed`.
fn installed(home: &Home, feed: &str) {
    home.backend(
        "demo",
        "exec sleep 30",
        &format!("update:\n  feed: {feed}\n"),
    );
}

fn check(home: &Home) -> Out {
    home.run(&[
        "update",
        "demo",
        "--check",
        "--backends",
        home.backends().to_str().unwrap(),
    ])
}

fn trust_publisher(home: &Home, key: &Path) {
    let trusted = home.path().join("config/berth/trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    std::fs::copy(key.with_extension("pub"), trusted.join("publisher.pub")).unwrap();
}

/// The publisher's 1.1.0 released into `feed/` and served; returns the
/// key, the folder and its server.
fn published(home: &Home) -> (std::path::PathBuf, std::path::PathBuf, Server) {
    let key = publisher_key(home);
    let feed = home.path().join("feed");
    let out = release(home, &publisher_backend(home, "1.1.0"), &key, &feed);
    assert_eq!(out.code(), 0, "{out:?}");
    let server = Server::serve(&feed);
    (key, feed, server)
}

/// [`published`], its key trusted and `demo` 1.0.0 following it.
fn following(home: &Home) -> (std::path::PathBuf, std::path::PathBuf, Server) {
    let (key, feed, server) = published(home);
    trust_publisher(home, &key);
    installed(home, &server.url());
    (key, feed, server)
}

#[test]
fn the_feed_offers_a_higher_version_then_none() {
    let home = Home::new();
    let _feed = following(&home);
    let out = check(&home);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: 1.1.0 available (installed 1.0.0)\n");

    // Installed at the feed's latest: up to date, exit 0.
    let manifest = home.backends().join("demo.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("version: 1.0.0", "version: 1.1.0")).unwrap();
    let out = check(&home);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .starts_with("demo: up to date (installed 1.1.0"),
        "{out:?}"
    );
}

#[test]
fn an_index_without_a_trusted_signature_is_refused_in_one_line() {
    let home = Home::new();
    let (key, feed, server) = published(&home);
    installed(&home, &server.url());

    // The publisher's key is not trusted here.
    let out = check(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("index.json: not trusted"), "{out:?}");

    // Trusted, but the index was changed after signing.
    trust_publisher(&home, &key);
    let index = feed.join("index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace("1.1.0", "9.9.9")).unwrap();
    let out = check(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr().contains("does not match index.json"),
        "{out:?}"
    );

    // No signature at all.
    std::fs::remove_file(feed.join("index.json.minisig")).unwrap();
    let out = check(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("index.json.minisig"), "{out:?}");
    assert!(out.stderr().contains("404"), "{out:?}");
}

#[test]
fn a_backend_without_an_update_section_has_no_feed_to_check() {
    let home = Home::new();
    home.backend("demo", "exec sleep 30", "");
    let out = check(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stderr()
            .contains("demo has no update section: no feed to check"),
        "{out:?}"
    );
}

#[test]
fn a_version_rolled_back_is_not_offered_again_but_a_higher_one_is() {
    let home = Home::new();
    let (key, feed, _server) = following(&home);
    // 1.1.0 failed its probation here: the list the job keeps.
    let bad = home.path().join("data/berth/updates/demo");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("bad"), "1.1.0\n").unwrap();
    let out = check(&home);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stdout()
            .starts_with("demo: up to date (installed 1.0.0")
            && out
                .stdout()
                .contains("not offered, rolled back before: 1.1.0"),
        "{out:?}"
    );

    // The publisher fixes it in 1.2.0.
    let out = release(&home, &publisher_backend(&home, "1.2.0"), &key, &feed);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = check(&home);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: 1.2.0 available (installed 1.0.0)\n");
}
