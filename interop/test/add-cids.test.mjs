// 1. `kiln add -Q` root CIDs == ipfs-unixfs-importer root CIDs, per profile.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { PROFILES, jsAddFile, jsAddDir, jsAddWrapped, withChunker, symlinkNode, unixfsType } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { FILE_CASES, corpusFile, mixedTree, hamtTree, mkTemp, writeTree, randomBytes } from '../lib/corpus.mjs'
import { findThreshold } from '../lib/hamt.mjs'
import { diagnose } from '../lib/diagnose.mjs'

async function same (kiln, kilnCid, js) {
  if (kilnCid !== js.cid.toString()) {
    assert.fail(`CID mismatch\n${await diagnose(kiln, kilnCid, js.cid.toString(), js.bs)}`)
  }
}

const scratch = mkTemp('add')
after(() => fs.rmSync(scratch, { recursive: true, force: true }))

for (const [pname, P] of Object.entries(PROFILES)) {
  describe(`profile ${pname} (kiln add ${P.kiln.join(' ') || '(no flags)'})`, { skip: kilnSkip }, () => {
    let kiln
    const k = () => (kiln ??= new Kiln(`add-${pname}`))
    after(() => kiln?.cleanup())

    for (const name of Object.keys(FILE_CASES)) {
      test(`file ${name} (${FILE_CASES[name]} B)`, async () => {
        const file = corpusFile(name)
        const js = await jsAddFile(file, P.js())
        await same(k(), k().addQ([...P.kiln, file]), js)
      })
    }

    test('stdin (-) 300000 random bytes', async () => {
      const data = randomBytes(300000, 77)
      const js = await jsAddFile(data, P.js())
      await same(k(), k().addQ([...P.kiln, '-'], { input: data }), js)
    })

    test('--chunker size-1000, 1025*1000+1 bytes (multi-level tree)', async () => {
      const file = corpusFile('chunk1000', 1025 * 1000 + 1)
      const js = await jsAddFile(file, withChunker(P.js(), 1000))
      await same(k(), k().addQ([...P.kiln, '--chunker', 'size-1000', file]), js)
    })

    if (pname === 'v1-2025') {
      test('--profile unixfs-v1-2025 == no flags', async () => {
        const file = corpusFile('c1m-plus1')
        assert.equal(k().addQ(['--profile', 'unixfs-v1-2025', file]), k().addQ([file]))
      })
    }
    if (pname === 'v0') {
      test('--profile unixfs-v0-2015 == --cid-version 0', async () => {
        const file = corpusFile('c256k-plus1')
        const js = await jsAddFile(file, { profile: 'unixfs-v0-2015' })
        await same(k(), k().addQ(['--profile', 'unixfs-v0-2015', file]), js)
      })
      for (const name of ['one', 'c256k-exact', 'c256k-plus1', 'deep-175x256k-plus1']) {
        test(`--cid-version 0 --raw-leaves, file ${name}`, async () => {
          const file = corpusFile(name)
          const js = await jsAddFile(file, { cidVersion: 0, rawLeaves: true })
          await same(k(), k().addQ(['--cid-version', '0', '--raw-leaves', file]), js)
        })
      }
    }

    test('-w wraps a single file in a directory', async () => {
      const file = corpusFile('c256k-plus1')
      const js = await jsAddWrapped(file, P.js())
      await same(k(), k().addQ([...P.kiln, '-w', file]), js)
    })

    test('-r mixed tree (unicode/space names, nested and empty dirs, symlinks incl. dangling), hidden skipped', async () => {
      const dir = mixedTree()
      const js = await jsAddDir(dir, P.js(), { hidden: false })
      await same(k(), k().addQ([...P.kiln, '-r', dir]), js)
    })

    test('-r -H mixed tree, hidden included', async () => {
      const dir = mixedTree()
      const js = await jsAddDir(dir, P.js(), { hidden: true })
      await same(k(), k().addQ([...P.kiln, '-r', '-H', dir]), js)
    })

    test('-r empty directory', async () => {
      const dir = writeTree(path.join(scratch, `empty-${pname}`, 'empty'), {})
      const js = await jsAddDir(dir, P.js())
      await same(k(), k().addQ([...P.kiln, '-r', dir]), js)
    })

    test('-r directory holding only a symlink and an empty dir', async () => {
      const dir = writeTree(path.join(scratch, `links-${pname}`, 'links'), { dangling: { symlink: '../nowhere/ü' }, e: {} })
      const js = await jsAddDir(dir, P.js())
      await same(k(), k().addQ([...P.kiln, '-r', dir]), js)
    })

    test('a symlink path given directly is added as a UnixFS symlink', async () => {
      const base = path.join(scratch, `direct-${pname}`)
      fs.mkdirSync(base, { recursive: true })
      const l = path.join(base, 'dangling')
      fs.symlinkSync('target/does-not-exist', l)
      const want = await symlinkNode('target/does-not-exist', P.cidVersion)
      assert.equal(k().addQ([...P.kiln, l]), want.cid.toString())
    })

    test('HAMT threshold: count entries stay flat, count+1 shards', async () => {
      const n = await findThreshold(pname)
      for (const count of [n, n + 1]) {
        const dir = hamtTree(count)
        const js = await jsAddDir(dir, P.js())
        assert.equal(unixfsType(js.bs, js.cid), count === n ? 'directory' : 'hamt-sharded-directory')
        await same(k(), k().addQ([...P.kiln, '-r', dir]), js)
      }
    })
  })
}
