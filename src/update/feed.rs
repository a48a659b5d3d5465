//! The release feed: a folder of static files that `berth release` writes
//! and any web server can serve (README, "Updating a backend").
//!
//! ```text
//! index.json                       every release in the folder (below)
//! index.json.minisig               its minisign signature
//! ID/VERSION/PLATFORM/ID.yaml      the release's manifest, paths relative to its folder
//! ID/VERSION/PLATFORM/ID.yaml.minisig
//! ID/VERSION/PLATFORM/EXE          the executable the manifest pins
//! ID/VERSION/PLATFORM/files.tar    its pinned `files` folder, packed (when it has one)
//! ```
//!
//! `index.json` is `{"format": 1, "releases": [...]}`, one object per
//! release: `id`, `version`, `platform` (`linux-x86_64`), and `manifest`,
//! `executable` and `files` (or null) as `{path, size, sha256}`, the path
//! relative to the index, `/`-separated. The signature of a manifest is its
//! path plus `.minisig`. Readers ignore fields they do not know (a later
//! berth may add some); a change that old readers would misread gets a new
//! `format`.
//!
//! Nothing here is trusted until its signature is: [`Index::parse`] is for
//! bytes whose signature has been verified, and still checks every field
//! (a path that climbs out of the feed, a digest that is not one) since a
//! signed index from a careless publisher is still input.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::manifest::{BackendId, Digest};

/// The file name of the index in a feed.
pub const INDEX: &str = "index.json";
/// The format this berth writes and reads.
pub const FORMAT: u32 = 1;
/// The name of a release's packed `files` folder.
pub const FILES_TAR: &str = "files.tar";
/// Largest index a client reads (thousands of releases fit).
pub const MAX_INDEX_BYTES: u64 = 1024 * 1024;

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    pub releases: Vec<Release>,
}

/// One release: a version of one backend for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub version: semver::Version,
    /// The platform key (`linux-x86_64`) the executable is built for.
    pub platform: String,
    /// The signed manifest; its signature is `manifest.path` + `.minisig`.
    pub manifest: Artifact,
    pub executable: Artifact,
    /// The pinned `files` folder as a tar archive, if the manifest pins one.
    pub files: Option<Artifact>,
}

/// A file of a release: where it is, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the index, `/`-separated.
    pub path: String,
    pub size: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

/// Why an index cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("{INDEX}: not a release index: {0}")]
    Syntax(String),
    #[error("{INDEX}: format {0} is not one this berth reads (it reads {FORMAT}); update berth")]
    Format(u32),
    #[error("{INDEX}: release {release}: {problem}")]
    Release { release: String, problem: String },
}

impl Index {
    /// An empty index of this format.
    pub fn new() -> Self {
        Self {
            format: FORMAT,
            releases: Vec::new(),
        }
    }

    /// Reads and checks an index.
    pub fn parse(bytes: &[u8]) -> Result<Self, FeedError> {
        let index: Self =
            serde_json::from_slice(bytes).map_err(|e| FeedError::Syntax(e.to_string()))?;
        if index.format != FORMAT {
            return Err(FeedError::Format(index.format));
        }
        for release in &index.releases {
            release.check().map_err(|problem| FeedError::Release {
                release: release.to_string(),
                problem,
            })?;
        }
        Ok(index)
    }

    /// The index as written: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }

    /// Adds `release`, replacing one of the same id, version and platform,
    /// and keeps the releases sorted (id, then version, then platform).
    pub fn add(&mut self, release: Release) {
        self.releases.retain(|r| !r.same_slot(&release));
        self.releases.push(release);
        self.releases.sort_by(Release::order);
    }

