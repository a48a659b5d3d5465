//! The download side of updates (issue #27, points 4 and 7) against real
//! servers on 127.0.0.1: sizes and digests, bodies longer than announced,
//! the http and redirect rules, stalled and dribbling servers, and https
//! verified for real: certificates from a test CA that a process of its own
//! is given through `SSL_CERT_FILE`, a wrong CA and a wrong name refused.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use berth::manifest::Digest;
use berth::update::fetch::{self, FetchError, Fetcher, Limits, Problem};
use sha2::{Digest as _, Sha256};
use url::Url;

use server::{Reply, Server};
use tls::Ca;

pub mod server;
pub mod tls;

/// Stall rules short enough for a test: 1 s, 1 KiB.
fn quick() -> Fetcher {
    Fetcher::new(Limits {
        stall: Duration::from_secs(1),
        min_progress: 1024,
    })
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest(Sha256::digest(bytes).into())
}

/// Bytes that are not all the same, so a digest tells them apart.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn get_reads_a_small_file_and_follows_a_loopback_redirect() {
    let server = Server::http(|path| match path {
        "/index.json" => Reply::Body(b"{\"releases\": []}".to_vec()),
        "/old/index.json" => Reply::Redirect("/index.json".into()),
        _ => Reply::Status(404),
    });
    let body = fetch::get(&server.url("/old/index.json"), 1024)
        .await
        .unwrap();
    assert_eq!(body, b"{\"releases\": []}");

    let missing = server.url("/missing.json");
    let e = fetch::get(&missing, 1024).await.unwrap_err();
    assert!(matches!(e.problem, Problem::Status(404)), "{e}");
    assert_eq!(e.to_string(), format!("{missing}: the server answered 404"));
}

#[tokio::test]
async fn download_writes_exactly_the_signed_bytes() {
    let data = payload(3 << 20);
    let served = data.clone();
    let server = Server::http(move |_| Reply::Body(served.clone()));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backend");
    let size = data.len() as u64;
    fetch::download(&server.url("/1.1.0/backend"), size, &sha256(&data), &dest)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[tokio::test]
async fn a_body_larger_than_announced_is_cut() {
    let data = payload(100_000);
    let (announced, close_delimited) = (data.clone(), data.clone());
    let server = Server::http(move |path| match path {
        // Content-Length says more than the signed size: refused unread.
        "/announced" => Reply::Announced {
            announced: 200_000,
            body: announced.clone(),
        },
        // No Content-Length: read up to the signed size, then cut.
        "/unsized" => Reply::Unsized(close_delimited.clone()),
        _ => Reply::Endless,
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backend");
    let signed = 50_000;
    for path in ["/announced", "/unsized", "/endless"] {
        let url = server.url(path);
        let e = fetch::download(&url, signed, &sha256(&data[..50_000]), &dest)
            .await
            .unwrap_err();
        assert!(
            matches!(e.problem, Problem::TooLarge(50_000)),
            "{path}: {e}"
        );
        assert_eq!(
            e.to_string(),
            format!("{url}: larger than 50000 bytes: cut")
        );
        assert!(!dest.exists(), "{path}: a partial file stayed behind");
    }
    // A small file's bound holds the same way, also against a body that
    // never ends (without the cut this test would not return).
    let e = fetch::get(&server.url("/endless"), 4096).await.unwrap_err();
    assert!(matches!(e.problem, Problem::TooLarge(4096)), "{e}");
    let sent = server.sent.load(Ordering::SeqCst);
    assert!(
        sent < 64 << 20,
        "the endless bodies were not cut: {sent} bytes sent"
    );
}

#[tokio::test]
async fn a_short_body_or_another_digest_is_refused_and_leaves_no_file() {
    let data = payload(100_000);
    let (short, other) = (data[..60_000].to_vec(), payload(100_001)[1..].to_vec());
    let server = Server::http(move |path| match path {
        "/short" => Reply::Body(short.clone()),
        "/cut-off" => Reply::Announced {
            announced: 100_000,
            body: short.clone(),
        },
        _ => Reply::Body(other.clone()),
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backend");
    let digest = sha256(&data);

    let url = server.url("/short");
    let e = fetch::download(&url, 100_000, &digest, &dest)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{url}: 60000 bytes, expected 100000")
    );
    assert!(!dest.exists());

    // The server closes before its own Content-Length: an error, not a file.
    let url = server.url("/cut-off");
    let e = fetch::download(&url, 100_000, &digest, &dest)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with(url.as_str()), "{e}");
    assert!(!dest.exists());

    let url = server.url("/other");
    let e = fetch::download(&url, 100_000, &digest, &dest)
        .await
        .unwrap_err();
    assert!(matches!(e.problem, Problem::Digest { .. }), "{e}");
    assert!(
        e.to_string()
            .ends_with(&format!("the signed one is {digest}")),
        "{e}"
    );
    assert!(!dest.exists());
}

#[tokio::test]
async fn an_http_feed_on_a_non_loopback_host_is_refused() {
    // Refused before any connection: these hosts need not exist.
    for feed in [
        "http://example.org/feed/index.json",
        "http://10.1.2.3/index.json",
    ] {
        let url = Url::parse(feed).unwrap();
        let e = fetch::get(&url, 1024).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{feed}: refused: http only for a loopback address (127.0.0.1, ::1); use https"
            )
        );
    }
    // `localhost` is a name, and a name resolves wherever /etc/hosts says:
    // refused although this server listens on 127.0.0.1.
    let server = Server::http(|_| Reply::Body(b"x".to_vec()));
    let by_name = Url::parse(&format!("http://localhost:{}/x", server.port())).unwrap();
    let e = fetch::get(&by_name, 1024).await.unwrap_err();
    assert!(matches!(e.problem, Problem::PlainHttp), "{e}");
    assert!(fetch::get(&server.url("/x"), 1024).await.is_ok());
}

#[tokio::test]
async fn a_loopback_feed_redirecting_to_plain_http_elsewhere_is_refused() {
    let server = Server::http(|_| Reply::Redirect("http://10.1.2.3/index.json".into()));
    let url = server.url("/index.json");
    let e = fetch::get(&url, 1024).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "http://10.1.2.3/index.json: refused: http only for a loopback address (127.0.0.1, ::1); use https"
    );
}

