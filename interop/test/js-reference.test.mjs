// JS-only checks: the reference side behaves as README.md says. Runs without kiln.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarReader } from '@ipld/car'
import { murmur364, murmur3128 } from '@multiformats/murmur3'
import * as dagPb from '@ipld/dag-pb'
import { PROFILES, jsAddFile, symlinkNode, unixfsType, getBlock, withChunker } from '../lib/js.mjs'
import { findThreshold } from '../lib/hamt.mjs'
import { checkHamt } from '../lib/hamt-layout.mjs'
import { murmur3x64_128 } from '../lib/murmur.mjs'
import { writeCarV1, wrapCarV2, readAndVerifyCar } from '../lib/car.mjs'
import { WELL_KNOWN } from '../lib/wellknown.mjs'
import { randomBytes, hamtName, hamtContent, KiB, MiB } from '../lib/corpus.mjs'

const enc = new TextEncoder()
const hex = (b) => Buffer.from(b).toString('hex')


async function root (cands, opts, bs = new MemoryBlockstore()) {
  let last
  for await (const e of importer(cands, bs, opts)) last = e
  return { cid: last.cid, bs }
}

for (const p of Object.keys(PROFILES)) {
  test(`well-known CIDs via JS (${p})`, async () => {
    assert.equal((await root([{ content: new Uint8Array(0) }], PROFILES[p].js())).cid.toString(), WELL_KNOWN.emptyFile[p])
    assert.equal((await root([{ path: 'd' }], PROFILES[p].js())).cid.toString(), WELL_KNOWN.emptyDir[p])
  })
}

test('profile option sets are equivalent to the explicit ones', async () => {
  const data = randomBytes(3 * 256 * KiB + 5, 7)
  // v0 profile == {cidVersion:0, rawLeaves:false}
  assert.equal((await jsAddFile(data, { profile: 'unixfs-v0-2015' })).cid.toString(), (await jsAddFile(data, PROFILES.v0.js())).cid.toString())
  // unixfs-v1-2025 == explicit 1 MiB chunks, 1024 links, raw leaves, CIDv1 (block-bytes only matters for dirs)
  const big = randomBytes(2 * MiB + 1, 8)
  const { fixedSize } = await import('ipfs-unixfs-importer/chunker')
  const { balanced } = await import('ipfs-unixfs-importer/layout')
  const explicit = { cidVersion: 1, rawLeaves: true, chunker: fixedSize({ chunkSize: MiB }), layout: balanced({ maxChildrenPerNode: 1024 }), shardSplitStrategy: 'block-bytes' }
  assert.equal((await jsAddFile(big, PROFILES['v1-2025'].js())).cid.toString(), (await jsAddFile(big, explicit)).cid.toString())
})

test('single-chunk file is its own root; chunk+1 is a root with 2 links', async () => {
  for (const [p, chunk] of [['v0', 256 * KiB], ['v1', 256 * KiB], ['v1-2025', MiB]]) {
    const one = await jsAddFile(randomBytes(chunk, 1), PROFILES[p].js())
    assert.equal(one.cid.code, p === 'v0' ? dagPb.code : 0x55, `${p} single chunk root codec`)
    const two = await jsAddFile(randomBytes(chunk + 1, 1), PROFILES[p].js())
    assert.equal(dagPb.decode(getBlock(two.bs, two.cid)).Links.length, 2, p)
  }
})

test('--raw-leaves with CIDv0: v1 raw leaves under a v0 root', async () => {
  const r = await jsAddFile(randomBytes(256 * KiB + 1, 3), { cidVersion: 0, rawLeaves: true })
  assert.equal(r.cid.version, 0)
  const links = dagPb.decode(getBlock(r.bs, r.cid)).Links
  assert.ok(links.every(l => l.Hash.version === 1 && l.Hash.code === 0x55))
})

