// logs() against the real berth and the real PyInstaller build: one
// launcher for the file.

import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'

import { launchedPython } from './helpers.js'

describe('the logs of a launched berth', () => {
  const shared = launchedPython()
  let berth
  before(() => ({ berth } = shared))

  test('logs() gives the last lines, and with follow each new one with its run', { timeout: 60_000 }, async () => {
    const python = await berth.start('python')
    const history = []
    for await (const line of berth.logs('python', { lines: 100 })) history.push(line)
    const ready = history.find((l) => l.stream === 'stdout' && l.line.includes('"status": "ready"'))
    assert.ok(ready, JSON.stringify(history))
    assert.deepEqual(Object.keys(ready).sort(), ['event', 'id', 'line', 'run', 'stream'])
    assert.equal(ready.event, 'log')
    assert.equal(ready.id, 'python')
    assert.equal(ready.run, python.pid)

    // The last line of the history proves the stream is set up; what the
    // backend prints after it follows.
    const follow = berth.logs('python', { follow: true, lines: 1 })
    const last = await follow.next()
    assert.equal(last.value.event, 'log')
    assert.equal(last.value.id, 'python')
    await berth.send('python', { action: 'ping', id: 'followed' })
    let line
    for await (line of { [Symbol.asyncIterator]: () => follow }) if (line.line.includes('"followed"')) break
    assert.equal(line.stream, 'stdout')
    assert.deepEqual(JSON.parse(line.line), { reply: 'pong', id: 'followed' })
    assert.equal(line.run, python.pid)
    await berth.stop('python')
  })

  test('an unknown id is refused with the launcher\'s message', async () => {
    await assert.rejects(
      async () => {
        for await (const line of berth.logs('nope')) assert.fail(JSON.stringify(line))
      },
      { code: 'BERTH_REFUSED', message: 'no backend with id "nope"' },
    )
  })
})
