// launch() and the request methods against the real berth and the real
// PyInstaller build of the Python backend: one launcher for the file.

import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'

import { BerthError, connect, launch } from '../index.js'
import { Home, alive, launchedPython, repo } from './helpers.js'

describe('a launched berth with the shipped Python backend', () => {
  const shared = launchedPython()
  const { home } = shared
  let berth
  before(() => ({ berth } = shared))

  test('launch runs berth headless for the app, with the parent and the folders given', async () => {
    const cmdline = readFileSync(`/proc/${berth.pid}/cmdline`, 'utf8').split('\0')
    for (const arg of ['run', '--headless', '--with-parent']) assert.ok(cmdline.includes(arg), cmdline.join(' '))
    assert.equal(cmdline[cmdline.indexOf('--app') + 1], home.app)
    assert.equal(cmdline[cmdline.indexOf('--backends') + 1], home.backends)
    assert.equal(berth.socket, `${home.env.XDG_RUNTIME_DIR}/${home.app}/berth.sock`)
    const status = await berth.status()
    assert.deepEqual(
      status.map((s) => [s.id, s.state]),
      [['python', 'stopped']],
    )
  })

  test('index.d.ts declares every field of the status berth sends', async () => {
    const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
    const body = dts.slice(dts.indexOf('export interface BackendStatus {'))
    const declared = [...body.slice(0, body.indexOf('\n}\n')).matchAll(/^ {2}(\w+): /gm)].map((m) => m[1])
    const [sent] = await berth.status()
    assert.deepEqual(declared.sort(), Object.keys(sent).sort(), 'clients/node/index.d.ts: BackendStatus must list the fields berth sends')
  })

  test('start, send with wait, action and stop drive the real backend', async () => {
    const started = await berth.start('python')
    assert.equal(started.state, 'running')
    assert.equal(started.ready, true)
    assert.ok(started.port > 0, JSON.stringify(started))
    assert.deepEqual(started.args, ['--port', String(started.port)])
    assert.ok(alive(started.pid))

    // The wait value is compared as text: the number 7 matches "id": 7.
    const pong = await berth.send('python', { action: 'ping', id: 7 }, { wait: { key: 'id', value: 7 } })
    assert.deepEqual(pong, { reply: 'pong', id: 7 })
    assert.equal(await berth.send('python', { action: 'ping' }), null)
    assert.deepEqual(await berth.action('python', 'Ping'), { sent: true })

    // start of a running backend is no error: the launcher notes it.
    const again = await berth.request({ cmd: 'start', id: 'python' })
    assert.equal(again.data.pid, started.pid)
    assert.match(again.note, /already running/)

    const stopped = await berth.stop('python')
    assert.equal(stopped.state, 'stopped')
    assert.equal(stopped.pid, null)
    assert.ok(!alive(started.pid), `pid ${started.pid} survived the stop`)
    assert.match(readFileSync(home.log('python'), 'utf8'), /"status": "ready"/)
  })

  test('version() names berth\'s version and protocol 1', async () => {
    const cargo = readFileSync(path.join(repo, 'Cargo.toml'), 'utf8').match(/^version = "(.*)"$/m)[1]
    assert.deepEqual(await berth.version(), { berth: cargo, protocol: 1 })
  })

  test('a refusal is a BerthError with the launcher\'s one-line message', async () => {
    await assert.rejects(berth.start('nope'), (error) => {
      assert.ok(error instanceof BerthError && error instanceof Error)
      assert.equal(error.code, 'BERTH_REFUSED')
      assert.equal(error.message, 'no backend with id "nope"')
      return true
    })
    await assert.rejects(berth.action('python', 'Fly'), { code: 'BERTH_REFUSED', message: /Fly/ })
    await assert.rejects(berth.request({ cmd: 'fly' }), { code: 'BERTH_REFUSED', message: 'unknown command "fly"' })
    // The update verbs reach the backend's job: this one has no feed.
    await assert.rejects(berth.checkUpdate('python'), { code: 'BERTH_REFUSED', message: /python has no update section/ })
    await assert.rejects(berth.update('python'), { code: 'BERTH_REFUSED', message: /python has no update section/ })
    await assert.rejects(berth.update(''), { code: 'BERTH_USAGE' })
    // The launcher waits 300 ms for a reply nothing sends, then refuses.
    await assert.rejects(
      berth.send('python', { action: 'ping' }, { wait: { key: 'id', value: 'x' }, timeoutMs: 300 }),
      { code: 'BERTH_REFUSED', message: /python/ },
    )
    // Bad arguments never reach the socket.
    await assert.rejects(berth.start(''), { code: 'BERTH_USAGE' })
    await assert.rejects(berth.start('python', [1]), { code: 'BERTH_USAGE' })
    await assert.rejects(berth.send('python', undefined), { code: 'BERTH_USAGE' })
  })

  test('connect() reaches the same launcher; a second launch for the app is refused', async () => {
    const other = await connect({ socket: berth.socket })
    assert.equal((await other.status())[0].id, 'python')
    assert.equal(await other.close(), null)
    await assert.rejects(other.status(), { code: 'BERTH_CLOSED' })
    await assert.rejects(launch(home.options()), { code: 'BERTH_REFUSED', message: /already runs/ })
    assert.equal((await berth.status()).length, 1)
  })

  test('close() stops the launcher: it exits 0 and its socket goes', async () => {
    const exit = await berth.close()
    assert.deepEqual(exit, { code: 0, signal: null })
    assert.ok(!existsSync(berth.socket), `${berth.socket} is still there`)
    await assert.rejects(berth.status(), { code: 'BERTH_CLOSED' })
    await assert.rejects(connect({ socket: berth.socket }), { code: 'BERTH_NO_LAUNCHER' })
  })
})

