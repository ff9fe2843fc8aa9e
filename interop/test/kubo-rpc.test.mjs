// kubo-rpc-client (unmodified, pinned) against a running `kiln daemon`: the RPC subset
// kiln serves so far (version, id, add, cat, ls, block, pin, repo, dag export).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { create } from 'kubo-rpc-client'
import { CarReader } from '@ipld/car'
import { Kiln, kilnSkip, startDaemon } from '../lib/kiln.mjs'

let kiln, daemon, client


const concat = async (it) => {
  const parts = []
  for await (const p of it) parts.push(p)
  return Buffer.concat(parts)
}
const all = async (it) => {
  const out = []
  for await (const x of it) out.push(x)
  return out
}

before(async () => {
  if (kilnSkip) return
  kiln = new Kiln('rpc')
  const d = await startDaemon(kiln.home)
  daemon = d.child
  client = create({ url: d.api })
})

after(async () => {
  if (daemon) {
    const exited = new Promise(resolve => daemon.on('exit', resolve))
    daemon.kill('SIGTERM')
    const code = await exited
    assert.equal(code, 0, 'daemon exits cleanly on SIGTERM')
  }
  kiln?.cleanup()
})

test('version and id', { skip: kilnSkip }, async () => {
  const v = await client.version()
  assert.ok(v.version)
  const id = await client.id()
  const cli = JSON.parse(kiln.ok(['id']).stdout.toString())
  assert.equal(id.id.toString(), cli.ID)
  assert.equal(id.agentVersion, cli.AgentVersion)
})

test('add a file (each profile) and cat it back, with ranges', { skip: kilnSkip }, async () => {
  const data = Buffer.alloc(700_000)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff
  const file = `${kiln.home}/../rpc-file.bin`
  const { writeFileSync } = await import('node:fs')
  writeFileSync(file, data)
  for (const [opts, flags] of [[{ cidVersion: 0 }, ['--cid-version', '0']], [{ cidVersion: 1 }, ['--cid-version', '1']], [{}, []]]) {
    const r = await client.add(data, opts)
    assert.equal(r.cid.toString(), kiln.addQ(['-n', ...flags, file]), JSON.stringify(opts))
    assert.deepEqual(await concat(client.cat(r.cid)), data)
    assert.deepEqual(await concat(client.cat(r.cid, { offset: 1000, length: 5000 })), data.subarray(1000, 6000))
  }
})

test('add reports progress as NDJSON while it runs', { skip: kilnSkip }, async () => {
  const data = Buffer.alloc(5 << 20)
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff
  const seen = []
  const r = await client.add({ path: 'big.bin', content: data }, { cidVersion: 1, progress: (bytes, name) => seen.push([bytes, name]) })
  assert.ok(seen.length >= 5, `progress called ${seen.length} times`)
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0], 'progress never goes back')
  assert.equal(seen.at(-1)[0], data.length)
  assert.equal(seen.at(-1)[1], 'big.bin')
  assert.equal(r.path, 'big.bin')
  assert.deepEqual(await concat(client.cat(r.cid)), data)
})

test('add a directory tree (addAll) and list it', { skip: kilnSkip }, async () => {
  const enc = new TextEncoder()
  const entries = [
    { path: 'site/index.html', content: enc.encode('<h1>hi</h1>') },
    { path: 'site/css/app.css', content: enc.encode('body{}') },
    { path: 'site/empty' },
    { path: 'site/a b/ü.txt', content: enc.encode('unicode') }
  ]
  const out = await all(client.addAll(entries, { cidVersion: 1 }))
  const root = out.find(e => e.path === 'site')
  assert.ok(root, JSON.stringify(out.map(e => e.path)))
  const names = (await all(client.ls(root.cid))).map(e => e.name).sort()
  assert.deepEqual(names, ['a b', 'css', 'empty', 'index.html'])
  assert.equal(Buffer.from(await concat(client.cat(`${root.cid}/a b/ü.txt`))).toString(), 'unicode')
  const pins = (await all(client.pin.ls({ type: 'recursive' }))).map(p => p.cid.toString())
  assert.ok(pins.includes(root.cid.toString()))
})

