// Where a launcher's control socket is, by berth's own rule (src/paths.rs):
// `--socket`/`BERTH_SOCKET` when given, else `$XDG_RUNTIME_DIR/APP/berth.sock`,
// else `$TMPDIR/APP-$UID/berth.sock` (`/tmp` when TMPDIR is unset). Computing
// it here, from the same environment berth gets, lets launch() know where to
// knock before berth has said anything.

import path from 'node:path'

import { BerthError, codes } from './errors.js'

/** berth's default instance. */
export const DEFAULT_APP = 'berth'

/** `sun_path` holds 108 bytes on Linux, the terminating NUL included. */
export const MAX_SOCKET_BYTES = 107

const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/

/** Throws BERTH_USAGE unless `app` is a valid instance name. */
export function checkApp(app) {
  if (typeof app !== 'string' || !APP_NAME.test(app)) {
    throw new BerthError(
      codes.USAGE,
      `invalid app name ${JSON.stringify(app)}: expected 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit`,
    )
  }
  return app
}

/** An environment variable as berth reads a folder: set, not empty, absolute. */
function envPath(env, name) {
  const value = env[name]
  return value && path.isAbsolute(value) ? value : null
}

/**
 * The control socket of instance `app` under environment `env`.
 * @param {string} [app] defaults to `env.BERTH_APP`, else `berth`
 * @param {NodeJS.ProcessEnv} [env]
 */
export function socketPath(app, env = process.env) {
  if (env.BERTH_SOCKET) return env.BERTH_SOCKET
  const name = checkApp(app ?? (env.BERTH_APP || DEFAULT_APP))
  const runtime = envPath(env, 'XDG_RUNTIME_DIR')
  if (runtime) return path.join(runtime, name, 'berth.sock')
  // Rust's std::env::temp_dir(): TMPDIR as it is, else /tmp.
  const tmp = env.TMPDIR ?? '/tmp'
  return path.join(tmp, `${name}-${process.getuid()}`, 'berth.sock')
}

/** Throws BERTH_USAGE for a path the kernel would truncate or refuse. */
export function checkSocketPath(socket) {
  if (typeof socket !== 'string' || socket === '') {
    throw new BerthError(codes.USAGE, `socket must be a non-empty path, not ${JSON.stringify(socket)}`)
  }
  const len = Buffer.byteLength(socket)
  if (len > MAX_SOCKET_BYTES) {
    throw new BerthError(
      codes.USAGE,
      `socket path ${socket} is ${len} bytes long; a Unix socket path must be at most ${MAX_SOCKET_BYTES} bytes`,
    )
  }
  return socket
}
