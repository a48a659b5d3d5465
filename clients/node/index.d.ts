// Types of berth-client. The status and event shapes are those of berth's
// control socket, protocol 1 (docs/PROTOCOL.md in the berth repository):
// within protocol 1 fields are only ever added, so code written against
// these types keeps working with newer launchers.

/** The `code` of every error this package throws or rejects with. */
export type BerthErrorCode =
  /** A function of this package was called with a bad argument. */
  | 'BERTH_USAGE'
  /** launch(): the berth executable could not be started. */
  | 'BERTH_SPAWN'
  /** launch(): berth exited before its socket answered; the message is its last stderr line. */
  | 'BERTH_EXITED'
  /** Nobody listens on the socket (no file, or a stale one). */
  | 'BERTH_NO_LAUNCHER'
  /** The launcher refused (`{"ok": false}`): the message is its one-line `error`; or launch() found a launcher already running. */
  | 'BERTH_REFUSED'
  /** The launcher sent a line that is not a JSON object of the protocol. */
  | 'BERTH_PROTOCOL'
  /** The connection ended before the reply, a stream ended, or the client was closed. */
  | 'BERTH_CLOSED'
  /** The launcher did not answer in time. */
  | 'BERTH_TIMEOUT'
  /** Any other socket error (permissions, ...). */
  | 'BERTH_IO'

export declare const codes: Readonly<{
  USAGE: 'BERTH_USAGE'
  SPAWN: 'BERTH_SPAWN'
  EXITED: 'BERTH_EXITED'
  NO_LAUNCHER: 'BERTH_NO_LAUNCHER'
  REFUSED: 'BERTH_REFUSED'
  PROTOCOL: 'BERTH_PROTOCOL'
  CLOSED: 'BERTH_CLOSED'
  TIMEOUT: 'BERTH_TIMEOUT'
  IO: 'BERTH_IO'
}>

/** Every error of this package: a one-line message and a code. */
export declare class BerthError extends Error {
  constructor(code: BerthErrorCode, message: string, options?: { cause?: unknown })
  name: 'BerthError'
  code: BerthErrorCode
  /** BERTH_EXITED only: berth's exit code (null when a signal ended it). */
  exitCode?: number | null
  /** BERTH_EXITED only: the signal that ended berth, if one did. */
  signal?: string | null
}

/** The state of a backend (DESIGN.md's states table). */
export type BackendState =
  | 'stopped'
  | 'starting'
  | 'running'
  | 'stopping'
  | 'exited'
  | 'backoff'
  | 'failed'
  | 'not-found'
  | 'integrity-failed'
  | 'invalid'
  | 'incompatible'
  | 'unsupported'
  | 'untrusted'
  | 'superseded'

/** One of a manifest's `actions` as the status shows it. */
export interface ActionStatus {
  label: string
  /** Its variables are known and its kind can act in the current state. */
  available: boolean
}

/** One manifest file, as `berth status --json` shows it. */
export interface BackendStatus {
  /** null when the file cannot be parsed. */
  id: string | null
  name: string | null
  version: string | null
  /** The executable path in use (or that would be used). */
  path: string | null
  error: string | null
  /** The `status` value of the last stdout JSON line that had one. */
  status_line: string | null
  /** The signal that ended the last process, e.g. `"SIGKILL"`. */
  signal: string | null
  /** Absolute path of the manifest file. */
  file: string
  state: BackendState
  pid: number | null
  /** Whole seconds. */
  uptime_s: number | null
  rss_bytes: number | null
  exit_code: number | null
  /** Summed over the process group; 100 = one core. */
  cpu_percent: number | null
  ready: boolean
  pending_restart: boolean
  /** Automatic restarts since the last user start. */
  restarts: number
  /** The arguments of the current (else last) run, extra args included; null before any run. */
  args: string[] | null
  /** null when no `health` is set or the backend is not running. */
  healthy: boolean | null
  /** The last stderr line of the last run. */
  last_stderr: string | null
  /** The trusted key that signed the winning file. */
  signed_by: string | null
  /** null (no sandbox asked), `"enforced"` or `"partial: <what is not>"`. */
  sandbox: string | null
  actions: ActionStatus[]
  /** The stdout JSON object that made the backend ready, while it runs. */
  ready_json: Record<string, unknown> | null
  /** The port berth chose for the current run (`port: auto`). */
  port: number | null
  /** The current run's secret (`token: true`). */
  token: string | null
  /** The manifest's `depends_on`: dependency id -> condition. */
  depends_on: Record<string, DependencyCondition>
  /** The dependencies a start is waiting for, in id order; empty unless `starting` and waiting. */
  waiting_for: string[]
  /** Its updates; null without `update` in the manifest. */
  update: UpdateStatus | null
}