describe('launch options and failures', () => {
  const home = new Home()
  after(() => home.remove())

  test('berth exiting before its socket answers rejects with its stderr line', async () => {
    const options = home.options({ backends: [`${home.root}/missing`] })
    await assert.rejects(launch(options), (error) => {
      assert.equal(error.code, 'BERTH_EXITED')
      assert.equal(error.message, `berth: backends folder ${home.root}/missing: does not exist`)
      assert.equal(error.exitCode, 2)
      return true
    })
  })

  test('a berth that cannot be run, and a bad app name, are one-line errors', async () => {
    await assert.rejects(launch(home.options({ berth: `${home.root}/no-berth` })), {
      code: 'BERTH_SPAWN',
      message: new RegExp(`cannot run ${home.root}/no-berth`),
    })
    await assert.rejects(launch(home.options({ app: 'Acme' })), { code: 'BERTH_USAGE', message: /invalid app name "Acme"/ })
  })

  test('tray: true drops --headless and passes the app\'s title and icon to berth', async () => {
    const icon = `${home.root}/acme.png`
    // No display: berth says so and serves the socket headless.
    const env = { ...home.env, DISPLAY: undefined, WAYLAND_DISPLAY: undefined }
    const berth = await launch(home.options({ tray: true, title: 'Acme Notes', icon, env }))
    try {
      const cmdline = readFileSync(`/proc/${berth.pid}/cmdline`, 'utf8').split('\0')
      assert.ok(!cmdline.includes('--headless'), cmdline.join(' '))
      assert.equal(cmdline[cmdline.indexOf('--title') + 1], 'Acme Notes')
      assert.equal(cmdline[cmdline.indexOf('--icon') + 1], icon)
      assert.deepEqual(await berth.status(), [])
    } finally {
      await berth.close()
    }
    // berth's own check of the title, in its own words.
    await assert.rejects(launch(home.options({ tray: true, title: 'x'.repeat(65), env })), {
      code: 'BERTH_EXITED',
      message: /^berth: invalid value .* for '--title <TEXT>': .* is longer than 64 characters$/,
    })
    // Headless, a title would show nowhere.
    await assert.rejects(launch(home.options({ title: 'Acme' })), { code: 'BERTH_USAGE', message: /pass tray: true/ })
  })
})
