// watch() against the real berth and the real PyInstaller build: one
// launcher for the file.

import assert from 'node:assert/strict'
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { before, describe, test } from 'node:test'

import { launchedPython, waitUntil } from './helpers.js'

/** The launcher's open socket descriptors (its listener and every client). */
function sockets(pid) {
  const dir = `/proc/${pid}/fd`
  return readdirSync(dir).filter((fd) => {
    try {
      return readlinkSync(path.join(dir, fd)).startsWith('socket:')
    } catch {
      return false
    }
  }).length
}

/** Consecutive repeats folded: starting, starting, running -> starting, running. */
function folded(states) {
  return states.filter((state, i) => state !== states[i - 1])
}

describe('the watch of a launched berth', () => {
  const shared = launchedPython()
  const { home } = shared
  let berth
  before(() => ({ berth } = shared))

  test('watch() gives the status array, then starting -> running -> stopped, a new file and its removal', { timeout: 60_000 }, async () => {
    const watch = berth.watch()
    const first = await watch.next()
    assert.deepEqual(
      first.value.map((s) => [s.id, s.state]),
      [['python', 'stopped']],
    )
    const during = sockets(berth.pid)
    const extra = path.join(home.backends, 'extra.yaml')

    const states = []
    const events = (async () => {
      for await (const item of { [Symbol.asyncIterator]: () => watch }) {
        if (item.event === 'status' && item.backend.id === 'python') {
          states.push(item.backend.state)
          if (item.backend.state === 'stopped') writeFileSync(extra, 'id: [\n')
        } else if (item.event === 'status' && item.backend.file === extra) {
          assert.equal(item.backend.state, 'invalid', JSON.stringify(item))
          rmSync(extra)
        } else {
          assert.deepEqual(item, { event: 'removed', file: extra })
          break
        }
      }
    })()
    const started = await berth.start('python')
    assert.equal(started.state, 'running')
    await berth.stop('python')
    await events
    const order = folded(states)
    const at = (state) => order.indexOf(state)
    assert.ok(at('starting') !== -1 && at('starting') < at('running') && at('running') < at('stopped'), order.join(' -> '))

    // Leaving the loop closed the watch's connection: the launcher lets it
    // go at the latest when it has a change to send.
    writeFileSync(extra, 'id: [\n')
    assert.ok(await waitUntil(10_000, () => sockets(berth.pid) < during), 'the watch\'s connection is still open')
    rmSync(extra)
  })
})
