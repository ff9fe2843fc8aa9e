// 4. Well-known CIDs (SPECS §1) through kiln.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { PROFILES } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { mkTemp } from '../lib/corpus.mjs'
import { WELL_KNOWN } from '../lib/wellknown.mjs'

const scratch = mkTemp('wk')
after(() => fs.rmSync(scratch, { recursive: true, force: true }))

describe('well-known CIDs via kiln', { skip: kilnSkip }, () => {
  let kiln
  const k = () => (kiln ??= new Kiln('wellknown'))
  after(() => kiln?.cleanup())
  const emptyFile = path.join(scratch, 'empty')
  const emptyDir = path.join(scratch, 'emptydir')
  fs.writeFileSync(emptyFile, '')
  fs.mkdirSync(emptyDir)

  for (const [pname, P] of Object.entries(PROFILES)) {
    test(`empty file (${pname})`, () => assert.equal(k().addQ([...P.kiln, emptyFile]), WELL_KNOWN.emptyFile[pname]))
    test(`empty directory (${pname})`, () => assert.equal(k().addQ([...P.kiln, '-r', emptyDir]), WELL_KNOWN.emptyDir[pname]))
    test(`empty stdin (${pname})`, () => assert.equal(k().addQ([...P.kiln, '-'], { input: '' }), WELL_KNOWN.emptyFile[pname]))
  }

  test('kiln cat bafkqaaa gives empty output (identity CID, fresh repo)', () => {
    const fresh = new Kiln('identity')
    try {
      const r = fresh.ok(['cat', 'bafkqaaa'])
      assert.equal(r.stdout.length, 0)
      fresh.ok(['block', 'stat', 'bafkqaaa'])
    } finally { fresh.cleanup() }
  })

  test('kiln cat of the empty raw block and the empty dag-pb file give empty output', () => {
    for (const c of [WELL_KNOWN.emptyFile.v0, WELL_KNOWN.emptyFile.v1]) assert.equal(k().ok(['cat', c]).stdout.length, 0, c)
  })
})
