// The requests of the control socket as methods: one connection per
// request, one reply line per connection.
//
// The launcher answers the requests of one connection one after the other
// and closes a connection that stays silent for 10 s, so a long-lived shared
// connection would serialize independent calls (a `status` stuck behind a
// `start` that waits for readiness) and die between calls. A Unix socket
// connection costs little; each call gets its own, and each watch or log
// stream keeps its own for as long as it is read.

import { BerthError, codes } from './errors.js'
import { Connection, checkReply, parseLine } from './connection.js'

/** A reply the launcher gives at once (status, version). */
export const QUICK_TIMEOUT_MS = 10_000
/**
 * Silence after which a call that may rightly take long (start waits for
 * readiness) asks the launcher, on a second connection, whether it still
 * answers; the call goes on waiting as long as it does.
 */
export const PROBE_EVERY_MS = 5_000

const TIMEOUT = Symbol('timeout')

function after(ms) {
  let timer
  const promise = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, TIMEOUT)
  })
  return { promise, cancel: () => clearTimeout(timer) }
}

/**
 * Sends `request` on a new connection to `path` and gives its reply (the
 * whole object, `ok` true), or throws a BerthError.
 * @param {{patient?: boolean}} [options] patient: wait as long as the launcher answers probes
 */
export async function exchange(path, request, { patient = false } = {}) {
  const conn = await Connection.open(path)
  try {
    conn.send(request)
    const reply = conn.next()
    for (;;) {
      const wait = after(patient ? PROBE_EVERY_MS : QUICK_TIMEOUT_MS)
      const line = await Promise.race([reply, wait.promise]).finally(wait.cancel)
      if (line === TIMEOUT) {
        if (!patient) throw notAnswering(path, QUICK_TIMEOUT_MS)
        await probe(path)
        continue
      }
      if (line === null) {
        throw new BerthError(codes.CLOSED, `the launcher on ${path} closed the connection without replying`)
      }
      return checkReply(parseLine(line, path), path)
    }
  } finally {
    conn.close()
  }
}

/** Resolves when the launcher answers a status request; else BERTH_TIMEOUT. */
async function probe(path) {
  try {
    await exchange(path, { cmd: 'status' })
  } catch (cause) {
    if (cause instanceof BerthError && cause.code === codes.REFUSED) return
    throw new BerthError(codes.TIMEOUT, `the launcher on ${path} stopped answering: ${cause.message}`, { cause })
  }
}

function notAnswering(path, ms) {
  return new BerthError(
    codes.TIMEOUT,
    `the launcher on ${path} did not answer within ${ms / 1000}s (is it stopped or frozen?)`,
  )
}

/**
 * The lines of a stream request (watch, logs) as parsed objects, until the
 * launcher ends the stream (the generator returns) or refuses (it throws).
 * Leaving the loop early closes the connection.
 * @param {() => boolean} quiet true when an end is expected (the client closed)
 * @param {Set<Connection>} open the client's open streams, closed with it
 */
export async function* stream(path, request, quiet, open) {
  const conn = await Connection.open(path)
  open.add(conn)
  try {
    conn.send(request)
    for (;;) {
      const line = await conn.next().catch((error) => {
        if (quiet()) return null
        throw error
      })
      if (line === null) {
        if (quiet()) return
        throw new BerthError(codes.CLOSED, `the launcher on ${path} ended the stream`)
      }
      yield checkEvent(parseLine(line, path), path)
    }
  } finally {
    open.delete(conn)
    conn.close()
  }
}

/** An event line as it is, or the reply line that starts or ends a stream. */
function checkEvent(message, path) {
  if (typeof message.event === 'string') return message
  return checkReply(message, path)
}

function usage(message) {
  return new BerthError(codes.USAGE, message)
}

function checkId(id) {
  if (typeof id !== 'string' || id === '') throw usage(`a backend id must be a non-empty string, not ${JSON.stringify(id)}`)
  return id
}

function checkArgs(args) {
  if (args === undefined) return []
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw usage('args must be an array of strings')
  }
  return args
}

/** `wait.value` as berth compares it: a string as it is, else its JSON text. */
function waitValue(value) {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  throw usage('wait.value must be a string, a number or a boolean')
}

export class Client {
  #socket
  #launcher
  #closed = false
  /** The connections of the streams being read, closed by close(). */
  #streams = new Set()

