// --with-parent, as an app sees it: the app's process dies by SIGKILL,
// with no chance to call close(), and berth still stops the backend and
// exits.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, test } from 'node:test'

import { Home, alive, waitUntil } from './helpers.js'

const home = new Home()
after(() => home.remove())

/** An app: launches berth, starts python, prints both pids, then idles. */
const APP = `
import { launch } from ${JSON.stringify(new URL('../index.js', import.meta.url).href)}
const options = JSON.parse(process.argv[1])
const berth = await launch(options)
const python = await berth.start('python')
console.log(JSON.stringify({ berth: berth.pid, python: python.pid }))
setInterval(() => {}, 1000)
`

test('an app killed with SIGKILL leaves neither berth nor its backend running', async () => {
  home.shippedPython()
  const app = spawn(process.execPath, ['--input-type=module', '-e', APP, JSON.stringify(home.options())], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const pids = await new Promise((resolve, reject) => {
    let out = ''
    app.stdout.on('data', (data) => {
      out += data
      if (out.includes('\n')) resolve(JSON.parse(out))
    })
    app.once('exit', (code) => reject(new Error(`the app exited (${code}) before starting python`)))
  })
  assert.ok(alive(pids.berth) && alive(pids.python), JSON.stringify(pids))
  app.kill('SIGKILL')
  // berth stops the backend (its stop timeout is 5 s) and exits; the
  // deadline is three times that.
  const gone = await waitUntil(15_000, () => !alive(pids.berth) && !alive(pids.python))
  assert.ok(gone, `still running after the app died: ${JSON.stringify({ berth: alive(pids.berth), python: alive(pids.python) })}`)
})
