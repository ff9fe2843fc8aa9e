// @helia/verified-fetch (unmodified, pinned) with a running `kiln daemon`'s gateway as
// its one and only block source: no delegated routers, no libp2p, no bitswap, no
// public gateways. verified-fetch pulls single blocks (`/ipfs/{cid}?format=raw`) from
// kiln's trustless gateway, checks every hash itself and rebuilds files, byte ranges,
// directory paths, index.html, HAMT lookups and CARs on the client side. Where both sides
// build the same answer (several byte ranges as multipart/byteranges, depth-first CARs with
// and without duplicate blocks), kiln's own answer is compared with verified-fetch's.
//
// createVerifiedFetch({gateways, routers}) would still start a libp2p node (DHT client,
// bootstrap peers) in this version, so the test builds a light Helia node with only the
// HTTP block broker and a fallback router that names the kiln gateway, and hands that
// node to createVerifiedFetch.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { createHeliaLight } from 'helia'
import { withHTTP } from '@helia/http'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { CarBlockIterator, CarReader } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Kiln, kilnSkip, startDaemon } from '../lib/kiln.mjs'
import { MiB, hamtTree, hamtName, hamtContent, randomBytes, seedOf, writeTree } from '../lib/corpus.mjs'
import { findThreshold } from '../lib/hamt.mjs'

// Each fetch gets this long; a fetch that hangs fails the test instead of the run.
const FETCH_TIMEOUT_MS = 15_000

let kiln, daemon, gateway, vfetch
const roots = {} // profile -> { site, big, hamt }

// Several leaves under both profiles: 13 × 256 KiB (v1) and 4 × 1 MiB (2025).
const BIG = randomBytes(3 * MiB + 12_345, seedOf('verified-fetch-big'))
const INDEX_HTML = '<!doctype html>\n<title>kiln</title>\n<p>served by kiln, verified by helia</p>\n'
const SUB_TXT = 'a file one directory down\n'
const DEEP_BIN = randomBytes(70_000, seedOf('verified-fetch-deep'))
// Repeating blocks: a multi-leaf file twice, and zeros (identical leaves).
const TWICE = randomBytes(MiB + 300_000, seedOf('verified-fetch-twice'))
const ZEROS = Buffer.alloc(2 * MiB + 512 * 1024)

const PROFILES = {
  v1: ['--cid-version', '1'], // `ipfs add --cid-version=1`: 256 KiB chunks, 174 links
  'v1-2025': [] // kiln's default (unixfs-v1-2025): 1 MiB chunks, 1024 links
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex')


// verified-fetch with `gateway` as its only provider.
async function verifiedFetchFor (gatewayUrl) {
  // helia 7.1.15's routing never finishes findProviders when every router is a
  // 'fallback' one (its provider queue only goes idle when a non-fallback router ends),
  // so a session would wait forever for the fallback router. A non-fallback router that
  // finds nothing lets it move on to the fallback router, i.e. to kiln's gateway.
  const nothing = { name: 'no-routing', async * findProviders () {} }
  const helia = withHTTP(createHeliaLight({ routers: [nothing] }), {
    delegatedRouters: [], // no delegated routing
    recursiveGateways: [gatewayUrl], // the fallback router's only gateway
    allowInsecure: true, // http://
    allowLocal: true // 127.0.0.1
  })
  await helia.start()
  return createVerifiedFetch(helia)
}

const get = (url, init = {}) => vfetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), ...init })
const bytesOf = async (res) => Buffer.from(await res.arrayBuffer())

