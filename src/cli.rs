//! The command line: clap definitions and dispatch. One file per subcommand
//! under `cli/`; each returns the process exit code or an error that `main`
//! prints in one line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::verb::Verb;

pub use crate::manifest::scalar::parse_size;

mod autostart;
mod check;
mod client;
pub mod completions;
mod hash;
mod keygen;
mod logs;
mod new;
mod pin;
mod release;
pub(crate) mod run;
mod schema;
mod sign;
mod talk;
mod update;
mod watch;

/// A failure with a specific exit code (2 for usage errors and "no launcher").
/// Any other error exits 1.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: 2,
            message: message.into(),
        }
        .into()
    }
}

/// The FILES, ENVIRONMENT and EXIT STATUS of `berth --help` and berth(1).
const AFTER_LONG_HELP: &str = "\
Files:
  ~/.config/berth/backends        the user's backends folder
  /usr/lib/berth/backends         the installed backends
  ~/.local/state/berth/logs/      each backend's log, ID.log
  ~/.local/state/berth/berth.log  berth's own log
  $XDG_RUNTIME_DIR/berth/         the control socket, berth.sock

Environment:
  BERTH_BACKENDS   backends folders, colon separated
  BERTH_SOCKET     the control socket
  BERTH_APP        the instance (--app): its files are under NAME, not berth
  BERTH_RESOURCES  what ${resources} means in manifests
  RUST_LOG         filters berth's own log (e.g. debug)

Exit status:
  0 ok; 1 a problem found or an action refused;
  2 a usage error, a missing file or folder, no launcher.";

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A desktop launcher that hosts backends",
    long_about = "A desktop launcher that hosts backends: executables (a PyInstaller-packaged \
Python server first of all) described by YAML manifests in a backends folder. berth verifies \
each executable's SHA-256 before every launch, hot-reloads the folder, supervises process \
groups, captures logs, detects readiness, restarts with backoff, and shows one tray submenu \
per backend. The other commands talk to the running launcher over its control socket.",
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The launcher's control socket.
    #[arg(long, global = true, env = "BERTH_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The instance: an app's own launcher, with its own socket, logs, data,
    /// backends folder, trusted keys and autostart entry under NAME.
    #[arg(
        long,
        global = true,
        env = "BERTH_APP",
        value_name = "NAME",
        default_value = crate::paths::DEFAULT_APP
    )]
    pub app: crate::paths::AppName,

    #[command(subcommand)]
    pub command: Command,
}