test('size-1000 chunker under unixfs-v1-2025 keeps 1024 links per node', async () => {
  const r = await jsAddFile(randomBytes(1025 * 1000, 4), withChunker(PROFILES['v1-2025'].js(), 1000))
  const top = dagPb.decode(getBlock(r.bs, r.cid))
  assert.equal(top.Links.length, 2)
  assert.equal(dagPb.decode(getBlock(r.bs, top.Links[0].Hash)).Links.length, 1024)
})

test('murmur3 vectors: @multiformats/murmur3 == independent BigInt implementation', async () => {
  for (const s of ['', 'a', 'hello.txt', 'hello', 'The quick brown fox jumps over the lazy dog', hamtName(12345)]) {
    const [h1, h2] = murmur3x64_128(enc.encode(s))
    const want = h1.toString(16).padStart(16, '0') + h2.toString(16).padStart(16, '0')
    assert.equal(hex(await murmur3128.encode(enc.encode(s))), want, s)
    assert.equal(hex(await murmur364.encode(enc.encode(s))), want.slice(0, 16), s)
  }
  assert.equal(hex(await murmur364.encode(enc.encode(''))), '0000000000000000')
  assert.equal(hex(await murmur364.encode(enc.encode('a'))), '85555565f6597889')
  assert.equal(hex(await murmur364.encode(enc.encode('hello.txt'))), 'df19ab11523994d9')
})

test('symlink: importer output == node built from primitives', async () => {
  for (const [p, v] of [['v0', 0], ['v1', 1], ['v1-2025', 1]]) {
    for (const target of ['README.md', 'does/not/exist', '/etc/hostname', '../ü']) {
      const r = await root([{ path: 'l', link: target }], PROFILES[p].js())
      const mine = await symlinkNode(target, v)
      assert.equal(r.cid.toString(), mine.cid.toString(), `${p} ${target}`)
      assert.equal(unixfsType(r.bs, r.cid), 'symlink')
    }
  }
})

for (const p of Object.keys(PROFILES)) {
  test(`HAMT threshold and layout (${p})`, async () => {
    const n = await findThreshold(p)
    const cands = (k) => Array.from({ length: k }, (_, i) => ({ path: `hamt/${hamtName(i)}`, content: enc.encode(hamtContent(i)) }))
    const flat = await root(cands(n), PROFILES[p].js())
    assert.equal(unixfsType(flat.bs, flat.cid), 'directory')
    const sh = await root(cands(n + 1), PROFILES[p].js())
    assert.equal(unixfsType(sh.bs, sh.cid), 'hamt-sharded-directory')
    const names = checkHamt(sh.bs, sh.cid)
    assert.equal(names.length, n + 1)
  })
}

test('small HAMT (threshold forced low) has leaf entries at the root, bitfield layout', async () => {
  const cands = ['a', 'hello.txt', 'b', 'c', 'zzz'].map(n => ({ path: `d/${n}`, content: enc.encode(n) }))
  const r = await root(cands, { ...PROFILES.v1.js(), shardSplitThresholdBytes: 1 })
  assert.equal(unixfsType(r.bs, r.cid), 'hamt-sharded-directory')
  const node = dagPb.decode(getBlock(r.bs, r.cid))
  // 'a' -> h1 byte0 0x85, 'hello.txt' -> 0xdf
  assert.ok(node.Links.some(l => l.Name === '85a'))
  assert.ok(node.Links.some(l => l.Name === 'DFhello.txt'))
  checkHamt(r.bs, r.cid)
})

test('CARv2 wrapper built by hand is read by @ipld/car', async () => {
  const r = await jsAddFile(randomBytes(600 * KiB, 9), PROFILES.v1.js())
  const v1 = await writeCarV1([r.cid], r.bs)
  for (const padding of [0, 13]) {
    const v2 = wrapCarV2(v1, { padding })
    const reader = await CarReader.fromBytes(v2)
    assert.equal(reader.version, 2)
    assert.deepEqual((await reader.getRoots()).map(String), [r.cid.toString()])
    const { blocks } = await readAndVerifyCar(v2)
    assert.equal(blocks.length, 4)
  }
})