before(async () => {
  if (kilnSkip) return
  kiln = new Kiln('vfetch')
  const src = path.join(kiln.home, '..', `${path.basename(kiln.home)}-src`)
  const site = writeTree(path.join(src, 'site'), {
    'index.html': INDEX_HTML,
    'big.bin': BIG,
    sub: { 'file.txt': SUB_TXT, deeper: { 'deep.bin': DEEP_BIN } }
  })
  const dups = writeTree(path.join(src, 'dups'), {
    'a.bin': TWICE,
    'b.bin': TWICE,
    'zeros.bin': ZEROS,
    nested: { 'a-again.bin': TWICE }
  })
  const bigFile = path.join(src, 'big.bin')
  fs.writeFileSync(bigFile, BIG)
  // One count above the larger of the two thresholds: a HAMT root under both profiles.
  const hamtCount = Math.max(await findThreshold('v1'), await findThreshold('v1-2025')) + 1
  const hamt = hamtTree(hamtCount)
  for (const [name, flags] of Object.entries(PROFILES)) {
    roots[name] = {
      site: kiln.addQ(['-r', ...flags, site]),
      big: kiln.addQ([...flags, bigFile]),
      hamt: kiln.addQ(['-r', ...flags, hamt]),
      dups: kiln.addQ(['-r', ...flags, dups]),
      hamtCount
    }
  }
  fs.rmSync(src, { recursive: true, force: true })
  const d = await startDaemon(kiln.home)
  daemon = d.child
  gateway = d.gateway
  vfetch = await verifiedFetchFor(gateway)
})

after(async () => {
  await vfetch?.stop()
  if (daemon) {
    const exited = new Promise(resolve => daemon.on('exit', resolve))
    daemon.kill('SIGTERM')
    const code = await exited
    assert.equal(code, 0, 'daemon exits cleanly on SIGTERM')
  }
  kiln?.cleanup()
})

// Root UnixFS type of `cid`, read straight from kiln's trustless gateway.
async function unixfsTypeAt (cid) {
  const res = await fetch(`${gateway}/ipfs/${cid}?format=raw`)
  assert.equal(res.status, 200)
  const block = new Uint8Array(await res.arrayBuffer())
  return UnixFS.unmarshal(dagPb.decode(block).Data).type
}

