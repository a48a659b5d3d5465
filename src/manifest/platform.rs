//! Platform keys of `executable`: `<os>-<arch>` or `<os>`, the most specific
//! key that matches the running system wins.
//!
//! Kept apart from the serde types because `berth pin` must pick the same
//! entry while reading a file that does not validate yet.

/// Operating systems a key may name (`std::env::consts::OS` spelling).
pub const OSES: [&str; 3] = ["linux", "macos", "windows"];
/// Architectures a key may name (`std::env::consts::ARCH` spelling).
pub const ARCHES: [&str; 2] = ["x86_64", "aarch64"];

/// The platform berth runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    pub fn current() -> Self {
        Self {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    /// The keys that match this platform, most specific first.
    pub fn keys(&self) -> [String; 2] {
        [format!("{}-{}", self.os, self.arch), self.os.to_owned()]
    }

    /// The key of the entry to use among `present` keys, if any matches.
    pub fn choose<'k>(&self, present: impl IntoIterator<Item = &'k str> + Clone) -> Option<String> {
        self.keys()
            .into_iter()
            .find(|k| present.clone().into_iter().any(|p| p == k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_key_wins() {
        let p = Platform {
            os: "linux",
            arch: "x86_64",
        };
        assert_eq!(
            p.choose(["linux", "linux-x86_64"]).as_deref(),
            Some("linux-x86_64")
        );
        assert_eq!(
            p.choose(["linux", "linux-aarch64"]).as_deref(),
            Some("linux")
        );
        assert_eq!(p.choose(["windows", "macos-x86_64"]), None);
        assert_eq!(p.choose([]), None);
    }
}
