//! What berth gives each run before it starts (v3): a free TCP port
//! (`port: auto`) and a fresh secret (`token: true`).
//!
//! Both are chosen per run, never per backend: a restart must not inherit a
//! port somebody else took meanwhile, and a secret that outlives its run is
//! one more thing to leak. The port is found by binding `127.0.0.1:0` and
//! letting it go again, so another program can take it before the backend
//! binds it: that backend exits, and its restart (which needs the policy to
//! allow one) asks again. The previous run's port is tried first, so a
//! bookmarked URL keeps working across restarts while it can.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use ct_codecs::{Base64UrlSafeNoPadding, Encoder as _};

/// Bytes of randomness in a token: 256 bits.
pub const TOKEN_BYTES: usize = 32;

/// Why a run's port or token could not be given.
#[derive(Debug, thiserror::Error)]
pub enum GivenError {
    #[error("port: auto: no free TCP port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("token: true: no randomness from the system: {0}")]
    Token(getrandom::Error),
}

/// A run's secret: URL-safe base64 of 256 random bits. Its `Debug` hides
/// it, so a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh token from the operating system's random source.
    pub fn new() -> Result<Self, GivenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(GivenError::Token)?;
        let text = Base64UrlSafeNoPadding::encode_to_string(bytes)
            .expect("32 bytes always encode to 43 characters");
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// A free port on 127.0.0.1: `previous` if it can be bound now, else one
/// the kernel picks.
pub fn free_port(previous: Option<u16>) -> Result<u16, GivenError> {
    let bind = |port| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let listener = match previous.map(bind) {
        Some(Ok(l)) => l,
        _ => bind(0).map_err(GivenError::Port)?,
    };
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(GivenError::Port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_of_url_safe_text_and_never_repeat() {
        let a = Token::new().unwrap();
        let b = Token::new().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert!(
            a.as_str()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{}",
            a.as_str()
        );
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn a_free_previous_port_is_kept_and_a_taken_one_replaced() {
        let port = free_port(None).unwrap();
        assert_eq!(free_port(Some(port)).unwrap(), port);
        let holder = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let other = free_port(Some(port)).unwrap();
        assert_ne!(other, port);
        drop(holder);
    }
}