for (const [profile] of Object.entries(PROFILES)) {
  test(`${profile}: a multi-block file, whole, by sha256`, { skip: kilnSkip }, async () => {
    const { big } = roots[profile]
    assert.equal(await unixfsTypeAt(big), 'file')
    const res = await get(`ipfs://${big}`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-length'), String(BIG.length))
    const body = await bytesOf(res)
    assert.equal(body.length, BIG.length)
    assert.equal(sha(body), sha(BIG))
  })

  test(`${profile}: byte ranges of the multi-block file`, { skip: kilnSkip }, async () => {
    const { big } = roots[profile]
    const chunk = profile === 'v1' ? 256 * 1024 : MiB
    const cases = [
      [0, 99], // inside the first leaf
      [chunk - 10, chunk + 9], // across a leaf boundary
      [chunk + 5, 3 * chunk - 7], // spanning a whole leaf in the middle
      [BIG.length - 1000, BIG.length - 1] // the tail
    ]
    for (const [from, to] of cases) {
      const res = await get(`ipfs://${big}`, { headers: { Range: `bytes=${from}-${to}` } })
      assert.equal(res.status, 206, `bytes=${from}-${to}`)
      assert.equal(res.headers.get('content-range'), `bytes ${from}-${to}/${BIG.length}`)
      const body = await bytesOf(res)
      assert.equal(sha(body), sha(BIG.subarray(from, to + 1)), `bytes=${from}-${to}`)
    }
    // suffix form: the last 500 bytes
    const res = await get(`ipfs://${big}`, { headers: { Range: 'bytes=-500' } })
    assert.equal(res.status, 206)
    assert.equal(sha(await bytesOf(res)), sha(BIG.subarray(BIG.length - 500)))
  })

  test(`${profile}: paths inside a directory`, { skip: kilnSkip }, async () => {
    const { site } = roots[profile]
    let res = await get(`ipfs://${site}/sub/file.txt`)
    assert.equal(res.status, 200)
    assert.equal((await bytesOf(res)).toString(), SUB_TXT)
    res = await get(`ipfs://${site}/sub/deeper/deep.bin`)
    assert.equal(res.status, 200)
    assert.equal(sha(await bytesOf(res)), sha(DEEP_BIN))
    res = await get(`ipfs://${site}/big.bin`)
    assert.equal(res.status, 200)
    assert.equal(sha(await bytesOf(res)), sha(BIG))
    // a range on a file reached by path
    res = await get(`ipfs://${site}/big.bin`, { headers: { Range: 'bytes=1000000-1000099' } })
    assert.equal(res.status, 206)
    assert.equal(sha(await bytesOf(res)), sha(BIG.subarray(1_000_000, 1_000_100)))
  })

  test(`${profile}: a directory with index.html serves it; one without gives its dag-pb node`, { skip: kilnSkip }, async () => {
    const { site } = roots[profile]
    // No trailing slash: verified-fetch follows the directory redirect itself by default...
    let res = await get(`ipfs://${site}`)
    assert.equal(res.status, 200)
    assert.equal(res.redirected, true)
    assert.equal((await bytesOf(res)).toString(), INDEX_HTML)
    // ...answers 301 to a trailing-slash URL with redirect: 'manual'...
    res = await get(`ipfs://${site}`, { redirect: 'manual' })
    assert.equal(res.status, 301)
    assert.equal(res.headers.get('location'), `ipfs://${site}/`)
    // ...and serves index.html directly with the slash.
    res = await get(`ipfs://${site}/`)
    assert.equal(res.status, 200)
    assert.equal(res.redirected, false)
    assert.equal((await bytesOf(res)).toString(), INDEX_HTML)
    // `sub/` has no index.html: the directory node itself (application/vnd.ipld.dag-pb).
    res = await get(`ipfs://${site}/sub/`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-unixfs-type'), 'directory')
    assert.match(res.headers.get('content-type'), /^application\/vnd\.ipld\.dag-pb/)
    const node = dagPb.decode(new Uint8Array(await res.arrayBuffer()))
    assert.deepEqual(node.Links.map(l => l.Name), ['deeper', 'file.txt'])
  })

  test(`${profile}: a HAMT-sharded directory: lookups by name`, { skip: kilnSkip }, async () => {
    const { hamt, hamtCount } = roots[profile]
    assert.equal(await unixfsTypeAt(hamt), 'hamt-sharded-directory')
    for (const i of [0, 1, Math.floor(hamtCount / 2), hamtCount - 1]) {
      const res = await get(`ipfs://${hamt}/${hamtName(i)}`)
      assert.equal(res.status, 200, hamtName(i))
      assert.equal((await bytesOf(res)).toString(), hamtContent(i))
    }
    const res = await get(`ipfs://${hamt}/no-such-entry.txt`)
    assert.ok(res.status >= 400 && res.status < 600, `missing HAMT entry: status ${res.status}`)
  })

  test(`${profile}: Accept raw and car, built by verified-fetch from kiln's blocks`, { skip: kilnSkip }, async () => {
    // verified-fetch 8.0.4 reads only the Accept header (`?format=` in an ipfs:// URL
    // is ignored); what it asks kiln for is one block at a time either way.
    const { site, big } = roots[profile]
    // raw: the root block, re-hashed here too
    let res = await get(`ipfs://${big}`, { headers: { Accept: 'application/vnd.ipld.raw' } })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^application\/vnd\.ipld\.raw/)
    const block = new Uint8Array(await res.arrayBuffer())
    assert.deepEqual((await sha256.digest(block)).bytes, CID.parse(big).multihash.bytes)
    // car: every block of the directory DAG, each re-hashed
    res = await get(`ipfs://${site}`, { headers: { Accept: 'application/vnd.ipld.car' } })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^application\/vnd\.ipld\.car/)
    const car = await CarReader.fromBytes(new Uint8Array(await res.arrayBuffer()))
    assert.deepEqual((await car.getRoots()).map(String), [site])
    const seen = new Set()
    for await (const { cid, bytes } of car.blocks()) {
      assert.deepEqual((await sha256.digest(bytes)).bytes, cid.multihash.bytes, String(cid))
      seen.add(String(cid))
    }
    // root + index.html + big.bin (root + leaves) + sub + file.txt + deeper + deep.bin
    const bigLeaves = Math.ceil(BIG.length / (profile === 'v1' ? 256 * 1024 : MiB))
    assert.equal(seen.size, 1 + 1 + (1 + bigLeaves) + 1 + 1 + 1 + 1)
    assert.ok(seen.has(site) && seen.has(big), 'the CAR holds the root and big.bin')
  })
}

