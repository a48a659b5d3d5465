//! The download side of updates: a release feed's files fetched over
//! HTTP(S) under rules that hold whatever the feed does. It is berth's only
//! network client; a feed is untrusted, so every rule here is about what a
//! hostile or dead server can make berth do.
//!
//! Two calls, the seam the updater uses:
//!
//! - [`get`]: a small file (the index, a manifest, a signature) read whole,
//!   refused once it passes `max_bytes`.
//! - [`download`]: an artifact streamed into `dest` (inside the updater's
//!   staging folder), its SHA-256 computed while it streams; a body longer
//!   than the signed size is cut, a shorter one or another digest is an
//!   error, and `dest` is removed on any error. `dest` is not synced: the
//!   installer syncs what it publishes before its rename.
//!
//! The rules, each a one-line [`FetchError`] naming the URL:
//!
//! - https only, certificates verified against the system's roots, read
//!   with rustls-native-certs, so `SSL_CERT_FILE` / `SSL_CERT_DIR` are
//!   honoured. Plain http only when the host is a loopback *address*
//!   (`127.0.0.0/8`, `::1`) written as an IP literal: a name, `localhost`
//!   included, resolves wherever /etc/hosts or DNS says, so it is refused
//!   ([`plain_http_allowed`], the rule of the manifest's `update.feed`
//!   check, so both judge a URL alike).
//! - Redirects are followed by hand (at most 5), each hop checked by the
//!   same rule, and never from https to http.
//! - Stalls: each phase (resolve, connect with TLS, request, response
//!   headers) and each read waits at most [`Limits::stall`] (30 s). A
//!   server that dribbles bytes is not making progress either: a transfer
//!   fails once `stall` has passed without [`Limits::min_progress`] bytes
//!   (32 KiB, about 1 KB/s, below any link an update could use), like
//!   curl's `--speed-limit`/`--speed-time`. The check runs when a read
//!   returns, and a read waits at most `stall`, so a stalled transfer ends
//!   between `stall` and twice `stall` after its last progress (a byte a
//!   second ends at `stall`). A hostile server that keeps exactly above the
//!   floor is bounded by the size it must send (`max_bytes`, the signed
//!   size). Both limits are fields so tests run in a second; the
//!   defaults are the contract's.
//! - No compression is asked for: the bytes counted and hashed are the
//!   bytes the signed files name.
//!
//! Why ureq (3, rustls with ring, no default features) and not reqwest:
//! both use rustls; reqwest brings hyper, tower and h2 for HTTP/2 and
//! connection reuse that a handful of requests per update does not need.
//! What linking it cost, measured 2026-12-07 on release builds of main
//! before (9e84f67) and after it landed (which also carried others' work):
//! the stripped `berth` 10.69 -> 11.11 MB (text +418 KB, all of it counted
//! against ureq, rustls and ring here); the idle headless launcher
//! (`cargo bench --bench idle`) 10.1 -> 10.2 MB resident, 20 / 10 ms CPU
//! in 30 s under load (nothing here runs until an update is asked for;
//! the launcher's idle memory was over 10 MB before it, from the loader's
//! relocation table and libm, since fixed in build.rs and src/main.rs:
//! 9.0 to 9.6 MB with ureq linked, README "Benchmarks"); CLI start (`cargo bench --bench
//! cli_start`, alternating both builds, medians of 200) `berth status`
//! 4.21 -> 3.65 ms, `berth --version` 4.16 -> 3.86 ms: no measurable growth
//! under a load average of 10+.
//! ureq is blocking, so each transfer runs on tokio's blocking pool
//! (`spawn_blocking`): no status reply, start or tray update waits on it,
//! and the blocking thread ends when the transfer's own timeouts do.
//! Environment proxies (`HTTPS_PROXY`, `NO_PROXY`) are honoured, as ureq
//! reads them; the rules above judge the feed's URL, not the proxy's.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use url::Url;

use crate::manifest::Digest;

/// How long a transfer may go without progress (DESIGN.md, "Updates").
pub const STALL: Duration = Duration::from_secs(30);
/// What counts as progress within [`STALL`].
pub const MIN_PROGRESS: u64 = 32 * 1024;
const MAX_REDIRECTS: usize = 5;
/// The read buffer: as for hashing a file (see integrity.rs), 64 KiB.
const BUF_SIZE: usize = 64 * 1024;

/// The stall rule's two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest any phase or read may wait, and the window in which
    /// `min_progress` bytes must arrive.
    pub stall: Duration,
    /// Fewer bytes than this in `stall` is a stall.
    pub min_progress: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            stall: test_stall().unwrap_or(STALL),
            min_progress: MIN_PROGRESS,
        }
    }
}