    /// The highest version of `id` for `platform` that is not one of `bad`
    /// (versions rolled back after a failed probation are never offered
    /// again; a higher one is).
    pub fn latest(
        &self,
        id: &BackendId,
        platform: &str,
        bad: &[semver::Version],
    ) -> Option<&Release> {
        self.releases
            .iter()
            .filter(|r| r.id == id.as_str() && r.platform == platform)
            .filter(|r| !bad.contains(&r.version))
            .max_by(|a, b| a.version.cmp(&b.version))
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Release {
    fn same_slot(&self, other: &Self) -> bool {
        self.id == other.id && self.version == other.version && self.platform == other.platform
    }

    fn order(a: &Self, b: &Self) -> Ordering {
        (&a.id, &a.version, &a.platform).cmp(&(&b.id, &b.version, &b.platform))
    }

    /// The signature file of the manifest.
    pub fn signature_path(&self) -> String {
        format!("{}{}", self.manifest.path, crate::trust::SIGNATURE_SUFFIX)
    }

    fn check(&self) -> Result<(), String> {
        BackendId::new(&self.id)?;
        let platforms = crate::manifest::platform::OSES.iter().flat_map(|os| {
            crate::manifest::platform::ARCHES
                .iter()
                .map(move |arch| format!("{os}-{arch}"))
        });
        if !platforms.clone().any(|p| p == self.platform) {
            return Err(format!(
                "platform {:?} is not an <os>-<arch> key like linux-x86_64",
                self.platform
            ));
        }
        let files = self.files.iter().map(|f| ("files", f));
        for (what, artifact) in [
            ("manifest", &self.manifest),
            ("executable", &self.executable),
        ]
        .into_iter()
        .chain(files)
        {
            artifact.check().map_err(|e| format!("{what}: {e}"))?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.id, self.version, self.platform)
    }
}

impl Artifact {
    /// The digest, once [`Index::parse`] has checked it.
    pub fn digest(&self) -> Result<Digest, String> {
        Digest::from_hex(&self.sha256).map_err(|e| format!("sha256: {e}"))
    }

    fn check(&self) -> Result<(), String> {
        self.digest()?;
        if !is_safe_path(&self.path) {
            return Err(format!(
                "path {:?} must be relative to the index, '/'-separated, without '.', '..', '\\' or empty parts",
                self.path
            ));
        }
        Ok(())
    }
}

/// A path that stays inside the feed and means the same on every server
/// and file system: relative, `/`-separated, no `.`/`..`/empty parts, no
/// backslash or control character.
pub fn is_safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.contains('\\')
                && !part.chars().any(char::is_control)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: &str) -> Artifact {
        Artifact {
            path: path.to_owned(),
            size: 3,
            sha256: "ab".repeat(32),
        }
    }

    fn release(version: &str, platform: &str) -> Release {
        Release {
            id: "python".to_owned(),
            version: version.parse().unwrap(),
            platform: platform.to_owned(),
            manifest: artifact("python/1.0.0/linux-x86_64/python.yaml"),
            executable: artifact("python/1.0.0/linux-x86_64/backend"),
            files: None,
        }
    }

    #[test]
    fn adding_replaces_the_same_release_and_keeps_order() {
        let mut index = Index::new();
        index.add(release("1.1.0", "linux-x86_64"));
        index.add(release("1.0.0", "linux-x86_64"));
        index.add(release("1.0.0", "linux-aarch64"));
        let mut again = release("1.1.0", "linux-x86_64");
        again.executable.size = 9;
        index.add(again);
        let shown: Vec<String> = index.releases.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "python 1.0.0 linux-aarch64",
                "python 1.0.0 linux-x86_64",
                "python 1.1.0 linux-x86_64"
            ]
        );
        assert_eq!(index.releases[2].executable.size, 9);
        let id = BackendId::new("python").unwrap();
        assert_eq!(
            index
                .latest(&id, "linux-x86_64", &[])
                .unwrap()
                .version
                .to_string(),
            "1.1.0"
        );
        assert!(index.latest(&id, "macos-aarch64", &[]).is_none());
        assert_eq!(Index::parse(&index.to_bytes()).unwrap(), index);
    }

    #[test]
    fn the_latest_release_skips_bad_versions() {
        let mut index = Index::new();
        for v in ["1.0.0", "1.1.0", "1.2.0"] {
            index.add(release(v, "linux-x86_64"));
        }
        let id = BackendId::new("python").unwrap();
        let latest = |bad: &[&str]| {
            let bad: Vec<semver::Version> = bad.iter().map(|v| v.parse().unwrap()).collect();
            index
                .latest(&id, "linux-x86_64", &bad)
                .map(|r| r.version.to_string())
        };
        assert_eq!(latest(&["1.1.0"]).as_deref(), Some("1.2.0"));
        assert_eq!(latest(&["1.2.0"]).as_deref(), Some("1.1.0"));
        assert_eq!(latest(&["1.1.0", "1.2.0"]).as_deref(), Some("1.0.0"));
        assert_eq!(latest(&["1.0.0", "1.1.0", "1.2.0"]), None);
    }

    #[test]
    fn a_path_out_of_the_feed_is_refused() {
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "", "a/\n"] {
            let mut index = Index::new();
            let mut r = release("1.0.0", "linux-x86_64");
            r.executable.path = bad.to_owned();
            index.releases.push(r);
            let err = Index::parse(&index.to_bytes()).unwrap_err().to_string();
            assert!(err.contains("executable: path"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let mut r = release("1.0.0", "plan9-mips");
        let index = |r: &Release| Index {
            format: FORMAT,
            releases: vec![r.clone()],
        };
        let err = Index::parse(&index(&r).to_bytes()).unwrap_err().to_string();
        assert!(err.contains("platform \"plan9-mips\""), "{err}");
        r.platform = "linux-x86_64".to_owned();
        r.manifest.sha256 = "XY".to_owned();
        let err = Index::parse(&index(&r).to_bytes()).unwrap_err().to_string();
        assert!(err.contains("manifest: sha256"), "{err}");
        let future = br#"{"format": 2, "releases": []}"#;
        assert_eq!(Index::parse(future), Err(FeedError::Format(2)));
        assert!(matches!(Index::parse(b"<html>"), Err(FeedError::Syntax(_))));
    }
}