// The parts of a multipart/byteranges body, cut by the lengths their Content-Range
// gives (not by searching for the boundary): [{ type, range, bytes }].
function byteranges (contentType, body) {
  const m = /^multipart\/byteranges; boundary=(.+)$/.exec(contentType ?? '')
  assert.ok(m, `not multipart/byteranges: ${contentType}`)
  const delim = Buffer.from(`--${m[1]}`)
  const parts = []
  let i = 0
  for (;;) {
    assert.ok(body.subarray(i, i + delim.length).equals(delim), `boundary expected at ${i}`)
    i += delim.length
    if (body.subarray(i, i + 2).toString() === '--') {
      assert.equal(body.subarray(i).toString(), '--\r\n', 'closing boundary')
      return parts
    }
    assert.equal(body.subarray(i, i + 2).toString(), '\r\n')
    i += 2
    const end = body.indexOf('\r\n\r\n', i)
    assert.ok(end > 0, 'part headers')
    const fields = Object.fromEntries(body.subarray(i, end).toString().split('\r\n').map(l => {
      const at = l.indexOf(':')
      return [l.slice(0, at).trim().toLowerCase(), l.slice(at + 1).trim()]
    }))
    i = end + 4
    const r = /^bytes (\d+)-(\d+)\/\d+$/.exec(fields['content-range'] ?? '')
    assert.ok(r, `part Content-Range: ${fields['content-range']}`)
    const len = Number(r[2]) - Number(r[1]) + 1
    parts.push({ type: fields['content-type'], range: fields['content-range'], bytes: body.subarray(i, i + len) })
    i += len
    assert.equal(body.subarray(i, i + 2).toString(), '\r\n', 'CRLF after a part')
    i += 2
  }
}

// The CIDs of a CAR body, in order, duplicates kept.
async function carCids (body) {
  const out = []
  for await (const { cid } of await CarBlockIterator.fromIterable(body)) out.push(String(cid))
  return out
}

for (const [profile] of Object.entries(PROFILES)) {
  test(`${profile}: several byte ranges: kiln's multipart/byteranges holds the parts verified-fetch builds`, { skip: kilnSkip }, async () => {
    const { big } = roots[profile]
    const chunk = profile === 'v1' ? 256 * 1024 : MiB
    const cases = [[0, 99], [chunk - 10, chunk + 9], [BIG.length - 1000, BIG.length - 1]]
    const range = `bytes=${cases.map(([a, b]) => `${a}-${b}`).join(', ')}`
    const direct = await fetch(`${gateway}/ipfs/${big}`, { headers: { Range: range } })
    assert.equal(direct.status, 206)
    const body = await bytesOf(direct)
    assert.equal(direct.headers.get('content-length'), String(body.length))
    const mine = byteranges(direct.headers.get('content-type'), body)
    const verified = await get(`ipfs://${big}`, { headers: { Range: range } })
    assert.equal(verified.status, 206)
    const theirs = byteranges(verified.headers.get('content-type'), await bytesOf(verified))
    const summary = (parts) => parts.map(p => [p.range, sha(p.bytes)])
    assert.deepEqual(summary(mine), summary(theirs))
    assert.deepEqual(summary(mine), cases.map(([a, b]) => [`bytes ${a}-${b}/${BIG.length}`, sha(BIG.subarray(a, b + 1))]))
  })

  test(`${profile}: depth-first CARs, with and without duplicate blocks: kiln sends what verified-fetch's walk yields`, { skip: kilnSkip }, async () => {
    const { dups } = roots[profile]
    for (const d of ['y', 'n']) {
      const accept = `application/vnd.ipld.car; version=1; order=dfs; dups=${d}`
      const mine = await fetch(`${gateway}/ipfs/${dups}`, { headers: { accept } })
      assert.equal(mine.status, 200)
      assert.equal(mine.headers.get('content-type'), accept)
      const verified = await get(`ipfs://${dups}`, { headers: { Accept: accept } })
      assert.equal(verified.status, 200)
      assert.match(verified.headers.get('content-type'), new RegExp(`order=dfs; dups=${d}$`))
      const [ours, walked] = [await carCids(mine.body), await carCids(verified.body)]
      assert.deepEqual(ours, walked, `dups=${d}`)
      const repeats = ours.length - new Set(ours).size
      if (d === 'y') assert.ok(repeats > 0, 'the tree repeats blocks')
      else assert.equal(repeats, 0)
    }
  })
}