/** What berth knows of a backend's updates. */
export interface UpdateStatus {
  /** The version the feed offers above the installed one, if the last check found one. */
  available: string | null
  /** When the feed was last read successfully (RFC 3339, UTC). */
  checked: string | null
  /** The version `rollback` returns to, if any. */
  previous: string | null
  /** Versions that failed their probation: never offered again. */
  bad: string[]
  /** Why the last check or update failed, in one line. */
  error: string | null
}

/** When a dependency counts as up: its process exists, it is ready, or its first health check passed. */
export type DependencyCondition = 'started' | 'running' | 'healthy'

/** `version()`: the launcher's version and the protocol it speaks. */
export interface VersionInfo {
  /** berth's semver, e.g. `"0.3.0"`. */
  berth: string
  /** The protocol version: 1. */
  protocol: number
}

/** What `action()` did: an `open` action's target, a `send` action's line queued, or a `restart` action's outcome (as restart()). */
export type ActionResult = { opened: string } | { sent: boolean } | BackendStatus | null

/** A reply of the launcher as `request()` gives it (refusals are thrown). */
export interface Reply<T = unknown> {
  ok: true
  data: T
  /** Worth telling the user although the request succeeded, e.g. "python is already running". */
  note?: string
}

/** Any request of the control socket, for `request()`. */
export interface Request {
  cmd: string
  [field: string]: unknown
}

/** A watch event: the complete status of the file that changed. */
export interface StatusEvent {
  event: 'status'
  backend: BackendStatus
}

/** A watch event: a manifest file left the backends folders. */
export interface RemovedEvent {
  event: 'removed'
  file: string
}

export type WatchEvent = StatusEvent | RemovedEvent

/** What `watch()` yields: the full status array first, then one event per change. */
export type WatchItem = BackendStatus[] | WatchEvent

/** One line of a backend's output. */
export interface LogEvent {
  event: 'log'
  id: string
  stream: 'stdout' | 'stderr'
  /** The line without its newline. */
  line: string
  /** The pid of the run that printed it; null for a line of the log's history written before this launcher started. */
  run: number | null
}

export interface SendOptions {
  /** Resolve with the first stdout JSON object after the line whose `key` equals `value` (compared as text: 7 matches `7`). */
  wait?: { key: string; value: string | number | boolean }
  /** How long the launcher waits for it (default 5000). */
  timeoutMs?: number
}

export interface LogsOptions {
  /** Keep streaming each new line after the last ones, across restarts, until the loop is left (default false: end after them). */
  follow?: boolean
  /** How many of the last lines come first (default 10). */
  lines?: number
}

export interface CloseOptions {
  /** SIGKILL the launcher when it has not exited this long after SIGTERM (default 30000). */
  killAfterMs?: number
}

/** How a launcher started by launch() ended. */
export interface Exit {
  code: number | null
  /** e.g. `"SIGKILL"`. */
  signal: string | null
}

/**
 * A launcher's control socket, one connection per call. Every method
 * rejects with a BerthError.
 */
export declare class Client {
  /** Clients come from launch() and connect(). */
  private constructor()
  /** The control socket's path. */
  readonly socket: string
  /** The launcher's pid when launch() started it, else null. */
  readonly pid: number | null
  /** When launch() started the launcher: resolves once it has exited; else null. */
  readonly exited: Promise<Exit> | null
  /** Whether close() was called. */
  readonly closed: boolean

