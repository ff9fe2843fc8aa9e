// Other CLI views of the same DAG, checked against the JS importer's output.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { PROFILES, jsAddFile, jsAddDir, getBlock, unixfsType } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { corpusFile, mixedTree, hamtTree } from '../lib/corpus.mjs'
import { findThreshold } from '../lib/hamt.mjs'

// `kiln ls` lines: `CID SIZE NAME` (NAME may hold spaces; directories end in `/`).
function parseLs (out) {
  return out.toString().split('\n').filter(Boolean).map(l => {
    const m = /^(\S+) (\S+) (.*)$/.exec(l)
    assert.ok(m, `kiln ls line: ${JSON.stringify(l)}`)
    return { cid: m[1], size: m[2], name: m[3] }
  })
}

describe('kiln ls / block stat / add -n / --pin=false', { skip: kilnSkip }, () => {
  let kiln
  const k = () => (kiln ??= new Kiln('misc'))
  after(() => kiln?.cleanup())

  for (const pname of ['v0', 'v1-2025']) {
    const P = PROFILES[pname]
    test(`kiln ls of the mixed tree == JS root links (${pname})`, async () => {
      const dir = mixedTree()
      const js = await jsAddDir(dir, P.js(), { hidden: true })
      const cid = k().addQ([...P.kiln, '-r', '-H', dir])
      assert.equal(cid, js.cid.toString())
      const links = dagPb.decode(getBlock(js.bs, js.cid)).Links
      const got = parseLs(k().ok(['ls', cid]).stdout)
      assert.equal(got.length, links.length)
      for (const l of links) {
        const isDir = unixfsType(js.bs, l.Hash) === 'directory'
        const e = got.find(g => g.name === (isDir ? `${l.Name}/` : l.Name))
        assert.ok(e, `entry ${l.Name}${isDir ? '/' : ''} listed`)
        assert.equal(e.cid, l.Hash.toString(), l.Name)
        const st = fs.lstatSync(path.join(dir, l.Name))
        if (st.isFile()) assert.equal(e.size, String(st.size), `${l.Name} size`)
      }
    })
  }

  test('kiln ls of a HAMT directory lists every entry', async () => {
    const dir = hamtTree((await findThreshold('v1-2025')) + 1)
    const cid = k().addQ(['-r', dir])
    const got = parseLs(k().ok(['ls', cid]).stdout).map(e => e.name).sort()
    assert.deepEqual(got, fs.readdirSync(dir).sort())
  })

  test('kiln block stat: key and size == JS block', async () => {
    const file = corpusFile('deep-175x256k-plus1')
    const js = await jsAddFile(file, PROFILES.v0.js())
    const cid = k().addQ(['--cid-version', '0', file])
    const out = k().ok(['block', 'stat', cid]).stdout.toString()
    assert.match(out, new RegExp(`\\b${cid}\\b`))
    const size = /Size:\s*(\d+)/.exec(out)?.[1]
    assert.equal(size, String(getBlock(js.bs, js.cid).length), out)
  })

  test('add -n computes the CID and stores nothing', async () => {
    const fresh = new Kiln('only-hash')
    try {
      const file = corpusFile('c1m-plus1')
      const js = await jsAddFile(file, PROFILES['v1-2025'].js())
      assert.equal(fresh.addQ(['-n', file]), js.cid.toString())
      assert.notEqual(fresh.run(['block', 'stat', js.cid.toString()]).status, 0, 'root block must not be stored')
    } finally { fresh.cleanup() }
  })

  test('add --pin=false stores but does not pin', async () => {
    const fresh = new Kiln('nopin')
    try {
      const file = corpusFile('c256k-plus1')
      const cid = fresh.addQ(['--pin=false', file])
      fresh.ok(['block', 'stat', cid])
      assert.ok(!fresh.ok(['pin', 'ls']).stdout.toString().includes(cid), 'not in pin ls')
    } finally { fresh.cleanup() }
  })
})
