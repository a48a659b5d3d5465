// The socket path rule, checked against the real berth's own answer, and
// the line framing, checked against a socket that cuts its replies the way
// a stream socket may (a scripted server: berth itself never cuts a line
// on purpose, so only a script can prove the client copes).

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'

import { connect, socketPath } from '../index.js'
import { berthBin } from './helpers.js'

/** The socket `berth status` looks for under `env` (from its one-line error). */
function berthsSocket(args, env) {
  const clean = { PATH: process.env.PATH, HOME: process.env.HOME, ...env }
  for (const [key, value] of Object.entries(clean)) if (value === undefined) delete clean[key]
  try {
    execFileSync(berthBin(), ['status', ...args], { env: clean, stdio: 'pipe' })
  } catch (error) {
    const line = error.stderr.toString().trim()
    const found = line.match(/^berth: no launcher running on (.*) \(start one/)
    assert.ok(found, line)
    return found[1]
  }
  assert.fail('berth status found a launcher')
}

describe('socketPath follows berth\'s rule', () => {
  const cases = [
    ['XDG_RUNTIME_DIR', 'acme', { XDG_RUNTIME_DIR: '/run/user/4242' }],
    ['no XDG_RUNTIME_DIR', 'acme', {}],
    ['a relative XDG_RUNTIME_DIR is ignored', 'acme', { XDG_RUNTIME_DIR: 'run' }],
    ['TMPDIR without XDG_RUNTIME_DIR', 'acme', { TMPDIR: '/var/tmp' }],
    ['the default app', undefined, { XDG_RUNTIME_DIR: '/run/user/4242' }],
    ['BERTH_APP', undefined, { XDG_RUNTIME_DIR: '/run/user/4242', BERTH_APP: 'other' }],
    ['BERTH_SOCKET wins over the app', 'acme', { BERTH_SOCKET: '/tmp/somewhere/b.sock' }],
  ]
  for (const [name, app, env] of cases) {
    test(name, () => {
      const args = app ? ['--app', app] : []
      assert.equal(socketPath(app, env), berthsSocket(args, env))
    })
  }

  test('an app name that is no id is a usage error', () => {
    assert.throws(() => socketPath('My App', {}), { code: 'BERTH_USAGE', message: /invalid app name "My App"/ })
  })
})

/**
 * A scripted launcher: answers every line with what `reply(request)`
 * gives, written as the given chunks, one write per chunk with a pause.
 */
async function scripted(dir, reply) {
  const socket = path.join(dir, `s${Math.random().toString(36).slice(2, 8)}.sock`)
  const server = net.createServer((conn) => {
    let buffered = ''
    conn.on('data', async (data) => {
      buffered += data
      for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
        const request = JSON.parse(buffered.slice(0, nl))
        buffered = buffered.slice(nl + 1)
        const answer = reply(request)
        if (answer === 'hang-up') {
          conn.end()
          return
        }
        for (const chunk of answer) {
          conn.write(chunk)
          await new Promise((r) => setTimeout(r, 5))
        }
        if (answer.close) conn.end()
      }
    })
  })
  await new Promise((resolve) => server.listen(socket, resolve))
  return { socket, close: () => server.close() }
}

/** `text` as single-byte chunks: every character boundary cut, and every byte of a multi-byte one. */
function bytes(text) {
  return [...Buffer.from(text)].map((b) => Buffer.from([b]))
}

describe('reply lines cut anywhere', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-node-lines-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const status = [{ id: 'py', name: 'Pythön ✓ 🚢', state: 'running' }]

  test('a reply in one-byte chunks, multi-byte characters split, with CRLF', async () => {
    const server = await scripted(dir, () => bytes(`${JSON.stringify({ ok: true, data: status })}\r\n`))
    try {
      const client = await connect({ socket: server.socket })
      assert.deepEqual(await client.status(), status)
    } finally {
      server.close()
    }
  })

  test('a stream\'s lines two to a chunk and cut across chunks', async () => {
    const events = [1, 2, 3, 4].map((n) => ({ event: 'status', backend: { id: 'py', name: `r${n} ✓`, state: 'running' } }))
    const text = [JSON.stringify({ ok: true, data: status }), ...events.map((e) => JSON.stringify(e))].join('\n') + '\n'
    const cut = Math.floor(text.length / 3)
    const server = await scripted(dir, (request) =>
      request.cmd === 'watch' ? [text.slice(0, cut), text.slice(cut, 2 * cut + 1), text.slice(2 * cut + 1)] : [`${JSON.stringify({ ok: true, data: [] })}\n`],
    )
    try {
      const client = await connect({ socket: server.socket })
      const seen = []
      for await (const item of client.watch()) {
        seen.push(item)
        if (seen.length === 5) break
      }
      assert.deepEqual(seen, [status, ...events])
    } finally {
      server.close()
    }
  })

  test('an unreadable line, a hang-up and a cut-off line have their codes', async () => {
    let next = 'ok'
    const server = await scripted(dir, () => {
      const now = next
      next = 'ok'
      if (now === 'ok') return [`${JSON.stringify({ ok: true, data: [] })}\n`]
      if (now === 'garbage') return ['<html>\n']
      if (now === 'array') return ['[1, 2]\n']
      if (now === 'no-ok') return ['{"data": 1}\n']
      if (now === 'cut') return Object.assign(['{"ok": tr'], { close: true })
      return 'hang-up'
    })
    try {
      const client = await connect({ socket: server.socket })
      const expect = async (mode, code, message) => {
        next = mode
        await assert.rejects(client.status(), (error) => {
          assert.equal(error.code, code, `${mode}: ${error.message}`)
          assert.match(error.message, message)
          assert.ok(!error.message.includes('\n'))
          return true
        })
      }
      await expect('garbage', 'BERTH_PROTOCOL', /sent a line that is not JSON: <html>/)
      await expect('array', 'BERTH_PROTOCOL', /not a JSON object/)
      await expect('no-ok', 'BERTH_PROTOCOL', /without "ok"/)
      await expect('cut', 'BERTH_CLOSED', /in the middle of a line/)
      await expect('hang-up', 'BERTH_CLOSED', /closed the connection without replying/)
      assert.deepEqual(await client.status(), [])
    } finally {
      server.close()
    }
  })
})
