//! `update`: where a backend's signed releases are published (v3, DESIGN.md
//! "Updates"). Only `feed` for now: `check`, `auto` and `probation` come
//! with the behaviour that reads them (a field that parses but does
//! nothing would mislead).
//!
//! The feed is untrusted, and so is its URL's route: it must be https, or
//! plain http to a loopback address written as an IP literal (a name,
//! `localhost` included, resolves wherever /etc/hosts or DNS says). The
//! check runs while serde visits the value, so its error has a line and a
//! column like every other field's.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Deserialize;
use url::{Host, Url};

use super::scalar::{Scalar, scalar};

/// A validated `update` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSpec {
    /// The feed's folder URL, ending in `/` so files join below it.
    pub feed: Url,
    /// Set by the registry when the definition in force is an installed
    /// update: the version of the id's own manifest in the backends folders,
    /// whose `update` section this is (it governs the installed versions
    /// too). `None`: the definition is that manifest itself.
    pub shipped: Option<semver::Version>,
}

/// `update`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with feed")]
pub struct RawUpdate {
    /// The folder URL `berth release` output is served from: https, or http for a loopback address only.
    pub feed: FeedUrl,
}

impl From<RawUpdate> for UpdateSpec {
    fn from(raw: RawUpdate) -> Self {
        Self {
            feed: raw.feed.0,
            shipped: None,
        }
    }
}

/// `update.feed`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedUrl(pub Url);

impl Scalar for FeedUrl {
    const EXPECTING: &'static str = "an https:// folder URL";
    fn parse(text: &str) -> Result<Self, String> {
        let mut url = Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if plain_http_allowed(&url) => {}
            "http" => {
                return Err(format!(
                    "{text:?}: http is allowed only for a loopback address (127.0.0.1, [::1]); use https"
                ));
            }
            _ => {
                return Err(format!(
                    "invalid URL {text:?}: expected an https:// URL (http:// only for a loopback address)"
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{text:?}: a feed URL carries no user name or password"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?}: a feed URL is a folder: no ?query or #fragment"
            ));
        }
        // A folder: `index.json` joins below it, not beside it.
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }
}

scalar!(FeedUrl, "FeedUrl", {
    "type": "string",
    "pattern": "^(https://[^/?#\\s@]+|http://(127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[::1\\])(:[0-9]{1,5})?)(/[^?#\\s]*)?$",
    "description": "The feed's folder URL: https, or http for a loopback address only (127.0.0.1, [::1])."
});

/// Whether plain http may reach `url`'s host: only a loopback IP literal.
pub fn plain_http_allowed(url: &Url) -> bool {
    let ip: IpAddr = match url.host() {
        Some(Host::Ipv4(ip)) => ip.into(),
        Some(Host::Ipv6(ip)) => ip.to_canonical(),
        _ => return false,
    };
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_urls() {
        let ok = |t: &str| FeedUrl::parse(t).unwrap().0.to_string();
        assert_eq!(
            ok("https://example.org/acme/python"),
            "https://example.org/acme/python/"
        );
        assert_eq!(ok("https://example.org/acme/"), "https://example.org/acme/");
        assert_eq!(
            ok("http://127.0.0.1:8000/feed/"),
            "http://127.0.0.1:8000/feed/"
        );
        assert_eq!(ok("http://127.1.2.3/"), "http://127.1.2.3/");
        assert_eq!(ok("http://[::1]:9/"), "http://[::1]:9/");
        let err = |t: &str| FeedUrl::parse(t).unwrap_err();
        for t in [
            "http://example.org/",
            "http://localhost/",
            "http://10.0.0.1/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert!(
                err(t).contains("only for a loopback address"),
                "{t}: {}",
                err(t)
            );
        }
        assert!(err("ftp://example.org/").contains("expected an https:// URL"));
        assert!(err("example.org/feed").contains("invalid URL"));
        assert!(err("https://u:p@example.org/").contains("no user name"));
        assert!(err("https://example.org/?x=1").contains("no ?query"));
    }
}
