// The berth process an app starts: `berth run --headless --app APP
// --with-parent`, its stderr kept for the one line that says why it could
// not start, and its end.
//
// --with-parent ties berth's life to this process: however the app dies,
// berth stops every backend and exits, so nothing here has to clean up
// after a crash. A clean quit still stops it with SIGTERM (close()), which
// stops every backend as the tray's Quit does.

import { spawn } from 'node:child_process'

import { BerthError, codes, oneLine } from './errors.js'
import { Connection, parseLine } from './connection.js'

/** Lines of berth's stderr kept for error messages. */
const KEEP_LINES = 20

/** How often launch() knocks on the socket while berth starts. */
const KNOCK_EVERY_MS = 20

/** How long a knock waits for its reply line. */
const ANSWER_WITHIN_MS = 2_000

/** How long an exited berth's stderr may take to reach its end. */
const STDERR_GRACE_MS = 500

export class Launcher {
  #child
  #tail = []
  #partial = ''
  #stderrDone
  /** @type {Promise<{code: number | null, signal: string | null}>} */
  exited

  /**
   * Spawns berth; throws BERTH_SPAWN when it cannot be started.
   * @param {string} exe
   * @param {string[]} args
   * @param {{env: NodeJS.ProcessEnv, cwd?: string}} options
   */
  static async spawn(exe, args, { env, cwd }) {
    const child = spawn(exe, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    await new Promise((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (cause) =>
        reject(new BerthError(codes.SPAWN, `cannot run ${exe}: ${oneLine(cause.message)}`, { cause })),
      )
    })
    return new Launcher(child)
  }

  constructor(child) {
    this.#child = child
    // berth logs to stderr as it runs: read it all, or a full pipe would
    // block berth, and keep the last lines.
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (text) => this.#keep(text))
    this.#stderrDone = new Promise((resolve) => {
      child.stderr.once('close', resolve)
      child.stderr.once('error', resolve)
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }))
    })
    // An exit is an answer, never an unhandled rejection.
    child.on('error', () => {})
  }

  get pid() {
    return this.#child.pid
  }

  get running() {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /**
   * Resolves once the socket answers a request; rejects with BERTH_EXITED
   * (berth's last stderr line) if berth exits first, BERTH_TIMEOUT after
   * `timeoutMs`.
   */
  async ready(socket, timeoutMs) {
    let exited = false
    const exit = this.exited.then(async ({ code, signal }) => {
      exited = true
      await Promise.race([this.#stderrDone, new Promise((r) => setTimeout(r, STDERR_GRACE_MS))])
      const why = this.lastLine() ?? (signal ? `berth was killed by ${signal}` : `berth exited with code ${code}`)
      const error = new BerthError(codes.EXITED, why)
      error.exitCode = code
      error.signal = signal
      return error
    })
    const deadline = Date.now() + timeoutMs
    const knock = async () => {
      let last = null
      while (!exited) {
        try {
          if (await answers(socket)) return null
        } catch (error) {
          // Not ours to judge yet: berth says why when it gives up.
          last = error
        }
        if (Date.now() > deadline) {
          const why = last ? ` (${last.message})` : ''
          return new BerthError(codes.TIMEOUT, `berth did not answer on ${socket} within ${timeoutMs / 1000}s${why}`)
        }
        await new Promise((r) => setTimeout(r, KNOCK_EVERY_MS))
      }
      return exit
    }
    const error = await Promise.race([exit, knock()])
    if (error) {
      if (this.running) await this.stop()
      throw error
    }
  }

  /** berth's last stderr line worth showing: its `berth: ...` error if any. */
  lastLine() {
    const lines = this.#partial.trim() ? [...this.#tail, this.#partial.trim()] : this.#tail
    const said = (prefix) => lines.findLast((l) => l.startsWith(prefix))
    return said('berth: ') ?? said('error: ') ?? lines.at(-1) ?? null
  }

  /** SIGTERM, then SIGKILL after `killAfterMs`; resolves once berth has exited. */
  async stop({ killAfterMs = 30_000 } = {}) {
    if (this.running) this.#child.kill('SIGTERM')
    const timer = setTimeout(() => {
      if (this.running) this.#child.kill('SIGKILL')
    }, killAfterMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  #keep(text) {
    const lines = (this.#partial + text).split('\n')
    this.#partial = lines.pop()
    for (const line of lines) {
      if (line.trim() === '') continue
      this.#tail.push(line.trim())
      if (this.#tail.length > KEEP_LINES) this.#tail.shift()
    }
    // A line without end is kept whole only up to a sane size.
    if (this.#partial.length > 64 * 1024) this.#partial = this.#partial.slice(-64 * 1024)
  }
}

/**
 * Whether a launcher answers on `socket`: any reply line counts (a berth
 * before protocol's `version` refuses it, and that is an answer too).
 */
export async function answers(socket) {
  let conn
  try {
    conn = await Connection.open(socket)
  } catch (error) {
    if (error.code === codes.NO_LAUNCHER) return false
    throw error
  }
  let timer
  try {
    conn.send({ cmd: 'version' })
    const silent = new Promise((resolve) => {
      timer = setTimeout(resolve, ANSWER_WITHIN_MS, null)
    })
    const line = await Promise.race([conn.next(), silent])
    if (line === null) return false
    parseLine(line, socket)
    return true
  } finally {
    clearTimeout(timer)
    conn.close()
  }
}