#[tokio::test]
async fn endless_redirects_end() {
    let server = Server::http(|_| Reply::Redirect("/again".into()));
    let e = fetch::get(&server.url("/start"), 1024).await.unwrap_err();
    assert!(matches!(e.problem, Problem::TooManyRedirects), "{e}");
}

/// A stalled transfer's error, and how long it took.
async fn stalled(reply: Reply) -> (FetchError, Duration) {
    let server = Server::http(move |_| reply.clone());
    let started = Instant::now();
    let e = quick()
        .get(&server.url("/index.json"), 1 << 20)
        .await
        .unwrap_err();
    (e, started.elapsed())
}

fn assert_stalled_in_bound(e: &FetchError, took: Duration) {
    assert!(matches!(e.problem, Problem::Stalled { .. }), "{e}");
    assert!(
        e.to_string()
            .ends_with("no progress for 1 s (less than 1024 bytes)"),
        "{e}"
    );
    // At least the stall; at most twice it (the documented bound), with
    // three times the slack for a loaded machine.
    assert!(took >= Duration::from_millis(950), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[tokio::test]
async fn a_server_that_accepts_and_sends_nothing_fails_after_the_stall() {
    let (e, took) = stalled(Reply::Silent).await;
    assert_stalled_in_bound(&e, took);
    let (e, took) = stalled(Reply::SilentAfterHeaders).await;
    assert_stalled_in_bound(&e, took);
}

#[tokio::test]
async fn a_server_dribbling_a_byte_at_a_time_fails_after_the_stall() {
    // Ten bytes a second is progress of a kind, but not min_progress.
    let (e, took) = stalled(Reply::Dribble {
        size: 1 << 20,
        every: Duration::from_millis(100),
    })
    .await;
    assert_stalled_in_bound(&e, took);
}

/// The non-blocking half of point 7, on the module (the launcher's own
/// `status` during an update is tested with `berth update`): on a runtime
/// of one thread, a timer keeps its time while two transfers stall.
#[tokio::test(flavor = "current_thread")]
async fn stalled_transfers_never_hold_up_the_runtime() {
    let silent = Server::http(|_| Reply::Silent);
    let dribbler = Server::http(|_| Reply::Dribble {
        size: 1 << 20,
        every: Duration::from_millis(100),
    });
    let fetcher = quick();
    let (a, b) = (silent.url("/index.json"), dribbler.url("/index.json"));
    let transfers =
        tokio::spawn(
            async move { tokio::join!(fetcher.get(&a, 1 << 20), fetcher.get(&b, 1 << 20)) },
        );
    let mut latest = Duration::ZERO;
    while !transfers.is_finished() {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        latest = latest.max(asked.elapsed().saturating_sub(Duration::from_millis(10)));
    }
    let (a, b) = transfers.await.unwrap();
    for result in [a, b] {
        let e = result.unwrap_err();
        assert!(matches!(e.problem, Problem::Stalled { .. }), "{e}");
    }
    // Target 100 ms (a status reply), three times that for a loaded machine;
    // a transfer on the runtime's thread would hold it for the whole second.
    assert!(
        latest < Duration::from_millis(300),
        "a timer was {latest:?} late"
    );
}

/// `fetch::get` in a process of its own with `SSL_CERT_FILE` = `ca`: its
/// "ok BODY" or "err MESSAGE".
fn get_with_ca(url: &Url, ca: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fetch::child_get",
            "--include-ignored",
            "--nocapture",
        ])
        .args(["--test-threads=1", "-q"])
        .env("BERTH_TEST_FETCH_URL", url.as_str())
        .env("SSL_CERT_FILE", ca)
        .env_remove("SSL_CERT_DIR")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout
        .lines()
        .find_map(|l| l.strip_prefix("fetch result: "))
    {
        Some(result) => result.to_owned(),
        None => panic!(
            "no result from the child: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The other half of [`get_with_ca`]: not a test of its own.
#[test]
#[ignore = "run by the https tests in a process of its own, with SSL_CERT_FILE set"]
fn child_get() {
    let Ok(url) = std::env::var("BERTH_TEST_FETCH_URL") else {
        return;
    };
    let url = Url::parse(&url).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match runtime.block_on(quick().get(&url, 1 << 20)) {
        Ok(body) => println!("fetch result: ok {}", String::from_utf8_lossy(&body)),
        Err(e) => println!("fetch result: err {e}"),
    }
}

#[test]
fn https_is_verified_against_the_roots_ssl_cert_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("berth test CA");
    let trusted = ca.write_pem(dir.path(), "ca.pem");
    let stranger = Ca::new("another CA").write_pem(dir.path(), "other.pem");

    let good = Server::https(ca.server(&["127.0.0.1"]), |_| {
        Reply::Body(b"signed".to_vec())
    });
    assert_eq!(get_with_ca(&good.url("/index.json"), &trusted), "ok signed");

    // The same server under another CA's roots: refused.
    let url = good.url("/index.json");
    let refused = get_with_ca(&url, &stranger);
    assert!(refused.starts_with(&format!("err {url}: ")), "{refused}");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");

    // The right CA, but a certificate for another name: refused.
    let misnamed = Server::https(ca.server(&["feed.example.org"]), |_| {
        Reply::Body(b"signed".to_vec())
    });
    let url = misnamed.url("/index.json");
    let refused = get_with_ca(&url, &trusted);
    assert!(refused.starts_with(&format!("err {url}: ")), "{refused}");
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}

#[test]
fn an_https_to_http_redirect_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("berth test CA");
    let trusted = ca.write_pem(dir.path(), "ca.pem");
    let plain = Server::http(|_| Reply::Body(b"unsigned".to_vec()));
    let target = plain.url("/index.json");
    let to = target.to_string();
    let https = Server::https(ca.server(&["127.0.0.1"]), move |path| match path {
        "/index.json" => Reply::Redirect(to.clone()),
        _ => Reply::Redirect("/index.json".into()),
    });
    let url = https.url("/index.json");
    assert_eq!(
        get_with_ca(&url, &trusted),
        format!("err {url}: redirect to {target} refused: https never redirects to http")
    );
    // An https -> https redirect is followed (the server and CA work).
    let moved = https.url("/moved");
    assert!(get_with_ca(&moved, &trusted).starts_with(&format!("err {url}: redirect to")));
}
