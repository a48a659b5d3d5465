//! A real HTTP(S) server on 127.0.0.1 for the download tests: one thread
//! per connection, each request answered by a scripted [`Reply`], some of
//! them hostile (silent, dribbling, longer than announced, endless).
//! https uses rustls with a certificate from [`super::tls`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with the body and its Content-Length.
    Body(Vec<u8>),
    /// 200 announcing `announced` bytes in Content-Length, then `body`.
    Announced { announced: u64, body: Vec<u8> },
    /// 200 with no Content-Length, the body delimited by closing.
    Unsized(Vec<u8>),
    /// 200 with no Content-Length and zeros for as long as the client reads.
    Endless,
    /// 302 to `Location`.
    Redirect(String),
    /// Another status, empty body.
    Status(u16),
    /// Accepts, reads the request and sends nothing.
    Silent,
    /// Headers, then nothing.
    SilentAfterHeaders,
    /// Headers announcing `size` bytes, then one byte every `every`.
    Dribble { size: u64, every: Duration },
}

/// The server; stops accepting when dropped (threads serving a silent or
/// dribbling reply end with it).
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    stop: Arc<AtomicBool>,
    /// Body bytes written to clients so far (to see a cut).
    pub sent: Arc<AtomicU64>,
}

type Route = dyn Fn(&str) -> Reply + Send + Sync;

impl Server {
    /// Plain http on 127.0.0.1.
    pub fn http(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        Self::start(None, Arc::new(route))
    }

    /// https on 127.0.0.1 with `tls`'s certificate.
    pub fn https(
        tls: Arc<rustls::ServerConfig>,
        route: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start(Some(tls), Arc::new(route))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, route: Arc<Route>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (stopping, counting) = (stop.clone(), sent.clone());
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let (tls, route) = (tls.clone(), route.clone());
                let (stop, sent) = (stopping.clone(), counting.clone());
                thread::spawn(move || {
                    let conn = Conn { stop, sent };
                    match tls {
                        None => conn.serve(tcp, &*route),
                        Some(config) => {
                            let Ok(server) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            conn.serve(rustls::StreamOwned::new(server, tcp), &*route);
                        }
                    }
                });
            }
        });
        Self {
            addr,
            scheme,
            stop,
            sent,
        }
    }

    /// `scheme://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("{}://{}{path}", self.scheme, self.addr)).unwrap()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

struct Conn {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

impl Conn {
    fn serve(&self, stream: impl Read + Write, route: &Route) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return; // a refused handshake ends here
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => return,
                Ok(_) if header == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let mut out = reader.into_inner();
        let _ = self.reply(&mut out, route(&path));
        let _ = out.flush();
    }

    fn reply(&self, out: &mut impl Write, reply: Reply) -> std::io::Result<()> {
        let head = |status: &str, length: Option<u64>, extra: &str| {
            let length = length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
            format!("HTTP/1.1 {status}\r\n{length}{extra}Connection: close\r\n\r\n")
        };
        match reply {
            Reply::Body(body) => {
                out.write_all(head("200 OK", Some(body.len() as u64), "").as_bytes())?;
                self.body(out, &body)
            }
            Reply::Announced { announced, body } => {
                out.write_all(head("200 OK", Some(announced), "").as_bytes())?;
                self.body(out, &body)
            }
            Reply::Unsized(body) => {
                out.write_all(head("200 OK", None, "").as_bytes())?;
                self.body(out, &body)
            }
            Reply::Endless => {
                out.write_all(head("200 OK", None, "").as_bytes())?;
                let zeros = vec![0u8; 64 * 1024];
                while !self.stopped() {
                    self.body(out, &zeros)?;
                }
                Ok(())
            }
            Reply::Redirect(to) => {
                let location = format!("Location: {to}\r\n");
                out.write_all(head("302 Found", Some(0), &location).as_bytes())
            }
            Reply::Status(code) => {
                out.write_all(head(&format!("{code} Nope"), Some(0), "").as_bytes())
            }
            Reply::Silent => {
                self.hold();
                Ok(())
            }
            Reply::SilentAfterHeaders => {
                out.write_all(head("200 OK", Some(1024), "").as_bytes())?;
                out.flush()?;
                self.hold();
                Ok(())
            }
            Reply::Dribble { size, every } => {
                out.write_all(head("200 OK", Some(size), "").as_bytes())?;
                for _ in 0..size {
                    if self.stopped() {
                        break;
                    }
                    self.body(out, b"x")?;
                    out.flush()?;
                    thread::sleep(every);
                }
                Ok(())
            }
        }
    }

    fn body(&self, out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
        out.write_all(bytes)?;
        self.sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Keeps the connection open, sending nothing, until the server stops.
    fn hold(&self) {
        while !self.stopped() {
            thread::sleep(Duration::from_millis(50));
        }
    }
}
