//! Readiness probes: when a `starting` backend becomes `running`.
//!
//! `stdout_json` is matched by the job on each stdout JSON line; `tcp` and
//! `http` are polled by a small task until they succeed. The HTTP probe is a
//! hand-written HTTP/1.0 GET (one request line, read the status line): a
//! client library would be far more code than the probe.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::logs::JsonLine;

/// Time between two probe attempts.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Longest a single attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);

/// Does `line` contain every key of `want` with the same value?
pub fn subset_match(line: &JsonLine, want: &JsonLine) -> bool {
    want.iter().all(|(k, v)| line.get(k) == Some(v))
}

/// Polls a TCP address until a connect succeeds.
pub async fn poll_tcp(addr: String) {
    loop {
        if let Ok(Ok(_)) = tokio::time::timeout(ATTEMPT, TcpStream::connect(&addr)).await {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Polls an `http://` URL until it answers 2xx.
pub async fn poll_http(url: String) {
    loop {
        if let Ok(Ok(true)) = tokio::time::timeout(ATTEMPT, http_ok(&url)).await {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// `http://host[:port][/path]` split into (`host:port`, host header, path).
pub fn parse_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    let addr = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((addr, authority.to_owned(), path.to_owned()))
}

async fn http_ok(url: &str) -> std::io::Result<bool> {
    let Some((addr, host, path)) = parse_url(url) else {
        return Ok(false);
    };
    let mut stream = TcpStream::connect(&addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    // "HTTP/1.x 200 OK"
    let line = String::from_utf8_lossy(&head);
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok());
    Ok(line.starts_with("HTTP/") && code.is_some_and(|c| (200..300).contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:5000/api/status"),
            Some((
                "127.0.0.1:5000".into(),
                "127.0.0.1:5000".into(),
                "/api/status".into()
            ))
        );
        assert_eq!(
            parse_url("http://localhost"),
            Some(("localhost:80".into(), "localhost".into(), "/".into()))
        );
        assert_eq!(parse_url("https://x"), None);
    }

    #[test]
    fn subset() {
        let line: JsonLine = serde_json::from_str(r#"{"status":"ready","port":5}"#).unwrap();
        let want: JsonLine = serde_json::from_str(r#"{"status":"ready"}"#).unwrap();
        let other: JsonLine = serde_json::from_str(r#"{"status":"busy"}"#).unwrap();
        assert!(subset_match(&line, &want));
        assert!(!subset_match(&line, &other));
    }
}