test('blocks, pins, repo, dag export', { skip: kilnSkip }, async () => {
  const block = new TextEncoder().encode('a block from kubo-rpc-client')
  const cid = await client.block.put(block)
  assert.deepEqual(Buffer.from(await client.block.get(cid)), Buffer.from(block))
  assert.equal((await client.block.stat(cid)).size, block.length)
  await client.pin.add(cid)
  const st = await all(client.pin.ls({ paths: [cid] }))
  assert.equal(st[0].type, 'recursive')
  await client.pin.rm(cid)
  const removed = await all(client.repo.gc())
  assert.ok(removed.every(r => r.err == null), JSON.stringify(removed))
  assert.ok(removed.some(r => r.cid?.toString() === cid.toString()), 'gc reports the removed block')
  await assert.rejects(client.block.get(cid))
  const stat = await client.repo.stat()
  assert.ok(Number(stat.numObjects) > 0)

  const r = await client.add(new TextEncoder().encode('exported'), { cidVersion: 1 })
  const car = await CarReader.fromBytes(await concat(client.dag.export(r.cid)))
  assert.deepEqual((await car.getRoots()).map(String), [r.cid.toString()])
})

test('errors are Kubo-shaped', { skip: kilnSkip }, async () => {
  await assert.rejects(all(client.cat('notacid')), /invalid CID|invalid path|CID/i)
})

test('get returns a tar of the tree; dag import takes a JS-written CAR', { skip: kilnSkip }, async () => {
  const { execFileSync } = await import('node:child_process')
  const fs = await import('node:fs')
  const enc = new TextEncoder()
  const out = await all(client.addAll([
    { path: 'tree/a.txt', content: enc.encode('alpha') },
    { path: 'tree/sub/b.txt', content: enc.encode('beta') }
  ]))
  const root = out.find(e => e.path === 'tree').cid
  const tarFile = `${kiln.home}/../tree.tar`
  fs.writeFileSync(tarFile, await concat(client.get(root)))
  const dest = fs.mkdtempSync(`${kiln.home}/../untar-`)
  execFileSync('tar', ['-xf', tarFile, '-C', dest])
  const top = fs.readdirSync(dest)
  assert.equal(top.length, 1)
  assert.equal(fs.readFileSync(`${dest}/${top[0]}/a.txt`, 'utf8'), 'alpha')
  assert.equal(fs.readFileSync(`${dest}/${top[0]}/sub/b.txt`, 'utf8'), 'beta')

  // A CAR written by @ipld/car from the JS importer, imported over RPC.
  const { importer } = await import('ipfs-unixfs-importer')
  const { MemoryBlockstore } = await import('blockstore-core')
  const { writeCarV1 } = await import('../lib/car.mjs')
  const bs = new MemoryBlockstore()
  let jsRoot
  for await (const e of importer([{ path: 'x.txt', content: enc.encode('from a JS car') }], bs)) jsRoot = e.cid
  const carBytes = await writeCarV1([jsRoot], bs)
  const res = await all(client.dag.import([carBytes]))
  assert.ok(res.some(r => r.root?.cid?.toString() === jsRoot.toString()), JSON.stringify(res))
  assert.equal(Buffer.from(await concat(client.cat(jsRoot))).toString(), 'from a JS car')
})

test('with a bearer token against a daemon that requires one', { skip: kilnSkip }, async () => {
  const owner = new Kiln('rpc-token', { identity: true })
  owner.ok(['init'])
  const d = await startDaemon(owner.home, { strict: true })
  try {
    const token = owner.ok(['token', 'create', '--ttl', '1h', '--note', 'kubo-rpc-client']).stdout.toString().trim()
    const withToken = create({ url: d.api, headers: { authorization: `Bearer ${token}` } })
    const data = Buffer.from('added by kubo-rpc-client with a token\n')
    const { cid } = await withToken.add(data)
    assert.deepEqual(await concat(withToken.cat(cid)), data)
    const pins = await all(withToken.pin.ls({ paths: [cid] }))
    assert.equal(pins[0].cid.toString(), cid.toString())
    // Without it, or with a narrowed one beyond its scope: refused, nothing added.
    const anonymous = create({ url: d.api })
    await assert.rejects(anonymous.add(Buffer.from('no token')), /token/i)
    const readOnly = owner.ok(['token', 'attenuate', token, '--only', 'read']).stdout.toString().trim()
    const reader = create({ url: d.api, headers: { authorization: `Bearer ${readOnly}` } })
    assert.deepEqual(await concat(reader.cat(cid)), data)
    await assert.rejects(reader.add(Buffer.from('read only')), /token/i)
    const blocks = owner.ok(['repo', 'stat']).stdout.toString()
    await assert.rejects(anonymous.pin.rm(cid))
    assert.equal(owner.ok(['repo', 'stat']).stdout.toString(), blocks)
  } finally {
    const exited = new Promise(resolve => d.child.on('exit', resolve))
    d.child.kill('SIGTERM')
    await exited
    owner.cleanup()
  }
})
