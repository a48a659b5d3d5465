// berth-client: launch berth from an app (Electron's main process first of
// all) and drive it over its control socket. See README.md and index.d.ts.

import path from 'node:path'

import { Client } from './lib/client.js'
import { BerthError, codes } from './lib/errors.js'
import { Launcher, answers } from './lib/launcher.js'
import { checkApp, checkSocketPath, socketPath } from './lib/paths.js'

export { BerthError, Client, codes, socketPath }

/** How long launch() waits for the socket to answer, by default. */
const LAUNCH_TIMEOUT_MS = 15_000

function usage(message) {
  return new BerthError(codes.USAGE, message)
}

function strings(value, what) {
  if (value === undefined) return []
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && v !== '')) {
    throw usage(`${what} must be a path or an array of paths`)
  }
  return list
}

/**
 * Starts `berth run --headless --app APP --with-parent --backends DIR...`
 * and resolves with a client once its socket answers. With `tray`, berth
 * shows its tray instead (`--title`, `--icon`: the app's face on it).
 */
export async function launch(options = {}) {
  const {
    app,
    backends,
    berth = 'berth',
    tray = false,
    title,
    icon,
    args = [],
    env,
    cwd,
    socket,
    timeoutMs = LAUNCH_TIMEOUT_MS,
  } = options
  checkApp(app)
  const dirs = strings(backends, 'backends')
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw usage('args must be an array of strings')
  }
  if (typeof berth !== 'string' || berth === '') throw usage('berth must be the path of the berth executable')
  if (typeof tray !== 'boolean') throw usage('tray must be true or false')
  for (const [name, value] of [['title', title], ['icon', icon]]) {
    if (value === undefined) continue
    if (typeof value !== 'string' || value === '') throw usage(`${name} must be a non-empty string`)
    // Headless, nothing would show them: say so rather than drop them.
    if (!tray) throw usage(`${name} is the tray's: pass tray: true to show berth's tray`)
  }
  if (env !== undefined && (env === null || typeof env !== 'object')) throw usage('env must be an object')
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw usage('timeoutMs must be a positive whole number')
  const childEnv = env ? { ...process.env, ...env } : process.env
  const sock = checkSocketPath(path.resolve(socket ?? socketPath(app, childEnv)))
  // A launcher of this app that runs already would answer the knocks below
  // before the new berth gives up on its lock: say so instead.
  if (await answers(sock).catch(() => false)) {
    throw new BerthError(codes.REFUSED, `a launcher already runs on ${sock}; connect() to it, or quit it first`)
  }
  const argv = ['run', ...(tray ? [] : ['--headless']), '--app', app, '--with-parent', '--socket', sock]
  if (title !== undefined) argv.push('--title', title)
  if (icon !== undefined) argv.push('--icon', icon)
  for (const dir of dirs) argv.push('--backends', dir)
  argv.push(...args)
  const launcher = await Launcher.spawn(berth, argv, { env: childEnv, cwd })
  await launcher.ready(sock, timeoutMs)
  return new Client(sock, launcher)
}

/**
 * A client of a launcher that runs already (`app`'s default socket, or
 * `socket`); resolves once it answers, else rejects with BERTH_NO_LAUNCHER.
 */
export async function connect(options = {}) {
  const { app, socket } = options
  if (app !== undefined) checkApp(app)
  const sock = checkSocketPath(socket ?? socketPath(app))
  const client = new Client(sock)
  await client.request({ cmd: 'status' }, { patient: false })
  return client
}