  /** Every manifest file. */
  status(): Promise<BackendStatus[]>
  /** Start `id` (extra `args` for this run only); resolves once it runs, rejects when it settles otherwise. */
  start(id: string, args?: string[]): Promise<BackendStatus | null>
  /** Stop `id`; resolves once its process group is gone. */
  stop(id: string): Promise<BackendStatus | null>
  /** Restart `id` (extra `args` for this run only); resolves once it runs again. */
  restart(id: string, args?: string[]): Promise<BackendStatus | null>
  /** Read the feed of `id`'s `update` section; resolves with its status, whose `update.available` says what the feed offers. */
  checkUpdate(id: string): Promise<BackendStatus | null>
  /** Install the version `id`'s feed offers; resolves once it runs on it (it was running) or is installed (it was not). */
  update(id: string): Promise<BackendStatus | null>
  /** Go back to the version of `id` kept before the installed one. */
  rollback(id: string): Promise<BackendStatus | null>
  /** Write `value` as one JSON line to `id`'s stdin; with `wait`, resolve with the stdout JSON object that answers (else null). */
  send(id: string, value: unknown, options?: SendOptions): Promise<Record<string, unknown> | null>
  /** Run one of `id`'s manifest actions by label, as the tray does. */
  action(id: string, label: string): Promise<ActionResult>
  /** The launcher's version and protocol (a launcher older than protocol's `version` refuses it: BERTH_REFUSED). */
  version(): Promise<VersionInfo>
  /** The full status array first, then one event per change; leaving the loop closes the connection. */
  watch(): AsyncGenerator<WatchItem, void, undefined>
  /** `id`'s output: the last lines, then (with `follow`) each new one; leaving the loop closes the connection. */
  logs(id: string, options?: LogsOptions): AsyncGenerator<LogEvent, void, undefined>
  /** Send any request of the protocol; resolves with the whole reply. */
  request<T = unknown>(request: Request, options?: { patient?: boolean }): Promise<Reply<T>>
  /**
   * Close the client and its streams; when launch() started the launcher,
   * stop it (SIGTERM: every backend stops) and resolve once it has exited.
   */
  close(options?: CloseOptions): Promise<Exit | null>
  /** The same as close(). */
  quit(options?: CloseOptions): Promise<Exit | null>
}

export interface LaunchOptions {
  /** The instance name (`--app`): `[a-z0-9][a-z0-9-]{0,62}`; its socket, logs and data are under it. */
  app: string
  /** Folders of backend manifests (`--backends`); default: berth's own choice. */
  backends?: string | string[]
  /** The berth executable (default: `berth` on PATH). */
  berth?: string
  /**
   * Show berth's tray instead of running headless (default false: the app
   * shows what it wants itself). Without a display berth says so on its
   * log and runs headless.
   */
  tray?: boolean
  /** With `tray`: the tray item's title (tooltip, the menu's first line); default: `app`. */
  title?: string
  /** With `tray`: a PNG shown as the tray icon, the state as a small badge on it. */
  icon?: string
  /** More arguments for `berth run` (e.g. `['--no-notify']`). */
  args?: string[]
  /** Variables added to this process's environment for berth (e.g. BERTH_RESOURCES). */
  env?: Record<string, string | undefined>
  /** berth's working folder. */
  cwd?: string
  /** The control socket (default: berth's rule for `app`, see socketPath()). */
  socket?: string
  /** How long to wait for the socket to answer (default 15000). */
  timeoutMs?: number
}

export interface ConnectOptions {
  /** The instance name (default: BERTH_APP, else `berth`). */
  app?: string
  /** The control socket (default: BERTH_SOCKET, else berth's rule for `app`). */
  socket?: string
}

/**
 * Start `berth run --headless --app APP --with-parent --backends DIR...` (or,
 * with `tray`, `--title`/`--icon` and no `--headless`) and resolve once its
 * socket answers. Rejects with BERTH_EXITED (berth's stderr
 * line) when berth exits first, BERTH_SPAWN when it cannot be run,
 * BERTH_REFUSED when a launcher already runs on the socket.
 */
export declare function launch(options: LaunchOptions): Promise<Client>

/** A client of a launcher that runs already; rejects with BERTH_NO_LAUNCHER when none answers. */
export declare function connect(options?: ConnectOptions): Promise<Client>

/**
 * berth's control socket for instance `app`: BERTH_SOCKET, else
 * `$XDG_RUNTIME_DIR/APP/berth.sock`, else `$TMPDIR/APP-$UID/berth.sock`
 * (`/tmp` when TMPDIR is unset).
 */
export declare function socketPath(app?: string, env?: Record<string, string | undefined>): string