/// A test of the real binary against a stalled feed would wait the
/// contract's 30 s: debug builds take a shorter stall, in whole seconds,
/// from `BERTH_TEST_FETCH_STALL`. Release builds have no such knob.
#[cfg(debug_assertions)]
fn test_stall() -> Option<Duration> {
    let secs: u64 = std::env::var("BERTH_TEST_FETCH_STALL").ok()?.parse().ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(not(debug_assertions))]
fn test_stall() -> Option<Duration> {
    None
}

/// Why a fetch failed: one line, naming the URL it concerns (for a
/// refused redirect, the URL that redirected).
#[derive(Debug, thiserror::Error)]
#[error("{url}: {problem}")]
pub struct FetchError {
    pub url: String,
    pub problem: Problem,
}

/// What went wrong with a fetch.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("refused: http only for a loopback address (127.0.0.1, ::1); use https")]
    PlainHttp,
    #[error("refused: only https and http URLs are fetched")]
    Scheme,
    #[error("redirect to {0} refused: https never redirects to http")]
    Downgrade(String),
    #[error("redirect with a bad Location {0:?}")]
    BadRedirect(String),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the server answered {0}")]
    Status(u16),
    #[error("no progress for {secs} s (less than {bytes} bytes)", secs = .stall.as_secs_f64())]
    Stalled { stall: Duration, bytes: u64 },
    #[error("larger than {0} bytes: cut")]
    TooLarge(u64),
    #[error("{got} bytes, expected {expected}")]
    Short { got: u64, expected: u64 },
    #[error("SHA-256 is {got}, the signed one is {expected}")]
    Digest { got: Digest, expected: Digest },
    #[error("no system root certificates to verify https (SSL_CERT_FILE: {0})")]
    NoRoots(String),
    #[error("{0}")]
    Http(Box<ureq::Error>),
    #[error("reading the body: {0}")]
    Read(io::Error),
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("the transfer's thread ended abnormally: {0}")]
    Aborted(String),
}

impl Problem {
    fn at(self, url: &Url) -> FetchError {
        FetchError {
            url: url.to_string(),
            problem: self,
        }
    }
}

/// Whether plain http may reach `url`'s host: only a loopback IP literal.
/// The rule lives with the manifest's `update.feed` check (a leaf module),
/// so both judge a URL the same way.
pub use crate::manifest::update::plain_http_allowed;

/// Refuses a URL berth may not fetch from.
fn check_url(url: &Url) -> Result<(), FetchError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if plain_http_allowed(url) => Ok(()),
        "http" => Err(Problem::PlainHttp.at(url)),
        _ => Err(Problem::Scheme.at(url)),
    }
}

/// The next hop of a redirect from `url`, checked.
fn redirect(url: &Url, location: &str) -> Result<Url, FetchError> {
    let to = url
        .join(location)
        .map_err(|_| Problem::BadRedirect(location.to_owned()).at(url))?;
    if url.scheme() == "https" && to.scheme() != "https" {
        return Err(Problem::Downgrade(to.to_string()).at(url));
    }
    check_url(&to)?;
    Ok(to)
}

/// [`Fetcher::get`] with the contract's limits.
pub async fn get(url: &Url, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
    Fetcher::default().get(url, max_bytes).await
}

/// [`Fetcher::download`] with the contract's limits.
pub async fn download(
    url: &Url,
    expected_size: u64,
    expected_sha256: &Digest,
    dest: &Path,
) -> Result<(), FetchError> {
    Fetcher::default()
        .download(url, expected_size, expected_sha256, dest)
        .await
}

/// Fetches under a set of [`Limits`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fetcher {
    limits: Limits,
}

impl Fetcher {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// The body at `url`, refused once it passes `max_bytes`.
    pub async fn get(&self, url: &Url, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let this = *self;
        let owned = url.clone();
        blocking(url, move || {
            let mut out = Vec::new();
            this.transfer(&owned, max_bytes, |chunk| {
                out.extend_from_slice(chunk);
                Ok(())
            })?;
            Ok(out)
        })
        .await
    }

    /// Streams `url` into `dest`: exactly `expected_size` bytes whose
    /// SHA-256 is `expected_sha256`, else an error and no `dest`.
    pub async fn download(
        &self,
        url: &Url,
        expected_size: u64,
        expected_sha256: &Digest,
        dest: &Path,
    ) -> Result<(), FetchError> {
        let this = *self;
        let (owned, expected, path) = (url.clone(), *expected_sha256, dest.to_owned());
        let result = blocking(url, move || {
            this.download_blocking(&owned, expected_size, &expected, &path)
        })
        .await;
        if result.is_err() {
            // Nothing half-written stays behind (the blocking side has
            // closed the file by now, also when it panicked).
            let _ = std::fs::remove_file(dest);
        }
        result
    }