test('a CID kiln does not have: kiln says 404, verified-fetch gives up only at the caller\'s deadline', { skip: kilnSkip }, async () => {
  // sha256 of bytes that were never added
  const absent = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`not in kiln ${Date.now()}`)))
  const direct = await fetch(`${gateway}/ipfs/${absent}?format=raw`)
  assert.equal(direct.status, 404)
  // verified-fetch 8.0.4 does not turn "every provider answered 404" into an error: its
  // session keeps looking for providers until the request's signal fires.
  const started = Date.now()
  await assert.rejects(vfetch(`ipfs://${absent}`, { signal: AbortSignal.timeout(2_000) }), (err) => {
    assert.match(err.name, /^(TimeoutError|AbortError)$/, `${err.name}: ${err.message}`)
    return true
  })
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`)
})

// A proxy in front of kiln's gateway that flips one byte of every response body for
// requests naming `victim`: stands for a gateway serving a corrupted block.
async function tamperingProxy (upstream, victim) {
  const http = await import('node:http')
  const state = { tampered: 0, server: null, url: null }
  state.server = http.createServer(async (req, res) => {
    try {
      const up = await fetch(upstream + req.url, { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } })
      const body = Buffer.from(await up.arrayBuffer())
      if (req.url.includes(victim) && up.status === 200 && body.length > 0) {
        body[body.length >> 1] ^= 0x01
        state.tampered++
      }
      const headers = {}
      for (const h of ['content-type', 'content-disposition', 'cache-control', 'etag', 'x-ipfs-roots', 'x-ipfs-path']) {
        if (up.headers.get(h) != null) headers[h] = up.headers.get(h)
      }
      headers['content-length'] = String(body.length)
      res.writeHead(up.status, headers)
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (err) {
      res.writeHead(502)
      res.end(String(err))
    }
  })
  await new Promise(resolve => state.server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${state.server.address().port}`
  return state
}

test('a tampered block is refused: no wrong bytes are ever delivered', { skip: kilnSkip }, async (t) => {
  const { big } = roots['v1-2025']
  // big.bin's second leaf (raw, 1 MiB), from kiln's root block
  const rootBlock = new Uint8Array(await (await fetch(`${gateway}/ipfs/${big}?format=raw`)).arrayBuffer())
  const leaves = dagPb.decode(rootBlock).Links.map(l => l.Hash.toString())
  assert.equal(leaves.length, Math.ceil(BIG.length / MiB))
  const victim = leaves[1]
  const proxy = await tamperingProxy(gateway, victim)
  // a separate verified-fetch (its own empty blockstore) whose only gateway is the proxy
  const vf = await verifiedFetchFor(proxy.url)
  t.after(async () => {
    await vf.stop()
    await new Promise(resolve => proxy.server.close(resolve))
  })
  const signal = () => AbortSignal.timeout(3_000)

  // the first leaf is intact: a range inside it is served and correct
  let res = await vf(`ipfs://${big}`, { headers: { Range: 'bytes=100-199' }, signal: signal() })
  assert.equal(res.status, 206)
  assert.equal(sha(await bytesOf(res)), sha(BIG.subarray(100, 200)))
  assert.equal(proxy.tampered, 0)

  // a range inside the tampered leaf: never the corrupted bytes
  let delivered = null
  try {
    res = await vf(`ipfs://${big}`, { headers: { Range: `bytes=${MiB + 10}-${MiB + 99}` }, signal: signal() })
    if (res.status < 400) delivered = await bytesOf(res)
  } catch {}
  assert.ok(proxy.tampered >= 1, 'the proxy served the corrupted block')
  assert.equal(delivered, null, `a body came back for a corrupted block (${delivered?.length} bytes)`)

  // the whole file: the stream may start, but never completes with wrong bytes
  delivered = null
  try {
    res = await vf(`ipfs://${big}`, { signal: signal() })
    if (res.status < 400) delivered = await bytesOf(res)
  } catch {}
  assert.equal(delivered, null, `the whole file came back despite a corrupted leaf (${delivered?.length} bytes)`)
})
