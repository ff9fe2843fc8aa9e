// 2. CARs written by `kiln dag export` are read by @ipld/car, every block hash is
// verified in JS, and ipfs-unixfs-exporter gets the original bytes / tree back.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { CarBlockIterator } from '@ipld/car'
import { PROFILES, jsAddFile, jsAddDir, getBlock } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { corpusFile, mixedTree, hamtTree } from '../lib/corpus.mjs'
import { findThreshold } from '../lib/hamt.mjs'
import { readAndVerifyCar } from '../lib/car.mjs'
import { compareTree, exportBytes, dagCids } from '../lib/tree-check.mjs'

describe('kiln dag export → JS', { skip: kilnSkip }, () => {
  let kiln
  const k = () => (kiln ??= new Kiln('export'))
  after(() => kiln?.cleanup())

  async function exportAndCheck (cid, js) {
    const r = k().ok(['dag', 'export', cid])
    const car = r.stdout
    const { roots, blocks, bs, version } = await readAndVerifyCar(car)
    assert.equal(version, 1, 'kiln dag export writes CARv1')
    assert.deepEqual(roots.map(String), [cid], 'CAR roots')
    // the streaming reader agrees
    const it = await CarBlockIterator.fromBytes(car)
    let n = 0
    for await (const _ of it) n++ // eslint-disable-line no-unused-vars
    assert.equal(n, blocks.length)
    const names = blocks.map(b => b.cid.toString())
    assert.equal(new Set(names).size, names.length, 'no duplicate blocks')
    if (js) {
      // exactly the blocks of the JS importer's DAG (same CID versions too)
      const want = [...dagCids(js.bs, js.cid, getBlock)].sort()
      assert.deepEqual([...names].sort(), want, 'block set == JS importer DAG')
    }
    return bs
  }

  for (const [pname, P] of Object.entries(PROFILES)) {
    test(`file (175×256KiB+1, ${pname})`, async () => {
      const file = corpusFile('deep-175x256k-plus1')
      const cid = k().addQ([...P.kiln, file])
      const bs = await exportAndCheck(cid, await jsAddFile(file, P.js()))
      assert.ok((await exportBytes(bs, cid)).equals(fs.readFileSync(file)), 'exported bytes == original')
    })

    test(`directory (mixed tree, -H, ${pname})`, async () => {
      const dir = mixedTree()
      const cid = k().addQ([...P.kiln, '-r', '-H', dir])
      const bs = await exportAndCheck(cid, await jsAddDir(dir, P.js(), { hidden: true }))
      await compareTree(bs, (await import('multiformats/cid')).CID.parse(cid), dir, { hidden: true })
      // path resolution through the exporter
      const sub = await exportBytes(bs, `/ipfs/${cid}/nested/deeper/deepest/level3.bin`)
      assert.ok(sub.equals(fs.readFileSync(`${dir}/nested/deeper/deepest/level3.bin`)))
    })
  }

  test('HAMT directory (unixfs-v1-2025, threshold+1 entries)', async () => {
    const dir = hamtTree((await findThreshold('v1-2025')) + 1)
    const cid = k().addQ(['-r', dir])
    const bs = await exportAndCheck(cid, await jsAddDir(dir, PROFILES['v1-2025'].js()))
    const { CID } = await import('multiformats/cid')
    const n = await compareTree(bs, CID.parse(cid), dir)
    assert.ok(n > 3000)
    const one = await exportBytes(bs, `/ipfs/${cid}/${fs.readdirSync(dir)[17]}`)
    assert.ok(one.equals(fs.readFileSync(`${dir}/${fs.readdirSync(dir)[17]}`)))
  })

  test('HAMT directory (v0, threshold+1 entries)', async () => {
    const dir = hamtTree((await findThreshold('v0')) + 1)
    const cid = k().addQ(['--cid-version', '0', '-r', dir])
    const bs = await exportAndCheck(cid, await jsAddDir(dir, PROFILES.v0.js()))
    const { CID } = await import('multiformats/cid')
    await compareTree(bs, CID.parse(cid), dir)
  })
})
