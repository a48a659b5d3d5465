//! What a backend's feed offers: its signed index read and verified, and the
//! highest release of the backend for this platform compared with the
//! installed version (`berth update ID --check`).
//!
//! The index is trusted only once its signature by a trusted key verifies
//! (always: with or without `--require-signatures`); only then is it parsed.
//! The signature is fetched first and is small, so a feed that serves
//! garbage costs at most one bounded read of the index.

use std::path::Path;

use url::Url;

use super::feed::{FeedError, INDEX, Index, MAX_INDEX_BYTES, Release};
use crate::manifest::BackendId;
use crate::trust::Trust;

/// Largest signature file read (a real one is a few hundred bytes).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// How the check reads a feed's small files: the download side
/// (`fetch::get`) in berth.
pub trait Get {
    /// The body at `url`, refused once it passes `max_bytes`; the error is one line.
    fn get(&self, url: &Url, max_bytes: u64) -> impl Future<Output = Result<Vec<u8>, String>>;
}

/// What the feed offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A release higher than the installed version.
    Available(Box<Release>),
    /// Nothing higher; the feed's highest version for this platform, if any.
    UpToDate(Option<semver::Version>),
}

impl Offer {
    /// What it means for `installed`, in one line (`berth update ID
    /// --check`, the `check-update` reply's note), saying why a higher
    /// version in the feed is not offered.
    pub fn line(&self, installed: Installed<'_>, platform: &str) -> String {
        let Installed { id, version, bad } = installed;
        let skipped = if bad.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = bad.iter().map(ToString::to_string).collect();
            format!("; not offered, rolled back before: {}", list.join(", "))
        };
        match self {
            Self::Available(release) => {
                format!("{id}: {} available (installed {version})", release.version)
            }
            Self::UpToDate(Some(latest)) => format!(
                "{id}: up to date (installed {version}, the feed's latest for {platform} is {latest}{skipped})"
            ),
            Self::UpToDate(None) => format!(
                "{id}: up to date (installed {version}; the feed has no release for {platform}{skipped})"
            ),
        }
    }
}

/// Why a check failed: one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Fetch(String),
    #[error("{url}: not trusted: {reason}")]
    Untrusted { url: String, reason: String },
    #[error("{url}: {source}")]
    Feed { url: String, source: FeedError },
}

/// What is installed of a backend, as a check compares a feed with it.
#[derive(Debug, Clone, Copy)]
pub struct Installed<'a> {
    pub id: &'a BackendId,
    pub version: &'a semver::Version,
    /// Versions rolled back after a failed probation (`Updates::bad`):
    /// never offered, whatever the feed says.
    pub bad: &'a [semver::Version],
}

/// Reads the feed at `feed` (a folder URL) and says what it offers the
/// `installed` backend for `platform`.
pub async fn check(
    installed: Installed<'_>,
    feed: &Url,
    trust: &Trust,
    platform: &str,
    net: &impl Get,
) -> Result<Offer, CheckError> {
    let Installed { id, version, bad } = installed;
    let index_url = join(feed, INDEX)?;
    let (index, _) = read_signed(&index_url, MAX_INDEX_BYTES, trust, net).await?;
    let index = Index::parse(&index).map_err(|source| CheckError::Feed {
        url: index_url.to_string(),
        source,
    })?;
    Ok(match index.latest(id, platform, bad) {
        Some(r) if r.version > *version => Offer::Available(Box::new(r.clone())),
        Some(r) => Offer::UpToDate(Some(r.version.clone())),
        None => Offer::UpToDate(None),
    })
}

/// `path` (a feed-relative path) below the feed's folder URL.
pub fn join(feed: &Url, path: &str) -> Result<Url, CheckError> {
    feed.join(path)
        .map_err(|e| CheckError::Fetch(format!("{feed}: cannot name {path}: {e}")))
}

