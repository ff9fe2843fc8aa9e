// The trustless gateway read by the JS stack: CARs fetched from a running `kiln daemon`
// are hash-checked and decoded with @ipld/car, and ipfs-unixfs-exporter reads files and
// paths from those blocks alone — so a CAR that lacked a block needed to walk a path or to
// serve a byte range would fail here. `order=dfs` CARs (with and without duplicates) are
// also read the way a light client streams them: each block checked against the walk as
// it arrives, none kept.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { exporter } from 'ipfs-unixfs-exporter'
import { CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { equals } from 'multiformats/bytes'
import { sha256 } from 'multiformats/hashes/sha2'
import { Kiln, KILN_BIN, kilnSkip } from '../lib/kiln.mjs'
import { mkTemp } from '../lib/corpus.mjs'
import { readAndVerifyCar } from '../lib/car.mjs'
import { compareTree, exportBytes } from '../lib/tree-check.mjs'

let kiln, daemon, gateway, tree, root, big, dupTree, dupRoot

before(async () => {
  if (kilnSkip) return
  kiln = new Kiln('gateway')
  tree = path.join(mkTemp('gateway-tree'), 'site')
  fs.mkdirSync(path.join(tree, 'dir', 'deeper'), { recursive: true })
  big = crypto.randomBytes(3 * 1024 * 1024 + 12345)
  fs.writeFileSync(path.join(tree, 'big.bin'), big)
  fs.writeFileSync(path.join(tree, 'dir', 'hello.txt'), 'hello gateway\n')
  fs.writeFileSync(path.join(tree, 'dir', 'deeper', 'x.json'), '{"a":1}')
  root = kiln.addQ(['-r', tree])
  // Blocks that repeat: two identical multi-leaf files, a file of identical zero leaves.
  dupTree = path.join(mkTemp('gateway-dups'), 'dups')
  fs.mkdirSync(dupTree, { recursive: true })
  const twice = crypto.randomBytes(2 * 1024 * 1024 + 777)
  fs.writeFileSync(path.join(dupTree, 'a.bin'), twice)
  fs.writeFileSync(path.join(dupTree, 'b.bin'), twice)
  fs.writeFileSync(path.join(dupTree, 'zeros.bin'), Buffer.alloc(3 * 1024 * 1024))
  fs.writeFileSync(path.join(dupTree, 'hello.txt'), 'hello dups\n')
  dupRoot = kiln.addQ(['-r', dupTree])
  const child = spawn(KILN_BIN, ['daemon', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--open-loopback'], {
    env: { ...process.env, KILN_HOME: kiln.home },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  daemon = child
  for await (const line of createInterface({ input: child.stdout })) {
    const m = line.match(/^Gateway listening on (http:\/\/\S+)$/)
    if (m) gateway = m[1]
    if (line === 'Daemon is ready') break
  }
  if (!gateway) throw new Error('daemon did not print its gateway address')
})

after(async () => {
  if (daemon) {
    const exited = new Promise(resolve => daemon.on('exit', resolve))
    daemon.kill('SIGTERM')
    await exited
  }
  kiln?.cleanup()
})

async function car (target, want = root) {
  const res = await fetch(`${gateway}${target}`)
  assert.equal(res.status, 200, target)
  assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
  const out = await readAndVerifyCar(new Uint8Array(await res.arrayBuffer()))
  assert.deepEqual(out.roots.map(String), [want], 'the CAR root is the path root')
  const seen = new Set(out.blocks.map(b => String(b.cid)))
  assert.equal(seen.size, out.blocks.length, 'dups=n: each block once')
  return out
}

test('dag-scope=all: the whole tree, read back by the JS exporter', { skip: kilnSkip }, async () => {
  const { bs } = await car(`/ipfs/${root}?format=car`)
  await compareTree(bs, CID.parse(root), tree)
})

test('a path: the blocks to walk it come with the entity', { skip: kilnSkip }, async () => {
  const { bs } = await car(`/ipfs/${root}/dir/deeper/x.json?format=car&dag-scope=entity`)
  assert.equal((await exportBytes(bs, `${root}/dir/deeper/x.json`)).toString(), '{"a":1}')
  const viaAccept = await fetch(`${gateway}/ipfs/${root}/dir/hello.txt`, {
    headers: { accept: 'application/vnd.ipld.car' }
  })
  const { bs: bs2 } = await readAndVerifyCar(new Uint8Array(await viaAccept.arrayBuffer()))
  assert.equal((await exportBytes(bs2, `${root}/dir/hello.txt`)).toString(), 'hello gateway\n')
})

test('entity-bytes: exactly the leaves a byte range needs', { skip: kilnSkip }, async () => {
  const MiB = 1024 * 1024
  for (const [from, to] of [[MiB - 5, MiB + 5], [0, 0], [big.length - 100, '*']]) {
    const { bs, blocks } = await car(
      `/ipfs/${root}/big.bin?format=car&dag-scope=entity&entity-bytes=${from}:${to}`)
    const end = to === '*' ? big.length - 1 : to
    const entry = await exporter(`${root}/big.bin`, bs)
    const parts = []
    for await (const c of entry.content({ offset: from, length: end - from + 1 })) parts.push(c)
    assert.deepEqual(Buffer.concat(parts), big.subarray(from, end + 1), `${from}:${to}`)
    const leaves = blocks.filter(b => b.cid.code === 0x55).length
    assert.equal(leaves, Math.floor(end / MiB) - Math.floor(from / MiB) + 1, `leaves for ${from}:${to}`)
  }
})

test('dag-scope=block: the path and the named block, nothing below', { skip: kilnSkip }, async () => {
  const { bs, blocks } = await car(`/ipfs/${root}/big.bin?format=car&dag-scope=block`)
  assert.equal(blocks.length, 2)
  const entry = await exporter(`${root}/big.bin`, bs)
  assert.equal(Number(entry.size), big.length)
})

test('entity-bytes alone implies dag-scope=entity', { skip: kilnSkip }, async () => {
  const MiB = 1024 * 1024
  const range = `entity-bytes=${MiB - 5}:${MiB + 5}`
  const implied = await car(`/ipfs/${root}/big.bin?format=car&${range}`)
  const explicit = await car(`/ipfs/${root}/big.bin?format=car&dag-scope=entity&${range}`)
  assert.deepEqual(implied.blocks.map(b => String(b.cid)), explicit.blocks.map(b => String(b.cid)))
  const entry = await exporter(`${root}/big.bin`, implied.bs)
  const parts = []
  for await (const c of entry.content({ offset: MiB - 5, length: 11 })) parts.push(c)
  assert.deepEqual(Buffer.concat(parts), big.subarray(MiB - 5, MiB + 6))
  // another scope contradicts it
  const res = await fetch(`${gateway}/ipfs/${root}/big.bin?format=car&dag-scope=all&${range}`)
  assert.equal(res.status, 400)
})

// Streams a CAR body block by block (@ipld/car's iterator), checking each one against a
// depth-first walk from `start` as it arrives and keeping none of them: what a light
// client can do with `order=dfs`. With `dups` every occurrence must come; without, a CID
// met before is skipped (the client holds it). Returns counts.
async function checkDfsStream (body, start, dups) {
  const blocks = await CarBlockIterator.fromIterable(body)
  const stack = [start]
  const seen = new Set()
  const next = () => {
    let c = stack.pop()
    while (!dups && c != null && seen.has(String(c))) c = stack.pop()
    return c
  }
  let count = 0
  let repeats = 0
  for await (const { cid, bytes } of blocks) {
    const expected = next()
    assert.ok(expected != null, `block ${count} (${cid}) is past the end of the walk`)
    assert.equal(String(cid), String(expected), `block ${count} out of depth-first order`)
    assert.ok(equals((await sha256.digest(bytes)).bytes, cid.multihash.bytes), `hash of ${cid}`)
    if (seen.has(String(cid))) repeats++
    seen.add(String(cid))
    if (cid.code === dagPb.code) {
      const links = dagPb.decode(bytes).Links
      for (let i = links.length - 1; i >= 0; i--) stack.push(links[i].Hash)
    }
    count++
  }
  assert.equal(next(), undefined, 'the CAR ended before the walk did')
  return { count, repeats, distinct: seen.size }
}

test('order=dfs with dups=y and dups=n: checked block by block as the stream arrives', { skip: kilnSkip }, async () => {
  const fetchCar = async (dups) => {
    const res = await fetch(`${gateway}/ipfs/${dupRoot}`, {
      headers: { accept: `application/vnd.ipld.car; version=1; order=dfs; dups=${dups}` }
    })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), `application/vnd.ipld.car; version=1; order=dfs; dups=${dups}`)
    return res
  }
  const y = await checkDfsStream((await fetchCar('y')).body, CID.parse(dupRoot), true)
  const n = await checkDfsStream((await fetchCar('n')).body, CID.parse(dupRoot), false)
  assert.equal(n.repeats, 0)
  assert.equal(y.distinct, n.distinct)
  assert.equal(y.count, n.count + y.repeats)
  // b.bin repeats a.bin (its root and leaves); zeros.bin is one leaf, three times
  assert.ok(y.repeats >= 4, `only ${y.repeats} repeated blocks`)

  // The same bytes through ?format=car&car-dups=y, read whole: the tree is all there.
  const { bs, blocks } = await car(`/ipfs/${dupRoot}?format=car&car-dups=n`, dupRoot)
  assert.equal(blocks.length, n.count)
  const res = await fetch(`${gateway}/ipfs/${dupRoot}?format=car&car-dups=y`)
  assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=y')
  const all = await readAndVerifyCar(new Uint8Array(await res.arrayBuffer()))
  assert.equal(all.blocks.length, y.count)
  await compareTree(all.bs, CID.parse(dupRoot), dupTree)
  await compareTree(bs, CID.parse(dupRoot), dupTree)
})