/// `--backends DIR`..., else `BERTH_BACKENDS`, else `./backends`, else the
/// user folder plus the installed one ([`crate::folders`]).
#[derive(Debug, Clone, Args)]
pub struct BackendsArg {
    /// A folder of backend manifests (repeatable; default: BERTH_BACKENDS,
    /// colon separated, else ./backends, else the user and installed folders).
    #[arg(long = "backends", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

impl BackendsArg {
    pub fn folders(&self, app: &crate::paths::AppName) -> crate::folders::Folders {
        crate::folders::Folders::choose(&self.dirs, app)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the launcher (tray unless --headless).
    Run(RunArgs),
    /// Validate every manifest and verify every checksum and signature.
    Check {
        /// The folders to check (default: the backends folders `run` reads).
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        signatures: SignaturesArg,
    },
    /// Print the SHA-256 of a file, or the tree digest of a folder.
    Hash {
        #[arg(value_name = "FILE|DIR")]
        path: PathBuf,
    },
    /// Make a minisign key pair without a password: NAME.key (0600) and NAME.pub.
    Keygen {
        name: String,
        /// Where to write the two files.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a manifest with a minisign secret key: writes MANIFEST.minisig.
    Sign {
        manifest: PathBuf,
        /// The secret key (`berth keygen` or `minisign -G`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Publish a release of a manifest's version into a folder any web server can serve.
    Release {
        manifest: PathBuf,
        /// The secret key that signs the manifest and the index.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The release folder: ID/VERSION/PLATFORM/ and the signed index.json.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Install the version a backend's feed offers (through the running launcher).
    Update {
        id: String,
        /// Only look: print what the feed offers (exit 0, also when up to date).
        #[arg(long, conflicts_with = "rollback")]
        check: bool,
        /// Go back to the version kept before the installed one.
        #[arg(long)]
        rollback: bool,
        /// Where --check looks when no launcher runs.
        #[command(flatten)]
        backends: BackendsArg,
    },
    /// Write the current digests of ID's executable (and `files` tree) into its manifest.
    Pin {
        id: String,
        #[command(flatten)]
        backends: BackendsArg,
    },
    /// Print the JSON Schema of the manifest (or of the control protocol, or of `status --json`).
    Schema {
        /// The control socket's requests, replies and events instead.
        #[arg(long, conflicts_with = "status")]
        protocol: bool,
        /// The array `berth status --json` prints instead.
        #[arg(long)]
        status: bool,
    },
    /// Show every backend of the running launcher.
    Status {
        /// One JSON array instead of a table (with --watch: the array as
        /// one line, then each event's JSON line).
        #[arg(long)]
        json: bool,
        /// Keep going: a row (or a JSON line) per change, from the
        /// launcher's event stream, until it quits.
        #[arg(long)]
        watch: bool,
    },
    /// Start a backend and wait until it is running.
    Start {
        id: String,
        /// Appended to the manifest's args for this run only (after `--`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Stop a backend and wait until its processes are gone.
    Stop { id: String },
    /// Restart a backend and wait until it is running.
    Restart {
        id: String,
        /// Appended to the manifest's args for this run only (after `--`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Write one JSON line to a backend's stdin.
    Send {
        id: String,
        /// The JSON value to send (written compact, plus a newline).
        json: String,
        /// Print the first later stdout JSON object whose KEY equals VALUE.
        #[arg(long, value_name = "KEY=VALUE")]
        wait: Option<String>,
        /// How long --wait waits (like 5s or 500ms).
        #[arg(long, value_name = "DUR", default_value = "5s")]
        timeout: String,
    },
    /// Run one of a backend's manifest actions by label, as the tray does.
    Action { id: String, label: String },
    /// Print a backend's log (works without a launcher).
    Logs {
        id: String,
        /// Keep printing new lines, across rotation.
        #[arg(short, long)]
        follow: bool,
        /// Print only the last N lines.
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
    },
    /// Start the tray at login (an XDG autostart entry).
    Autostart {
        #[command(subcommand)]
        action: AutostartAction,
    },
    /// Write a minimal manifest for an executable into the backends folder.
    New {
        /// The new backend's id: a-z, 0-9 and '-', like `python`.
        id: String,
        /// The executable; its digest is pinned in the manifest.
        #[arg(long, value_name = "PATH")]
        exe: PathBuf,
        /// Where to write ID.yaml (default: the user's backends folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The tray label (default: the id).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print shell completions (bash, zsh or fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AutostartAction {
    /// Write $XDG_CONFIG_HOME/autostart/berth.desktop.
    Enable {
        /// Folders the login run uses (default: none, so the default folders).
        #[arg(long = "backends", value_name = "DIR")]
        backends: Vec<PathBuf>,
    },
    /// Remove the entry.
    Disable,
    /// Say whether berth starts at login.
    Status,
}

/// `berth run`'s arguments; [`RunArgs::options`] turns them into the
/// launcher's own [`crate::launcher::Options`].
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub backends: BackendsArg,
    /// No tray: serve the control socket only.
    #[arg(long)]
    pub headless: bool,
    /// Rotate a backend log (and berth.log) past this size (e.g. 10MB, 512KiB; at least 64KiB).
    #[arg(long, default_value = "10MB", value_parser = parse_log_size, value_name = "SIZE")]
    pub log_max_size: u64,
    /// Rotated logs to keep per backend and for berth.log (0 to 100).
    #[arg(long, default_value_t = 3, value_parser = parse_backups, value_name = "N")]
    pub log_backups: u32,
    /// No desktop notifications when a backend crashes or fails its checks.
    #[arg(long)]
    pub no_notify: bool,
    /// Quit (stopping every backend) when the process that started berth
    /// ends, however it ends; exit 2 if it is already gone.
    #[arg(long)]
    pub with_parent: bool,
    /// The parent's pid as observed by `berth` before it exec'd `berth-tray`.
    #[arg(long, hide = true, requires = "with_parent", value_name = "PID")]
    pub parent_pid: Option<i32>,
    /// The tray item's name: tooltip, the menu's first line (default: the app's name).
    #[arg(long, value_parser = parse_title, value_name = "TEXT")]
    pub title: Option<String>,
    /// A PNG the tray shows instead of berth's icon, with the state as a small badge.
    #[arg(long, value_name = "FILE.png")]
    pub icon: Option<PathBuf>,
    #[command(flatten)]
    pub signatures: SignaturesArg,
}

impl RunArgs {
    /// What the launcher of the instance `app` is asked to do.
    pub fn options(&self, app: &crate::paths::AppName) -> crate::launcher::Options {
        crate::launcher::Options {
            app: app.clone(),
            folders: self.backends.folders(app),
            headless: self.headless,
            log_max_size: self.log_max_size,
            log_backups: self.log_backups,
            notify: !self.no_notify,
            require_signatures: self.signatures.require,
            title: self.title.clone(),
            icon: self.icon.clone(),
            parent: self.with_parent.then(|| {
                self.parent_pid
                    .unwrap_or_else(crate::launcher::parent::observe)
            }),
        }
    }
}

/// `--require-signatures` / `BERTH_REQUIRE_SIGNATURES=1`.
#[derive(Debug, Clone, Copy, Args)]
pub struct SignaturesArg {
    /// Run only manifests signed by a trusted key (minisign); others are untrusted.
    #[arg(
        long = "require-signatures",
        env = "BERTH_REQUIRE_SIGNATURES",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub require: bool,
}

pub use crate::embed::{MAX_LOG_BACKUPS, MIN_LOG_SIZE};

fn parse_log_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes < MIN_LOG_SIZE {
        return Err(format!(
            "{text:?} is too small: the smallest log size is 64KiB"
        ));
    }
    Ok(bytes)
}

fn parse_backups(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n <= MAX_LOG_BACKUPS => Ok(n),
        Ok(_) => Err(format!(
            "{text:?} is too many: keep at most {MAX_LOG_BACKUPS} backups"
        )),
        Err(_) => Err(format!(
            "{text:?} is not a whole number from 0 to {MAX_LOG_BACKUPS}"
        )),
    }
}

/// Longest `--title`, in characters: a panel's tooltip and a menu line.
const MAX_TITLE: usize = 64;

/// `--title`: one line of text a panel can show.
fn parse_title(text: &str) -> Result<String, String> {
    let title = text.trim();
    if title.is_empty() {
        Err("the title is empty".to_owned())
    } else if title.chars().any(char::is_control) {
        Err(format!(
            "{text:?} has a control character (a title is one line)"
        ))
    } else if title.chars().count() > MAX_TITLE {
        Err(format!("{text:?} is longer than {MAX_TITLE} characters"))
    } else {
        Ok(title.to_owned())
    }
}

/// Entry point of the `berth` executable: no tray linked in.
pub fn main() -> ExitCode {
    main_with(None)
}

/// Entry point of an executable that can show `frontend` (`berth-tray`).
pub fn main_with(frontend: Option<crate::launcher::Frontend>) -> ExitCode {
    // The guardian is internal, not a subcommand: clap's completions would
    // offer even a hidden one.
    if let Some(code) = crate::embed::run_guardian_if_asked() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A bad option value is one line naming the option, like every
            // other berth error; clap adds a usage hint on further lines.
            if matches!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::InvalidValue
            ) {
                let text = e.render().to_string();
                // A value that holds a line break (`--title $'a\nb'`) stays
                // on the one line, so the reason after it is not lost.
                let line = match e.kind() {
                    clap::error::ErrorKind::ValueValidation => text
                        .split("\n\n")
                        .next()
                        .unwrap_or_default()
                        .replace('\n', "\\n"),
                    _ => text.lines().next().unwrap_or_default().to_owned(),
                };
                eprintln!("berth: {}", line.trim_start_matches("error: "));
                return ExitCode::from(2);
            }
            // clap prints help/version to stdout and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if !matches!(cli.command, Command::Run(_)) {
        die_quietly_on_broken_pipe();
    }
    match dispatch(cli, frontend) {
        Ok(code) => code,
        Err(err) => {
            let code = err.downcast_ref::<Exit>().map_or(1, |e| e.code);
            eprintln!("berth: {}", one_line(&chain(&err)));
            ExitCode::from(code)
        }
    }
}

/// `berth schema | head` must end quietly, as any Unix filter does, not
/// panic in `println!`. Rust ignores SIGPIPE by default; the one-shot
/// commands restore the default action. The launcher and the guardian keep
/// ignoring it: a client hanging up must never kill them.
fn die_quietly_on_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: called before any thread is started by these commands; setting
    // a signal's disposition to its default has no other precondition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, `: `-joined, leaving out a cause whose text is
/// already part of the message: typed errors often quote their source
/// (`talking to ...: Broken pipe`), and anyhow's `{:#}` would print it again.
fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Errors are printed on one line, whatever a library put into them.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn dispatch(cli: Cli, frontend: Option<crate::launcher::Frontend>) -> anyhow::Result<ExitCode> {
    let app = cli.app;
    let socket = cli
        .socket
        .unwrap_or_else(|| crate::paths::default_socket(&app));
    match cli.command {
        Command::Run(args) => run::run(args, &app, socket, frontend),
        Command::Check { dirs, signatures } => check::run(
            &crate::folders::Folders::choose(&dirs, &app),
            signatures.require,
            &app,
        ),
        Command::Hash { path } => hash::run(&path),
        Command::Keygen { name, dir, force } => keygen::run(&name, &dir, force, &app),
        Command::Sign { manifest, key } => sign::run(&manifest, &key),
        Command::Release { manifest, key, out } => release::run(&manifest, &key, &out),
        Command::Update {
            id,
            check,
            rollback,
            backends,
        } => {
            let verb = match (check, rollback) {
                (true, _) => Verb::CheckUpdate,
                (_, true) => Verb::Rollback,
                _ => Verb::Update,
            };
            update::run(&socket, &id, verb, &backends.folders(&app), &app)
        }
        Command::Pin { id, backends } => pin::run(&id, &backends.folders(&app), &app),
        Command::Schema { protocol, status } => schema::run(match (protocol, status) {
            (true, _) => schema::Which::Protocol,
            (_, true) => schema::Which::Status,
            _ => schema::Which::Manifest,
        }),
        Command::Status { json, watch: true } => watch::run(&socket, json),
        Command::Status { json, watch: false } => client::status(&socket, json),
        Command::Start { id, args } => client::command(&socket, &id, Verb::Start { args }),
        Command::Stop { id } => client::command(&socket, &id, Verb::Stop),
        Command::Restart { id, args } => client::command(&socket, &id, Verb::Restart { args }),
        Command::Send {
            id,
            json,
            wait,
            timeout,
        } => talk::send(&socket, &id, &json, wait.as_deref(), &timeout),
        Command::Action { id, label } => talk::action(&socket, &id, &label),
        Command::Logs { id, follow, lines } => logs::run(&id, follow, lines, &app),
        Command::Autostart { action } => autostart::run(action, &app),
        Command::New { id, exe, dir, name } => new::run(new::NewArgs { id, exe, dir, name }, &app),
        Command::Completions { shell } => completions::run(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("MB").is_err());
        assert_eq!(parse_log_size("64KiB"), Ok(64 << 10));
        assert!(
            parse_log_size("1")
                .unwrap_err()
                .contains("smallest log size is 64KiB")
        );
        assert_eq!(parse_backups("100"), Ok(100));
        assert!(
            parse_backups("1000000")
                .unwrap_err()
                .contains("at most 100")
        );
    }

    // The CLI printed "Broken pipe (os error 32): Broken pipe (os error 32)".
    #[test]
    fn a_quoted_cause_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = crate::client::ClientError::Io {
            path: "/run/berth.sock".into(),
            source: io,
        };
        let text = chain(&anyhow::Error::from(err).context("asking for status"));
        assert_eq!(
            text,
            "asking for status: talking to the launcher on /run/berth.sock: broken pipe"
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
