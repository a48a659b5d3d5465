//! `berth update ID --check` against a real web server on 127.0.0.1
//! serving a folder made by `berth release`.

use super::feed::{FeedServer, Publisher, python_1_0_0, release_python_1_1_0};
use super::release::publisher_backend;
use crate::control::home::{Home, Out, one_line};

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

/// The publisher's 1.1.0 released into its feed and served (the key
/// trusted only once the test says so).
fn published(home: &Home) -> (Publisher, FeedServer) {
    let publisher = Publisher::untrusted(home);
    publisher.release(home, &publisher_backend(home, "1.1.0"));
    let server = FeedServer::serve(&publisher.feed);
    (publisher, server)
}

#[test]
fn the_feed_offers_a_higher_version_then_none() {
    let home = Home::new();
    let (publisher, server) = published(&home);
    publisher.trust(&home);
    installed(&home, &server.url());
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
    let (publisher, server) = published(&home);
    let feed = &publisher.feed;
    installed(&home, &server.url());

    // The publisher's key is not trusted here.
    let out = check(&home);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(one_line(&out.stderr()), "{out:?}");
    assert!(out.stderr().contains("index.json: not trusted"), "{out:?}");

    // Trusted, but the index was changed after signing.
    publisher.trust(&home);
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
fn the_pyinstaller_1_1_0_release_is_offered_to_the_installed_1_0_0() {
    let home = Home::new();
    let publisher = Publisher::new(&home);
    if !release_python_1_1_0(&home, &publisher, "") {
        return;
    }
    let server = FeedServer::serve(&publisher.feed);
    assert!(python_1_0_0(
        &home,
        &format!("update:\n  feed: {}\n", server.url())
    ));
    let out = home.run(&[
        "update",
        "python",
        "--check",
        "--backends",
        home.backends().to_str().unwrap(),
    ]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "python: 1.1.0 available (installed 1.0.0)\n");
}

#[test]
fn a_version_rolled_back_is_not_offered_again_but_a_higher_one_is() {
    let home = Home::new();
    let (publisher, server) = published(&home);
    publisher.trust(&home);
    installed(&home, &server.url());
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
    publisher.release(&home, &publisher_backend(&home, "1.2.0"));
    let out = check(&home);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout(), "demo: 1.2.0 available (installed 1.0.0)\n");
}