    fn download_blocking(
        &self,
        url: &Url,
        expected_size: u64,
        expected: &Digest,
        dest: &Path,
    ) -> Result<(), FetchError> {
        let write_error = |source| {
            Problem::Write {
                path: dest.to_owned(),
                source,
            }
            .at(url)
        };
        let mut file = File::create(dest).map_err(write_error)?;
        let mut hasher = Sha256::new();
        let mut first = true;
        let got = self.transfer(url, expected_size, |chunk| {
            hasher.update(chunk);
            file.write_all(chunk).map_err(write_error)?;
            if std::mem::take(&mut first) {
                super::pause::at("downloading");
            }
            Ok(())
        })?;
        if got < expected_size {
            let expected = expected_size;
            return Err(Problem::Short { got, expected }.at(url));
        }
        let got = Digest(hasher.finalize().into());
        if got != *expected {
            let expected = *expected;
            return Err(Problem::Digest { got, expected }.at(url));
        }
        Ok(())
    }

    /// Follows `url` to its body and hands it to `sink` chunk by chunk, at
    /// most `limit` bytes; returns how many bytes came.
    fn transfer(
        &self,
        url: &Url,
        limit: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), FetchError>,
    ) -> Result<u64, FetchError> {
        let (url, response) = self.open(url)?;
        let too_large = || Problem::TooLarge(limit).at(&url);
        if response.body().content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut reader = response.into_body().into_reader();
        let mut progress = Progress::new(self.limits);
        let mut buf = vec![0u8; BUF_SIZE];
        let mut total: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(self.stalled(&url)),
                Err(e) => return Err(Problem::Read(e).at(&url)),
            };
            // One byte past the limit is enough to know: cut there.
            let room = usize::try_from(limit - total).unwrap_or(usize::MAX);
            if n > room {
                return Err(too_large());
            }
            total += n as u64;
            sink(&buf[..n])?;
            if !progress.advance(n as u64, Instant::now()) {
                return Err(self.stalled(&url));
            }
        }
    }

    /// The first successful response on the way from `url`, redirects
    /// followed and checked, with the URL it came from.
    fn open(&self, url: &Url) -> Result<(Url, ureq::http::Response<ureq::Body>), FetchError> {
        let mut url = url.clone();
        let mut roots = None;
        for _ in 0..=MAX_REDIRECTS {
            check_url(&url)?;
            let agent = self.agent(&url, &mut roots)?;
            let response = agent.get(url.as_str()).call().map_err(|e| match e {
                ureq::Error::Timeout(_) => self.stalled(&url),
                e => Problem::Http(Box::new(e)).at(&url),
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok((url, response));
            }
            let location = status
                .is_redirection()
                .then(|| response.headers().get(ureq::http::header::LOCATION))
                .flatten();
            match location {
                Some(location) => {
                    let location = String::from_utf8_lossy(location.as_bytes());
                    url = redirect(&url, &location)?;
                }
                None => return Err(Problem::Status(status.as_u16()).at(&url)),
            }
        }
        Err(Problem::TooManyRedirects.at(&url))
    }

    /// An agent for one hop: no redirects or status errors of its own, every
    /// phase bounded by `stall`, and for https the system's roots (read
    /// once per fetch, so a changed `SSL_CERT_FILE` counts next time).
    fn agent(&self, url: &Url, roots: &mut Option<RootCerts>) -> Result<ureq::Agent, FetchError> {
        let tls = if url.scheme() == "https" {
            let roots = match roots {
                Some(roots) => roots.clone(),
                None => roots.insert(system_roots(url)?).clone(),
            };
            TlsConfig::builder()
                .root_certs(roots)
                .unversioned_rustls_crypto_provider(Arc::new(ring_provider()))
                .build()
        } else {
            // No TLS on this hop; no roots needed (ureq builds TLS lazily).
            TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(Vec::new())))
                .build()
        };
        let stall = Some(self.limits.stall);
        Ok(ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(stall)
            .timeout_connect(stall)
            .timeout_send_request(stall)
            .timeout_recv_response(stall)
            .timeout_per_read(stall)
            .timeout_per_write(stall)
            .tls_config(tls)
            .build()
            .into())
    }

    fn stalled(&self, url: &Url) -> FetchError {
        Problem::Stalled {
            stall: self.limits.stall,
            bytes: self.limits.min_progress,
        }
        .at(url)
    }
}

