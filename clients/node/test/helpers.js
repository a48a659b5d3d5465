// What the tests share: the real berth binary, the real PyInstaller build
// of the Python backend under the shipped manifest, and a private home
// (XDG folders) per test file so no test touches the user's instances.

import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before } from 'node:test'
import { fileURLToPath } from 'node:url'

import { launch } from '../index.js'

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

/** target/debug/berth, or BERTH_BIN; scripts/test.sh builds it first. */
export function berthBin() {
  const exe = process.env.BERTH_BIN || path.join(repo, 'target/debug/berth')
  if (!existsSync(exe)) {
    throw new Error(`${exe} is missing: run \`cargo build --bin berth\` first (or set BERTH_BIN)`)
  }
  return exe
}

/** python/dist/backend, as tests/it/util.rs pyinstaller_backend() finds it. */
export function pyinstallerBackend() {
  const exe = path.join(repo, 'python/dist/backend')
  if (!existsSync(exe)) {
    throw new Error(`${exe} is missing: run python/build.sh first`)
  }
  return exe
}

let apps = 0

/** A private home: XDG folders, a backends folder, a unique app name. */
export class Home {
  constructor() {
    this.root = mkdtempSync(path.join(tmpdir(), 'berth-node-'))
    this.backends = path.join(this.root, 'backends')
    mkdirSync(this.backends)
    this.env = {
      XDG_RUNTIME_DIR: path.join(this.root, 'run'),
      XDG_STATE_HOME: path.join(this.root, 'state'),
      XDG_DATA_HOME: path.join(this.root, 'data'),
      XDG_CONFIG_HOME: path.join(this.root, 'config'),
      BERTH_SOCKET: undefined,
      BERTH_APP: undefined,
      BERTH_BACKENDS: undefined,
    }
    apps += 1
    this.app = `node-test-${process.pid}-${apps}`
  }

  /** launch() options for this home. */
  options(extra = {}) {
    return { app: this.app, backends: [this.backends], berth: berthBin(), env: this.env, ...extra }
  }

  /**
   * backends/python.yaml as shipped (its actions, readiness and sandbox
   * included), pointed at the real PyInstaller build with its digest.
   */
  shippedPython() {
    const exe = pyinstallerBackend()
    const digest = createHash('sha256').update(readFileSync(exe)).digest('hex')
    const manifest = readFileSync(path.join(repo, 'backends/python.yaml'), 'utf8')
      .replaceAll('../python/dist/backend', exe)
      .replaceAll('0'.repeat(64), digest)
    writeFileSync(path.join(this.backends, 'python.yaml'), manifest)
  }

  /** A log file of this home's instance. */
  log(id) {
    return path.join(this.env.XDG_STATE_HOME, this.app, 'logs', `${id}.log`)
  }

  remove() {
    rmSync(this.root, { recursive: true, force: true })
  }
}

/** Whether process `pid` exists. */
export function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === 'EPERM'
  }
}

/** Polls `check` until it holds or `ms` pass; says whether it held. */
export async function waitUntil(ms, check) {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * One launcher for the enclosing describe(): a private home with the
 * shipped Python backend, launched before its tests and closed after them.
 * `berth` is set once the tests run.
 */
export function launchedPython() {
  const shared = { home: new Home(), berth: null }
  before(async () => {
    shared.home.shippedPython()
    shared.berth = await launch(shared.home.options())
  })
  after(async () => {
    await shared.berth?.close()
    shared.home.remove()
  })
  return shared
}