  /**
   * @param {string} socket
   * @param {import('./launcher.js').Launcher | null} launcher
   */
  constructor(socket, launcher = null) {
    this.#socket = socket
    this.#launcher = launcher
  }

  /** The control socket's path. */
  get socket() {
    return this.#socket
  }

  /** The launcher's pid when this client started it, else null. */
  get pid() {
    return this.#launcher?.pid ?? null
  }

  /** When this client started the launcher: resolves once it has exited. */
  get exited() {
    return this.#launcher?.exited ?? null
  }

  get closed() {
    return this.#closed
  }

  /** Sends any request; resolves with the whole reply (`ok` true). */
  async request(request, { patient = true } = {}) {
    if (this.#closed) throw new BerthError(codes.CLOSED, 'this berth client is closed')
    if (request === null || typeof request !== 'object' || typeof request.cmd !== 'string') {
      throw usage('a request is an object with a "cmd" string')
    }
    return exchange(this.#socket, request, { patient })
  }

  async #data(request, options) {
    return (await this.request(request, options)).data
  }

  status() {
    return this.#data({ cmd: 'status' }, { patient: false })
  }

  version() {
    return this.#data({ cmd: 'version' }, { patient: false })
  }

  async start(id, args) {
    return this.#data({ cmd: 'start', id: checkId(id), ...withArgs(checkArgs(args)) })
  }

  async stop(id) {
    return this.#data({ cmd: 'stop', id: checkId(id) })
  }

  async restart(id, args) {
    return this.#data({ cmd: 'restart', id: checkId(id), ...withArgs(checkArgs(args)) })
  }

  async checkUpdate(id) {
    return this.#data({ cmd: 'check-update', id: checkId(id) })
  }

  async update(id) {
    return this.#data({ cmd: 'update', id: checkId(id) })
  }

  async rollback(id) {
    return this.#data({ cmd: 'rollback', id: checkId(id) })
  }

  async send(id, value, { wait, timeoutMs } = {}) {
    if (value === undefined) throw usage('send needs a JSON value to write')
    const request = { cmd: 'send', id: checkId(id), line: value }
    if (wait !== undefined) {
      if (wait === null || typeof wait !== 'object' || typeof wait.key !== 'string' || wait.key === '') {
        throw usage('wait must be {key, value} with a non-empty key')
      }
      request.wait = { key: wait.key, value: waitValue(wait.value) }
    }
    if (timeoutMs !== undefined) {
      if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw usage('timeoutMs must be a whole number of milliseconds')
      request.timeout_ms = timeoutMs
    }
    return this.#data(request)
  }

  async action(id, label) {
    if (typeof label !== 'string' || label === '') throw usage('an action label must be a non-empty string')
    return this.#data({ cmd: 'action', id: checkId(id), label })
  }

  /** The full status array first, then one event per change. */
  watch() {
    // The first line is the status reply: its array is the first item.
    return this.#stream(() => ({ cmd: 'watch' }), (reply) => ({ items: [reply.data], end: false }))
  }

  /** A backend's output: the last lines, then (follow) each new one. */
  logs(id, { follow = false, lines } = {}) {
    const request = () => {
      const request = { cmd: 'logs', id: checkId(id), follow: Boolean(follow) }
      if (lines !== undefined) {
        if (!Number.isInteger(lines) || lines < 0) throw usage('lines must be a whole number')
        request.lines = lines
      }
      return request
    }
    // The reply line ends the history; without follow it ends the request.
    return this.#stream(request, () => ({ items: [], end: !follow }))
  }

  /**
   * Yields each event of a stream request; a reply line (`ok` true) is
   * turned into items by `fromReply`, which also says whether it ends the
   * stream.
   */
  async *#stream(makeRequest, fromReply) {
    if (this.#closed) throw new BerthError(codes.CLOSED, 'this berth client is closed')
    const request = makeRequest()
    for await (const message of stream(this.#socket, request, () => this.#closed, this.#streams)) {
      if (typeof message.event === 'string') {
        yield message
        continue
      }
      const { items, end } = fromReply(message)
      yield* items
      if (end) return
    }
  }

  /**
   * Closes the client; when it started the launcher, stops it (SIGTERM,
   * which stops every backend) and resolves once it has exited.
   */
  async close(options) {
    this.#closed = true
    for (const conn of this.#streams) conn.close()
    return this.#launcher ? this.#launcher.stop(options) : null
  }

  quit(options) {
    return this.close(options)
  }
}

function withArgs(args) {
  return args.length > 0 ? { args } : {}
}
