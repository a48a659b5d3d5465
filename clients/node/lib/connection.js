// One connection to the control socket, read as newline-delimited JSON.
//
// The socket delivers bytes in chunks that ignore line boundaries: a reply
// may arrive in pieces, several lines may share one chunk, and a multi-byte
// character may be cut in two. The decoder keeps the cut bytes, the buffer
// keeps the unfinished line, and only complete lines are handed out.
//
// A reader that falls behind pauses the socket instead of buffering without
// bound, so a slow consumer of a watch costs the launcher's back-pressure
// rule (it closes a reader 1 MiB behind), never this process's memory.

import net from 'node:net'
import { StringDecoder } from 'node:string_decoder'

import { BerthError, codes, oneLine } from './errors.js'
import { checkSocketPath } from './paths.js'

/** Complete lines held before the socket is paused. */
const HIGH_WATER = 64

/** A line longer than this is no line of the protocol. */
const MAX_LINE = 64 * 1024 * 1024

export class Connection {
  #socket
  #path
  #decoder = new StringDecoder('utf8')
  #partial = ''
  #lines = []
  /** Set once no more lines can come: null (clean end) or a BerthError. */
  #ended = undefined
  #waiter = null

  constructor(socket, path) {
    this.#socket = socket
    this.#path = path
    socket.on('data', (chunk) => this.#take(this.#decoder.write(chunk)))
    socket.on('end', () => {
      this.#take(this.#decoder.end())
      if (this.#partial !== '') {
        this.#finish(
          new BerthError(codes.CLOSED, `the launcher on ${path} closed the connection in the middle of a line`),
        )
      } else {
        this.#finish(null)
      }
    })
    socket.on('error', (cause) => this.#finish(ioError(path, cause)))
    socket.on('close', () => this.#finish(null))
  }

  /** Connects to the socket at `path`. */
  static open(path) {
    checkSocketPath(path)
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path })
      const failed = (cause) => reject(connectError(path, cause))
      socket.once('error', failed)
      socket.once('connect', () => {
        socket.off('error', failed)
        resolve(new Connection(socket, path))
      })
    })
  }

  get path() {
    return this.#path
  }

  /** Writes one request line. */
  send(request) {
    this.#socket.write(`${JSON.stringify(request)}\n`)
  }

  /**
   * The next complete line, or null once the launcher has ended the
   * connection; rejects with a BerthError when it broke off.
   * @returns {Promise<string | null>}
   */
  next() {
    if (this.#lines.length > 0) {
      const line = this.#lines.shift()
      if (this.#lines.length < HIGH_WATER / 2 && this.#ended === undefined) this.#socket.resume()
      return Promise.resolve(line)
    }
    if (this.#ended !== undefined) {
      return this.#ended === null ? Promise.resolve(null) : Promise.reject(this.#ended)
    }
    if (this.#waiter) return this.#waiter.promise
    let resolve, reject
    const promise = new Promise((res, rej) => {
      resolve = res
      reject = rej
    })
    this.#waiter = { promise, resolve, reject }
    return promise
  }

  /** Closes the connection; pending and later next() calls give null. */
  close() {
    this.#finish(null)
    this.#socket.destroy()
  }

  #take(text) {
    if (this.#ended !== undefined) return
    this.#partial += text
    let start = 0
    for (let nl = this.#partial.indexOf('\n'); nl !== -1; nl = this.#partial.indexOf('\n', start)) {
      let line = this.#partial.slice(start, nl)
      if (line.endsWith('\r')) line = line.slice(0, -1)
      start = nl + 1
      if (line.trim() !== '') this.#push(line)
    }
    this.#partial = this.#partial.slice(start)
    if (this.#partial.length > MAX_LINE) {
      this.#finish(
        new BerthError(codes.PROTOCOL, `the launcher on ${this.#path} sent a line over ${MAX_LINE} bytes`),
      )
      this.#socket.destroy()
    }
  }

  #push(line) {
    if (this.#waiter) {
      const { resolve } = this.#waiter
      this.#waiter = null
      resolve(line)
      return
    }
    this.#lines.push(line)
    if (this.#lines.length >= HIGH_WATER) this.#socket.pause()
  }

  #finish(error) {
    if (this.#ended !== undefined) return
    this.#ended = error
    if (this.#waiter) {
      const { resolve, reject } = this.#waiter
      this.#waiter = null
      if (error === null) resolve(null)
      else reject(error)
    }
  }
}

/** A reply line as an object, or BERTH_PROTOCOL. */
export function parseLine(line, path) {
  let value
  try {
    value = JSON.parse(line)
  } catch {
    throw new BerthError(codes.PROTOCOL, `the launcher on ${path} sent a line that is not JSON: ${oneLine(line, 80)}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BerthError(codes.PROTOCOL, `the launcher on ${path} sent a line that is not a JSON object: ${oneLine(line, 80)}`)
  }
  return value
}

/**
 * A reply object as it is when `ok` is true; BERTH_REFUSED with the
 * launcher's message when it is false.
 */
export function checkReply(reply, path) {
  if (reply.ok === true) return reply
  if (reply.ok === false) {
    const message = typeof reply.error === 'string' && reply.error !== '' ? reply.error : 'refused without a reason'
    throw new BerthError(codes.REFUSED, message)
  }
  throw new BerthError(codes.PROTOCOL, `the launcher on ${path} sent a reply without "ok": ${oneLine(JSON.stringify(reply), 80)}`)
}

function connectError(path, cause) {
  // ENOENT: no socket file; ECONNREFUSED: a file nobody listens on (a
  // launcher that died); ENOTDIR: a path through a file.
  if (['ENOENT', 'ECONNREFUSED', 'ENOTDIR'].includes(cause.code)) {
    return new BerthError(codes.NO_LAUNCHER, `no launcher running on ${path}`, { cause })
  }
  return ioError(path, cause)
}

function ioError(path, cause) {
  return new BerthError(codes.IO, `talking to the launcher on ${path}: ${oneLine(cause.message)}`, { cause })
}
