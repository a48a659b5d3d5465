//! Protocol tests over a real Unix socket, against scripted [`Backends`]
//! (the real supervisor is exercised by the integration tests in `tests/`).

use super::*;
/// Replies read as plain JSON, to check what goes on the wire.
type Reply = crate::control::protocol::Reply<serde_json::Value>;
use std::time::Instant;
use tokio::io::AsyncReadExt;

/// A fake supervisor: backend behaviour is chosen by its id.
#[derive(Clone)]
struct Fake {
    tx: Arc<watch::Sender<Arc<Snapshot>>>,
}

fn status(id: &str, state: State) -> BackendStatus {
    BackendStatus {
        id: Some(id.into()),
        name: Some(id.to_uppercase()),
        version: Some("1.0.0".into()),
        ..BackendStatus::new(format!("/b/{id}.yaml"), state)
    }
}

impl Fake {
    fn new() -> Self {
        let ids = ["good", "crash", "slow", "up", "late", "stuck"];
        let mut snap = Snapshot::default();
        for id in ids {
            let state = if id == "up" {
                State::Running
            } else {
                State::Stopped
            };
            snap.backends.push(status(id, state));
        }
        let (tx, _) = watch::channel(Arc::new(snap));
        Self { tx: Arc::new(tx) }
    }

    fn set(&self, id: &str, f: impl FnOnce(&mut BackendStatus)) {
        self.tx.send_modify(|snap| {
            let mut s = (**snap).clone();
            if let Some(b) = s.backends.iter_mut().find(|b| b.id.as_deref() == Some(id)) {
                f(b);
            }
            *snap = Arc::new(s);
        });
    }
}

impl Fake {
    async fn start(&self, id: &str) -> Result<Outcome, ActionError> {
        let Some(current) = self.snapshot().get(id).cloned() else {
            return Err(ActionError::UnknownId(id.into()));
        };
        if current.state == State::Running {
            return Ok(Outcome::Noop(format!("{id} is already running")));
        }
        if id != "late" {
            self.set(id, |b| b.state = State::Starting);
        }
        let me = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match id.as_str() {
                "good" | "late" => me.set(&id, |b| {
                    b.state = State::Running;
                    b.pid = Some(42);
                }),
                "crash" => me.set(&id, |b| {
                    b.state = State::Exited;
                    b.exit_code = Some(1);
                }),
                "slow" => me.set(&id, |b| b.error = Some("not ready after 1s".into())),
                _ => {}
            }
        });
        Ok(Outcome::Done)
    }
    async fn stop(&self, id: &str) -> Result<Outcome, ActionError> {
        let Some(current) = self.snapshot().get(id).cloned() else {
            return Err(ActionError::UnknownId(id.into()));
        };
        if !current.state.can_stop() {
            return Ok(Outcome::Noop(format!("{id} is not running")));
        }
        self.set(id, |b| b.state = State::Stopped);
        Ok(Outcome::Done)
    }
}

impl Backends for Fake {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }
    async fn command(&self, id: &str, verb: Verb) -> Result<Outcome, ActionError> {
        match verb {
            Verb::Start { .. } => self.start(id).await,
            Verb::Stop => self.stop(id).await,
            Verb::Restart { .. } => {
                self.set(id, |b| b.state = State::Stopped);
                self.start(id).await
            }
            Verb::CheckUpdate | Verb::Update | Verb::Rollback => {
                Err(ActionError::Unsupported(verb.word()))
            }
        }
    }
    async fn start_all(&self) {}
    async fn stop_all(&self) {}
}

struct Server {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server(limits: ClientLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let task = tokio::spawn(async move { serve(&listener, Fake::new(), None, limits).await });
    Server {
        _dir: dir,
        path,
        task,
    }
}

async fn ask(path: &std::path::Path, line: &str) -> Reply {
    let mut s = UnixStream::connect(path).await.unwrap();
    s.write_all(line.as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out).await.unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"))
}

#[tokio::test]
async fn status_lists_every_backend() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"status\"}\n").await;
    assert!(reply.ok);
    let list: Vec<BackendStatus> = serde_json::from_value(reply.data.unwrap()).unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list[3].state, State::Running);
}

#[tokio::test]
async fn start_waits_until_running() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"start\",\"id\":\"good\"}\n").await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.data.unwrap()["state"], "running");
}

#[tokio::test]
async fn start_of_a_crashing_backend_fails_with_the_reason() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"start\",\"id\":\"crash\"}\n").await;
    assert!(!reply.ok);
    assert_eq!(reply.error.as_deref(), Some("crash: exited (code 1)"));
}

#[tokio::test]
async fn readiness_timeout_fails_the_start() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"restart\",\"id\":\"slow\"}\n").await;
    assert_eq!(
        reply.error.as_deref(),
        Some("slow: starting: not ready after 1s")
    );
}

#[tokio::test]
async fn a_start_published_late_is_still_waited_for() {
    // "late" stays stopped in the snapshot for 100 ms after start returns.
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"start\",\"id\":\"late\"}\n").await;
    assert!(reply.ok, "{reply:?}");
}

