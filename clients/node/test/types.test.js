// index.d.ts against index.js: every export and every client method that
// the code has is declared, and nothing declared is missing from the code.
// (The types themselves were checked with tsc --strict when written; the
// tests do not need TypeScript installed.)

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import * as api from '../index.js'

const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')

test('index.d.ts declares exactly the exports of index.js', () => {
  const declared = [...dts.matchAll(/^export declare (?:function|class|const) (\w+)/gm)].map((m) => m[1])
  assert.deepEqual(declared.sort(), Object.keys(api).sort())
})

test('index.d.ts declares exactly the methods and properties of a client', () => {
  const body = dts.slice(dts.indexOf('export declare class Client {'))
  const block = body.slice(0, body.indexOf('\n}\n'))
  const declared = [...block.matchAll(/^ {2}(?:readonly )?(\w+)[<(:]/gm)].map((m) => m[1])
  const proto = Object.getOwnPropertyNames(api.Client.prototype).filter((name) => name !== 'constructor')
  assert.deepEqual(declared.sort(), proto.sort())
})

test('index.d.ts names every error code the code has', () => {
  const union = dts.slice(dts.indexOf('export type BerthErrorCode'), dts.indexOf('export declare const codes'))
  const declared = [...union.matchAll(/\| '(BERTH_\w+)'/g)].map((m) => m[1])
  assert.deepEqual(declared.sort(), Object.values(api.codes).sort())
})