/// The bytes at `url` and the text of their signature, once that
/// `.minisig` beside it verifies by a trusted key.
pub async fn read_signed(
    url: &Url,
    max_bytes: u64,
    trust: &Trust,
    net: &impl Get,
) -> Result<(Vec<u8>, String), CheckError> {
    let mut sig_url = url.clone();
    sig_url.set_path(&format!("{}{}", url.path(), crate::trust::SIGNATURE_SUFFIX));
    let signature = net
        .get(&sig_url, MAX_SIGNATURE_BYTES)
        .await
        .map_err(CheckError::Fetch)?;
    let bytes = net.get(url, max_bytes).await.map_err(CheckError::Fetch)?;
    let untrusted = |reason: String| CheckError::Untrusted {
        url: url.to_string(),
        reason,
    };
    let text = String::from_utf8(signature)
        .map_err(|_| untrusted("its signature is not a minisign signature (not text)".into()))?;
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    trust
        .check(Path::new(name), &bytes, &text)
        .map_err(|reason| untrusted(format!("its signature {reason}")))?;
    Ok((bytes, text))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::super::feed::Artifact;
    use super::*;

    /// A fake feed (declared as one): URLs answered from a map, as a server
    /// of the feed's folder would. The real server is in the integration
    /// tests once the download side is in.
    struct Files(HashMap<String, Vec<u8>>);

    impl Get for Files {
        async fn get(&self, url: &Url, max_bytes: u64) -> Result<Vec<u8>, String> {
            match self.0.get(url.path()) {
                Some(b) if b.len() as u64 <= max_bytes => Ok(b.clone()),
                Some(_) => Err(format!("{url}: larger than {max_bytes} bytes: cut")),
                None => Err(format!("{url}: the server answered 404")),
            }
        }
    }

    struct Publisher {
        pair: minisign::KeyPair,
        trusted: tempfile::TempDir,
    }

    impl Publisher {
        fn new() -> Self {
            let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
            let trusted = tempfile::tempdir().unwrap();
            Self { pair, trusted }
        }

        fn trust_key(&self) {
            let text = self.pair.pk.to_box().unwrap().to_string();
            std::fs::write(self.trusted.path().join("acme.pub"), text).unwrap();
        }

        fn trust(&self) -> Trust {
            Trust::load(crate::trust::Policy {
                require: false,
                dirs: vec![PathBuf::from(self.trusted.path())],
            })
        }

        fn sign(&self, bytes: &[u8]) -> Vec<u8> {
            minisign::sign(Some(&self.pair.pk), &self.pair.sk, bytes, None, None)
                .unwrap()
                .to_string()
                .into_bytes()
        }
    }

    fn release(version: &str) -> Release {
        let artifact = |name: &str| Artifact {
            path: format!("demo/{version}/linux-x86_64/{name}"),
            size: 1,
            sha256: "00".repeat(32),
        };
        Release {
            id: "demo".into(),
            version: version.parse().unwrap(),
            platform: "linux-x86_64".into(),
            manifest: artifact("demo.yaml"),
            executable: artifact("run"),
            files: None,
        }
    }

    fn feed(index: &[u8], signature: Vec<u8>) -> Files {
        Files(HashMap::from([
            ("/feed/index.json".to_owned(), index.to_vec()),
            ("/feed/index.json.minisig".to_owned(), signature),
        ]))
    }

    async fn offer(files: &Files, trust: &Trust, installed: &str) -> Result<Offer, CheckError> {
        offer_but(files, trust, installed, &[]).await
    }

    /// The offer to a backend for which the `bad` versions failed probation.
    async fn offer_but(
        files: &Files,
        trust: &Trust,
        installed: &str,
        bad: &[&str],
    ) -> Result<Offer, CheckError> {
        let url = Url::parse("http://127.0.0.1:1/feed/").unwrap();
        let id = BackendId::new("demo").unwrap();
        let bad: Vec<semver::Version> = bad.iter().map(|v| v.parse().unwrap()).collect();
        let installed = Installed {
            id: &id,
            version: &installed.parse().unwrap(),
            bad: &bad,
        };
        check(installed, &url, trust, "linux-x86_64", files).await
    }

    fn index(versions: &[&str]) -> Vec<u8> {
        let mut index = Index::new();
        for v in versions {
            index.add(release(v));
        }
        index.to_bytes()
    }

    #[tokio::test]
    async fn a_signed_index_offers_the_highest_version_above_the_installed_one() {
        let publisher = Publisher::new();
        publisher.trust_key();
        let bytes = index(&["1.0.0", "1.2.0", "1.1.0"]);
        let files = feed(&bytes, publisher.sign(&bytes));
        let trust = publisher.trust();
        assert_eq!(
            offer(&files, &trust, "1.0.0").await,
            Ok(Offer::Available(Box::new(release("1.2.0"))))
        );
        assert_eq!(
            offer(&files, &trust, "1.2.0").await,
            Ok(Offer::UpToDate(Some("1.2.0".parse().unwrap())))
        );
        assert_eq!(
            offer(&files, &trust, "2.0.0").await,
            Ok(Offer::UpToDate(Some("1.2.0".parse().unwrap())))
        );
    }

    #[tokio::test]
    async fn a_bad_version_is_never_offered_but_a_higher_one_is() {
        let publisher = Publisher::new();
        publisher.trust_key();
        let trust = publisher.trust();
        let bytes = index(&["1.0.0", "1.1.0"]);
        let files = feed(&bytes, publisher.sign(&bytes));
        assert_eq!(
            offer_but(&files, &trust, "1.0.0", &["1.1.0"]).await,
            Ok(Offer::UpToDate(Some("1.0.0".parse().unwrap())))
        );
        // The publisher fixes it in 1.2.0.
        let bytes = index(&["1.0.0", "1.1.0", "1.2.0"]);
        let files = feed(&bytes, publisher.sign(&bytes));
        assert_eq!(
            offer_but(&files, &trust, "1.0.0", &["1.1.0"]).await,
            Ok(Offer::Available(Box::new(release("1.2.0"))))
        );
        assert_eq!(
            offer_but(&files, &trust, "1.0.0", &["1.1.0", "1.2.0"]).await,
            Ok(Offer::UpToDate(Some("1.0.0".parse().unwrap())))
        );
    }

    #[tokio::test]
    async fn an_index_is_read_only_through_a_trusted_signature() {
        let publisher = Publisher::new();
        let bytes = index(&["1.2.0"]);
        let trust = publisher.trust();
        // Signed, but by a key nobody trusts.
        let files = feed(&bytes, publisher.sign(&bytes));
        let err = offer(&files, &trust, "1.0.0")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.json: not trusted: its signature signed by key"),
            "{err}"
        );
        assert!(err.contains("no trusted key is installed"), "{err}");
        publisher.trust_key();
        let trust = publisher.trust();
        // No signature at all.
        let mut files = feed(&bytes, Vec::new());
        files.0.remove("/feed/index.json.minisig");
        let err = offer(&files, &trust, "1.0.0")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.json.minisig: the server answered 404"),
            "{err}"
        );
        // A signature of other bytes.
        let files = feed(&bytes, publisher.sign(b"another index"));
        let err = offer(&files, &trust, "1.0.0")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match index.json"), "{err}");
        // Garbage for a signature.
        let files = feed(&bytes, b"<html>".to_vec());
        let err = offer(&files, &trust, "1.0.0")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a minisign signature"), "{err}");
        // Signed garbage is still not an index.
        let files = feed(b"<html>", publisher.sign(b"<html>"));
        let err = offer(&files, &trust, "1.0.0")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("index.json: not a release index"), "{err}");
    }
}
