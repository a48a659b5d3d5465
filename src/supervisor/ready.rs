//! Readiness probes: when a `starting` backend becomes `running`.
//!
//! `stdout_json` is matched by the job on each stdout JSON line, `notify` on
//! an sd_notify `READY=1`; `uptime` is a sleep; `tcp` and `http` are polled by
//! a small task until they succeed. The HTTP probe is a hand-written HTTP/1.0
//! GET (one request line, read the status line): a client library would be
//! far more code than the probe. The same single attempts serve the health
//! checks (`super::health`), so they return why they failed.
//!
//! Polling starts a millisecond after spawn and backs off with the time
//! already waited (a sixteenth of it, between 1 ms and 5 ms): a server
//! that listens after 40 ms is seen within about 3 ms, any later one within
//! 5 ms. A cap of 50 ms was measured first (benches/probe.rs): a Python
//! server that took 450 ms to listen on a loaded machine was seen 17 ms
//! late at the median. A refused connect on loopback costs microseconds, so
//! 200 attempts a second until the ready timeout are cheap. Past the ready
//! timeout the probe keeps going (a late match still counts) once a second.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::logs::JsonLine;

/// Shortest and longest time between two attempts while within the timeout.
const FIRST: Duration = Duration::from_millis(1);
const MOST: Duration = Duration::from_millis(5);
/// Time between two attempts once the ready timeout has passed.
const LATE: Duration = Duration::from_secs(1);
/// Longest a single attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);

/// Does `line` contain every key of `want` with the same value?
pub fn subset_match(line: &JsonLine, want: &JsonLine) -> bool {
    want.iter().all(|(k, v)| line.get(k) == Some(v))
}

/// The wait before the next attempt, `waited` after the probe began.
pub fn next_delay(waited: Duration, timeout: Duration) -> Duration {
    if waited >= timeout {
        LATE
    } else {
        (waited / 16).clamp(FIRST, MOST)
    }
}

/// Polls a TCP address until a connect succeeds.
pub async fn poll_tcp(addr: String, timeout: Duration) {
    poll(timeout, || tcp_ok(&addr, ATTEMPT)).await;
}

/// Polls an `http://` URL until it answers 2xx.
pub async fn poll_http(url: String, timeout: Duration) {
    poll(timeout, || http_ok(&url, &[], ATTEMPT)).await;
}

async fn poll<F, Fut>(timeout: Duration, attempt: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let began = Instant::now();
    loop {
        tokio::time::sleep(next_delay(began.elapsed(), timeout)).await;
        if attempt().await.is_ok() {
            return;
        }
    }
}

/// One TCP connect, within `limit`; the error says why it failed.
pub async fn tcp_ok(addr: &str, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("tcp {addr}: {e}")),
        Err(_) => Err(format!(
            "tcp {addr}: no answer within {}",
            crate::human::as_written(limit)
        )),
    }
}

/// One GET with `headers`, within `limit`: `Ok` for a 2xx answer; the
/// error says why not (never with a header: one may carry the token).
pub async fn http_ok(
    url: &str,
    headers: &[(String, String)],
    limit: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(limit, http_status(url, headers)).await {
        Ok(Ok(code)) if (200..300).contains(&code) => Ok(()),
        Ok(Ok(code)) => Err(format!("GET {url}: HTTP {code}")),
        Ok(Err(e)) => Err(format!("GET {url}: {e}")),
        Err(_) => Err(format!(
            "GET {url}: no answer within {}",
            crate::human::as_written(limit)
        )),
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

/// The status code of a GET of `url`.
async fn http_status(url: &str, headers: &[(String, String)]) -> std::io::Result<u16> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let Some((addr, host, path)) = parse_url(url) else {
        return Err(bad("not an http:// URL"));
    };
    let mut stream = TcpStream::connect(&addr).await?;
    // Names and values were checked by the manifest (no CR, LF or other
    // control characters), so none can start a header of its own.
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
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
    line.starts_with("HTTP/")
        .then(|| line.split_whitespace().nth(1)?.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| bad("the answer is not HTTP"))
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
    fn polling_starts_fast_and_backs_off() {
        let t = Duration::from_secs(15);
        assert_eq!(next_delay(Duration::ZERO, t), Duration::from_millis(1));
        assert_eq!(
            next_delay(Duration::from_millis(40), t),
            Duration::from_millis(2) + Duration::from_micros(500)
        );
        assert_eq!(
            next_delay(Duration::from_millis(200), t),
            Duration::from_millis(5)
        );
        assert_eq!(
            next_delay(Duration::from_secs(2), t),
            Duration::from_millis(5)
        );
        assert_eq!(
            next_delay(Duration::from_secs(15), t),
            Duration::from_secs(1)
        );
    }

    #[tokio::test]
    async fn single_attempts_say_why_they_failed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")
                .await
                .unwrap();
        });
        let url = format!("http://{addr}/x");
        assert_eq!(
            http_ok(&url, &[], ATTEMPT).await,
            Err(format!("GET {url}: HTTP 503"))
        );
        server.await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(tcp_ok(&addr, ATTEMPT).await, Ok(()));
        // Nothing listens on port 1 of loopback.
        let err = tcp_ok("127.0.0.1:1", ATTEMPT).await.unwrap_err();
        assert!(
            err.starts_with("tcp 127.0.0.1:1: Connection refused"),
            "{err}"
        );
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
