//! `update`: where a backend's signed releases are published and how berth
//! follows them (v3, DESIGN.md "Updates"): `feed`, the `check` interval,
//! `auto` (apply what a check finds) and the `probation` a new version must
//! survive.
//!
//! The feed is untrusted, and so is its URL's route: it must be https, or
//! plain http to a loopback address written as an IP literal (a name,
//! `localhost` included, resolves wherever /etc/hosts or DNS says). The
//! check runs while serde visits the value, so its error has a line and a
//! column like every other field's.

use std::net::IpAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use url::{Host, Url};

use super::scalar::{PositiveDuration, Scalar, parse_duration, scalar};

/// A validated `update` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSpec {
    /// The feed's folder URL, ending in `/` so files join below it.
    pub feed: Url,
    /// How often a running launcher asks the feed; `None`: only when asked.
    pub check: Option<Duration>,
    /// Apply what a check finds (a running backend restarts into it).
    pub auto: bool,
    /// How long a new version must stay up (running, healthy with `health`)
    /// before it is kept.
    pub probation: Duration,
    /// Set by the registry when the definition in force is an installed
    /// update: the version of the id's own manifest in the backends folders,
    /// whose `update` section this is (it governs the installed versions
    /// too). `None`: the definition is that manifest itself.
    pub shipped: Option<semver::Version>,
}

/// `update.probation` when the manifest gives none.
pub const DEFAULT_PROBATION: Duration = Duration::from_secs(60);

/// `update`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with feed")]
pub struct RawUpdate {
    /// The folder URL `berth release` output is served from: https, or http for a loopback address only.
    pub feed: FeedUrl,
    /// Look for a new version every so often while berth runs (at least 1m, like 6h); default: only when asked.
    pub check: Option<CheckInterval>,
    /// Install what a check finds without asking (a running backend restarts into it); default false.
    #[serde(default)]
    pub auto: bool,
    /// How long a new version must be running (and healthy, with `health`) before it is kept; default 60s.
    pub probation: Option<PositiveDuration>,
}

impl From<RawUpdate> for UpdateSpec {
    fn from(raw: RawUpdate) -> Self {
        Self {
            feed: raw.feed.0,
            check: raw.check.map(|c| c.0),
            auto: raw.auto,
            probation: raw.probation.map_or(DEFAULT_PROBATION, |p| p.0),
            shipped: None,
        }
    }
}

/// The smallest `update.check`: a feed is someone's server, and a new
/// version a minute sooner is worth nothing to anyone.
pub const MIN_CHECK: Duration = Duration::from_secs(60);

/// The smallest `update.check` this process accepts: [`MIN_CHECK`], or in a
/// debug build the `BERTH_TEST_MIN_CHECK` duration, so a test can write
/// `check: 2s` and get exactly that (the manifest still says what happens).
fn min_check() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(d) = std::env::var("BERTH_TEST_MIN_CHECK")
        .ok()
        .and_then(|t| parse_duration(&t).ok())
    {
        return d;
    }
    MIN_CHECK
}

/// `update.check`: a duration of at least [`MIN_CHECK`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckInterval(pub Duration);

impl Scalar for CheckInterval {
    const EXPECTING: &'static str = "a duration of at least 1m, like 6h";
    fn parse(text: &str) -> Result<Self, String> {
        let d = parse_duration(text)?;
        if d < min_check() {
            return Err(format!(
                "check {text:?} is too often: the smallest is 1m (like 6h)"
            ));
        }
        Ok(Self(d))
    }
}

// At least 1 m: 60 or more seconds, 60000 or more milliseconds, or at
// least one m or h (leading zeros allowed, as the parser reads them).
scalar!(CheckInterval, "CheckInterval", {
    "type": "string",
    "pattern": "^0*([1-9][0-9]{5,}ms|[6-9][0-9]{4}ms|[1-9][0-9]{2,}s|[6-9][0-9]s|[1-9][0-9]*(m|h))$",
    "description": "How often to look for a new version while berth runs: a duration of at least 1m (6h, 30m)."
});

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

    #[test]
    fn check_is_at_least_a_minute() {
        if std::env::var_os("BERTH_TEST_MIN_CHECK").is_some() {
            return;
        }
        let ok = |t: &str| CheckInterval::parse(t).unwrap().0;
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("60s"), Duration::from_secs(60));
        assert_eq!(ok("60000ms"), Duration::from_secs(60));
        assert_eq!(ok("6h"), Duration::from_secs(6 * 3600));
        for t in ["59s", "59999ms", "0m", "1s"] {
            assert_eq!(
                CheckInterval::parse(t).unwrap_err(),
                format!("check {t:?} is too often: the smallest is 1m (like 6h)")
            );
        }
        assert!(
            CheckInterval::parse("6")
                .unwrap_err()
                .contains("bare number")
        );
    }

    #[test]
    fn check_schema_agrees_with_the_parser() {
        let schema = CheckInterval::json_schema(&mut schemars::SchemaGenerator::default());
        let schema = serde_json::to_value(schema).unwrap();
        for t in [
            "1m", "60s", "059s", "60000ms", "59999ms", "100s", "99s", "59s", "0m", "1h", "00m",
            "600000ms", "6000ms",
        ] {
            assert_eq!(
                jsonschema::is_valid(&schema, &serde_json::json!(t)),
                CheckInterval::parse(t).is_ok(),
                "{t}"
            );
        }
    }
}
