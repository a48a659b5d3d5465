// The Electron example is code people copy: it must at least parse as the
// ES module it is (Electron itself is not installed here).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

test('examples/electron-main.js passes node --check', () => {
  const example = fileURLToPath(new URL('../examples/electron-main.js', import.meta.url))
  const run = spawnSync(process.execPath, ['--check', example], { encoding: 'utf8' })
  assert.equal(run.status, 0, run.stderr)
})