#[tokio::test]
async fn noops_succeed_with_a_note() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"start\",\"id\":\"up\"}\n").await;
    assert!(reply.ok);
    assert_eq!(reply.note.as_deref(), Some("up is already running"));
    let reply = ask(&s.path, "{\"cmd\":\"stop\",\"id\":\"good\"}\n").await;
    assert!(reply.ok);
    assert_eq!(reply.note.as_deref(), Some("good is not running"));
}

#[tokio::test]
async fn unknown_id_is_an_error_reply() {
    let s = server(ClientLimits::default());
    let reply = ask(&s.path, "{\"cmd\":\"stop\",\"id\":\"nope\"}\n").await;
    assert_eq!(reply.error.as_deref(), Some("no backend with id \"nope\""));
}

#[tokio::test]
async fn garbage_gets_error_replies_on_the_same_connection() {
    let s = server(ClientLimits::default());
    let stream = UnixStream::connect(&s.path).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"garbage\n{\"cmd\":\"dance\"}\n\xff\xfe\n\n{\"cmd\":\"status\"}\n")
        .await
        .unwrap();
    let mut replies = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        replies.push(serde_json::from_str::<Reply>(&line).unwrap());
    }
    assert!(
        replies[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("request is not JSON")
    );
    assert_eq!(
        replies[1].error.as_deref(),
        Some("unknown command \"dance\"")
    );
    assert_eq!(replies[2].error.as_deref(), Some("request is not UTF-8"));
    assert!(
        replies[3].ok,
        "the blank line is skipped and status still works"
    );
}

#[tokio::test]
async fn an_over_long_line_is_refused_and_closed() {
    let s = server(ClientLimits::default());
    let stream = UnixStream::connect(&s.path).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut out = Vec::new();
    let _ = r.read_to_end(&mut out).await; // may end in ECONNRESET: unread data
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "{\"ok\":false,\"error\":\"request line over 68 KiB\"}\n"
    );
    writer.await.unwrap();
    assert!(
        ask(&s.path, "{\"cmd\":\"status\"}\n").await.ok,
        "still serving"
    );
}

#[tokio::test]
async fn a_line_of_exactly_64_kib_is_read() {
    let s = server(ClientLimits::default());
    let mut line = String::from("{\"cmd\":\"status\"}");
    line.push_str(&" ".repeat(MAX_LINE - line.len()));
    line.push('\n');
    assert!(ask(&s.path, &line).await.ok);
}

#[tokio::test]
async fn a_silent_client_is_closed() {
    let s = server(ClientLimits {
        idle: Duration::from_millis(300),
        ..ClientLimits::default()
    });
    let t0 = Instant::now();
    let mut stream = UnixStream::connect(&s.path).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(out.contains("no request for"), "{out}");
}

#[tokio::test]
async fn many_concurrent_clients_are_all_served() {
    let s = server(ClientLimits::default());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let path = s.path.clone();
        tasks.push(tokio::spawn(async move {
            let line = if i % 2 == 0 {
                "{\"cmd\":\"status\"}\n"
            } else {
                "nonsense\n"
            };
            ask(&path, line).await.ok == (i % 2 == 0)
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
}

// 513 idle sockets used to lock every client out for the 10 s idle timeout.
#[tokio::test]
async fn a_full_server_closes_its_longest_idle_client_for_a_new_one() {
    let s = server(ClientLimits {
        max_clients: 2,
        ..ClientLimits::default()
    });
    let mut oldest = UnixStream::connect(&s.path).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _younger = UnixStream::connect(&s.path).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reply = ask(&s.path, "{\"cmd\":\"status\"}\n").await;
    assert!(reply.ok, "{reply:?}");
    let mut out = String::new();
    oldest.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("closing this idle connection"), "{out}");
}

#[tokio::test]
async fn clients_beyond_the_limit_are_told_so_when_none_is_idle() {
    let s = server(ClientLimits {
        max_clients: 1,
        ..ClientLimits::default()
    });
    // A request that never settles keeps its connection busy, not idle.
    let mut busy = UnixStream::connect(&s.path).await.unwrap();
    busy.write_all(b"{\"cmd\":\"start\",\"id\":\"stuck\"}\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = ask(&s.path, "{\"cmd\":\"status\"}\n").await;
    assert_eq!(reply.error.as_deref(), Some("too many clients; try again"));
}

// A watcher sends nothing after its request: the idle limit is for clients
// that owe a request, never for one that listens.
#[tokio::test]
async fn a_silent_watcher_outlives_the_idle_limit_and_hears_the_next_change() {
    let fake = Fake::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let limits = ClientLimits {
        idle: Duration::from_millis(100),
        ..ClientLimits::default()
    };
    let served = fake.clone();
    let task = tokio::spawn(async move { serve(&listener, served, None, limits).await });
    let mut s = UnixStream::connect(&path).await.unwrap();
    s.write_all(b"{\"cmd\":\"watch\"}\n").await.unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let first: Reply = serde_json::from_str(&line).unwrap();
    assert!(first.ok && first.data.unwrap().as_array().unwrap().len() == 6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.set("good", |b| b.state = State::Running);
    line.clear();
    r.read_line(&mut line).await.unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["event"], "status", "{line}");
    assert_eq!(event["backend"]["id"], "good");
    assert_eq!(event["backend"]["state"], "running");
    task.abort();
}
