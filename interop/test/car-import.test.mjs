// 3. CARs written by JS (CarWriter over importer output) import into kiln, and
// corrupt CARs are refused.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { PROFILES, jsAddFile, jsAddDir } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { corpusFile, mixedTree, mkTemp, randomBytes } from '../lib/corpus.mjs'
import { writeCarV1, wrapCarV2, carSections } from '../lib/car.mjs'

const scratch = mkTemp('carimp')
after(() => fs.rmSync(scratch, { recursive: true, force: true }))
const save = (name, bytes) => { const p = path.join(scratch, name); fs.writeFileSync(p, bytes); return p }

function cat (kiln, arg) {
  return kiln.ok(['cat', arg]).stdout
}

// Best available "is it pinned?" probe: `kiln pin ls` if the CLI has it.
function pinned (kiln, cid) {
  const r = kiln.run(['pin', 'ls'])
  if (r.status !== 0) return undefined
  return r.stdout.toString().includes(cid)
}

function oneLineError (r, what) {
  assert.notEqual(r.status, 0, `${what}: kiln dag import must exit non-zero`)
  const msg = r.stderr.trim()
  assert.ok(msg.length > 0, `${what}: an error message on stderr`)
  assert.equal(msg.split('\n').length, 1, `${what}: a one-line error, got:\n${msg}`)
}

describe('JS CAR → kiln dag import', { skip: kilnSkip }, () => {
  let kiln
  const k = () => (kiln ??= new Kiln('import'))
  after(() => kiln?.cleanup())

  for (const [pname, P] of Object.entries(PROFILES)) {
    test(`file CARv1 (${pname})`, async () => {
      const file = corpusFile('c1m-plus1')
      const js = await jsAddFile(file, P.js())
      const car = save(`file-${pname}.car`, await writeCarV1([js.cid], js.bs))
      k().ok(['dag', 'import', car])
      assert.ok(cat(k(), js.cid.toString()).equals(fs.readFileSync(file)))
      const pin = pinned(k(), js.cid.toString())
      if (pin !== undefined) assert.ok(pin, 'root is pinned after import')
    })

    test(`directory CARv1 (${pname})`, async () => {
      const dir = mixedTree()
      const js = await jsAddDir(dir, P.js())
      const car = save(`dir-${pname}.car`, await writeCarV1([js.cid], js.bs))
      k().ok(['dag', 'import', car])
      const c = js.cid.toString()
      for (const rel of ['README.md', 'hello world.txt', '日本語のファイル.txt', 'a-256k-plus1.bin', 'nested/deeper/deepest/level3.bin', 'nested/deeper/deepest/empty file']) {
        assert.ok(cat(k(), `${c}/${rel}`).equals(fs.readFileSync(path.join(dir, rel))), rel)
      }
    })
  }

  for (const padding of [0, 13]) {
    test(`CARv2 wrapping a v1 payload (padding ${padding})`, async () => {
      const data = randomBytes(700 * 1024, 500 + padding)
      const js = await jsAddFile(data, PROFILES.v1.js())
      const car = save(`v2-${padding}.car`, wrapCarV2(await writeCarV1([js.cid], js.bs), { padding }))
      k().ok(['dag', 'import', car])
      assert.ok(cat(k(), js.cid.toString()).equals(Buffer.from(data)))
    })
  }

  test('several CARs in one import', async () => {
    const a = await jsAddFile(randomBytes(1000, 601), PROFILES.v1.js())
    const b = await jsAddFile(randomBytes(300000, 602), PROFILES.v0.js())
    const ca = save('multi-a.car', await writeCarV1([a.cid], a.bs))
    const cb = save('multi-b.car', await writeCarV1([b.cid], b.bs))
    k().ok(['dag', 'import', ca, cb])
    assert.equal(cat(k(), a.cid.toString()).length, 1000)
    assert.equal(cat(k(), b.cid.toString()).length, 300000)
  })

  test('corrupt CAR (flipped byte in a block) is refused, nothing pinned', async () => {
    const kb = new Kiln('import-corrupt')
    try {
      const data = randomBytes(600 * 1024, 700)
      const js = await jsAddFile(data, PROFILES.v1.js())
      const v1 = await writeCarV1([js.cid], js.bs)
      const bad = Buffer.from(v1)
      bad[bad.length - 10] ^= 0x01 // inside the data of the last block
      const r = kb.run(['dag', 'import', save('flipped.car', bad)])
      oneLineError(r, 'flipped byte')
      assert.notEqual(pinned(kb, js.cid.toString()), true, 'root must not be pinned')
      // The DAG must not be complete/usable from the bad CAR
      assert.notEqual(kb.run(['cat', js.cid.toString()]).status, 0, 'kiln cat of the bad DAG must fail')
    } finally { kb.cleanup() }
  })

  test('corrupt CAR (root block flipped) is refused', async () => {
    const kb = new Kiln('import-corrupt-root')
    try {
      const js = await jsAddFile(randomBytes(600 * 1024, 701), PROFILES.v1.js())
      const v1 = await writeCarV1([js.cid], js.bs)
      const bad = Buffer.from(v1)
      // first section is the root (dag-pb, written first by writeCarV1)
      const root = carSections(v1)[0]
      assert.ok(Buffer.from(v1.subarray(root.cidStart, root.dataStart)).equals(Buffer.from(js.cid.bytes)))
      bad[root.end - 3] ^= 0xff
      const r = kb.run(['dag', 'import', save('flipped-root.car', bad)])
      oneLineError(r, 'flipped root byte')
      assert.notEqual(pinned(kb, js.cid.toString()), true)
      assert.notEqual(kb.run(['block', 'stat', js.cid.toString()]).status, 0, 'the corrupt root block must not be stored')
    } finally { kb.cleanup() }
  })

  test('truncated CAR is refused, nothing pinned', async () => {
    const kb = new Kiln('import-trunc')
    try {
      const js = await jsAddFile(randomBytes(600 * 1024, 702), PROFILES.v1.js())
      const v1 = await writeCarV1([js.cid], js.bs)
      const r = kb.run(['dag', 'import', save('truncated.car', v1.subarray(0, v1.length - 1000))])
      oneLineError(r, 'truncated')
      assert.notEqual(pinned(kb, js.cid.toString()), true, 'root must not be pinned')
      assert.notEqual(kb.run(['cat', js.cid.toString()]).status, 0, 'kiln cat of the incomplete DAG must fail')
    } finally { kb.cleanup() }
  })
})
