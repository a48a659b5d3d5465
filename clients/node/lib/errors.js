// Every failure of the client is a BerthError: an Error whose message is one
// line (the launcher's own words when it refused) and whose `code` says what
// kind of failure it is, so an app can branch on the code and show the
// message as it is.

/** The codes a BerthError carries; see README.md. */
export const codes = Object.freeze({
  /** A function of this package was called with a bad argument. */
  USAGE: 'BERTH_USAGE',
  /** launch(): the berth executable could not be started. */
  SPAWN: 'BERTH_SPAWN',
  /** launch(): berth exited before its socket answered. */
  EXITED: 'BERTH_EXITED',
  /** Nobody listens on the socket (no file, or a stale one). */
  NO_LAUNCHER: 'BERTH_NO_LAUNCHER',
  /** The launcher answered `{"ok": false}`; the message is its `error`. */
  REFUSED: 'BERTH_REFUSED',
  /** The launcher sent a line that is not a JSON object of the protocol. */
  PROTOCOL: 'BERTH_PROTOCOL',
  /** The connection ended before the reply, or the client was closed. */
  CLOSED: 'BERTH_CLOSED',
  /** The launcher did not answer in time. */
  TIMEOUT: 'BERTH_TIMEOUT',
  /** Any other error of the socket (permissions, ...). */
  IO: 'BERTH_IO',
})

export class BerthError extends Error {
  /**
   * @param {string} code one of `codes`
   * @param {string} message one line
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message, options)
    this.name = 'BerthError'
    this.code = code
  }
}

/** `text` on one line, cut to a length fit for an error message. */
export function oneLine(text, max = 200) {
  const flat = String(text).split(/\s+/).filter(Boolean).join(' ')
  return flat.length > max ? `${flat.slice(0, max)}...` : flat
}