/// The system's root certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` when
/// set), or an error when there are none: berth never falls back to
/// trusting nothing or everything.
fn system_roots(url: &Url) -> Result<RootCerts, FetchError> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        let file = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| "unset".to_owned());
        return Err(Problem::NoRoots(file).at(url));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// rustls on ring. rustls 0.23.48 deprecates ring's provider for lacking
/// post-quantum key exchange, which protects secrecy against a recording
/// adversary; a release is public and its integrity rests on minisign
/// signatures, not on TLS, so secrecy is not what https buys here. The
/// alternative, aws-lc-rs, is a large C build and a larger binary.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Whether a read failed by a timeout (ureq wraps its own in an io::Error).
fn is_timeout(e: &io::Error) -> bool {
    let ureq_timeout = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)));
    ureq_timeout
        || matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        )
}

/// The stall rule: `min_progress` bytes within each `stall` window.
#[derive(Debug)]
struct Progress {
    limits: Limits,
    mark: Instant,
    since_mark: u64,
}

impl Progress {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            mark: Instant::now(),
            since_mark: 0,
        }
    }

    /// Counts `n` bytes read at `now`; false once the window has passed
    /// without enough of them.
    fn advance(&mut self, n: u64, now: Instant) -> bool {
        self.since_mark += n;
        if self.since_mark >= self.limits.min_progress {
            self.mark = now;
            self.since_mark = 0;
            return true;
        }
        now.duration_since(self.mark) < self.limits.stall
    }
}

/// Runs one transfer on the blocking pool, so the runtime never waits on it.
async fn blocking<T: Send + 'static>(
    url: &Url,
    work: impl FnOnce() -> Result<T, FetchError> + Send + 'static,
) -> Result<T, FetchError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(Problem::Aborted(e.to_string()).at(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limits_are_the_contracts_30_s_and_32_kib() {
        if std::env::var_os("BERTH_TEST_FETCH_STALL").is_none() {
            let contract = Limits {
                stall: Duration::from_secs(30),
                min_progress: 32 * 1024,
            };
            assert_eq!(Limits::default(), contract);
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn plain_http_only_for_loopback_ip_literals() {
        for ok in [
            "http://127.0.0.1:8000/feed/",
            "http://127.9.8.7/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(plain_http_allowed(&url(ok)), "{ok}");
            assert!(check_url(&url(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "http://localhost:8000/",
            "http://example.org/",
            "http://10.0.0.1/",
            "http://[::2]/",
            "http://0.0.0.0/",
            "http://127.0.0.1.example.org/",
        ] {
            assert!(!plain_http_allowed(&url(refused)), "{refused}");
            let e = check_url(&url(refused)).unwrap_err().to_string();
            assert!(e.starts_with(refused) && e.contains("loopback"), "{e}");
        }
        assert!(check_url(&url("https://example.org/")).is_ok());
        let e = check_url(&url("ftp://127.0.0.1/x")).unwrap_err();
        assert!(matches!(e.problem, Problem::Scheme), "{e}");
    }

    #[test]
    fn a_redirect_never_goes_from_https_to_http() {
        let from = url("https://example.org/feed/index.json");
        let e = redirect(&from, "http://127.0.0.1/index.json").unwrap_err();
        assert!(matches!(e.problem, Problem::Downgrade(_)), "{e}");
        assert!(e.to_string().starts_with(
            "https://example.org/feed/index.json: redirect to http://127.0.0.1/index.json refused"
        ));
        assert_eq!(
            redirect(&from, "../other/index.json").unwrap().as_str(),
            "https://example.org/other/index.json"
        );
        let local = url("http://127.0.0.1:9/feed/");
        let e = redirect(&local, "http://example.org/").unwrap_err();
        assert!(matches!(e.problem, Problem::PlainHttp), "{e}");
        assert!(redirect(&local, "https://example.org/").is_ok());
    }

    #[test]
    fn progress_is_min_progress_bytes_per_stall_window() {
        let limits = Limits {
            stall: Duration::from_secs(30),
            min_progress: 100,
        };
        let start = Instant::now();
        let mut p = Progress::new(limits);
        p.mark = start;
        // A byte a second is not progress: the window ends at 30 s.
        for s in 1..30 {
            assert!(p.advance(1, start + Duration::from_secs(s)), "{s}");
        }
        assert!(!p.advance(1, start + Duration::from_secs(30)));
        // Enough bytes restart the window.
        let mut p = Progress::new(limits);
        p.mark = start;
        assert!(p.advance(100, start + Duration::from_secs(29)));
        assert!(p.advance(1, start + Duration::from_secs(58)));
        assert!(!p.advance(1, start + Duration::from_secs(59)));
    }
}
