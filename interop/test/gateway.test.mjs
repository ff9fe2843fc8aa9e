// The trustless gateway read by the JS stack: CARs fetched from a running `kiln daemon`
// are hash-checked and decoded with @ipld/car, and ipfs-unixfs-exporter reads files and
// paths from those blocks alone — so a CAR that lacked a block needed to walk a path or to
// serve a byte range would fail here.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { exporter } from 'ipfs-unixfs-exporter'
import { Kiln, KILN_BIN, kilnSkip } from '../lib/kiln.mjs'
import { mkTemp } from '../lib/corpus.mjs'
import { readAndVerifyCar } from '../lib/car.mjs'
import { compareTree, exportBytes } from '../lib/tree-check.mjs'

let kiln, daemon, gateway, tree, root, big

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
  const child = spawn(KILN_BIN, ['daemon', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0'], {
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

async function car (target) {
  const res = await fetch(`${gateway}${target}`)
  assert.equal(res.status, 200, target)
  assert.equal(res.headers.get('content-type'), 'application/vnd.ipld.car; version=1; order=dfs; dups=n')
  const out = await readAndVerifyCar(new Uint8Array(await res.arrayBuffer()))
  assert.deepEqual(out.roots.map(String), [root], 'the CAR root is the path root')
  const seen = new Set(out.blocks.map(b => String(b.cid)))
  assert.equal(seen.size, out.blocks.length, 'dups=n: each block once')
  return out
}

test('dag-scope=all: the whole tree, read back by the JS exporter', { skip: kilnSkip }, async () => {
  const { bs } = await car(`/ipfs/${root}?format=car`)
  const { CID } = await import('multiformats/cid')
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
