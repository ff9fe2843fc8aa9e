// Finding the flat→HAMT switching entry count per profile with the JS importer.
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { PROFILES, unixfsType } from './js.mjs'
import { corpusDir, hamtName, hamtContent } from './corpus.mjs'

const enc = new TextEncoder()

// Root UnixFS type of a directory `hamt/` with `count` files hamtName(0..count-1).
export async function rootTypeFor (profile, count) {
  const bs = new MemoryBlockstore()
  const cands = []
  for (let i = 0; i < count; i++) cands.push({ path: `hamt/${hamtName(i)}`, content: enc.encode(hamtContent(i)) })
  let last
  for await (const e of importer(cands, bs, PROFILES[profile].js())) last = e
  return unixfsType(bs, last.cid)
}

const varintLen = (x) => { let n = 1; while (x >= 128) { x = Math.floor(x / 128); n++ } return n }

// First guess from the rules read in the importer source (README): links-bytes
// sums name bytes + CID bytes; block-bytes is the exact PBNode size.
function estimate (profile) {
  const cidLen = profile === 'v0' ? 34 : 36
  let size = profile === 'v1-2025' ? 4 : 0
  for (let i = 0; ; i++) {
    const name = enc.encode(hamtName(i)).length
    if (profile === 'v1-2025') {
      const tsize = enc.encode(hamtContent(i)).length // raw leaf: block size
      const linkLen = 1 + varintLen(cidLen) + cidLen + 1 + varintLen(name) + name + 1 + varintLen(tsize)
      size += 1 + varintLen(linkLen) + linkLen
    } else {
      size += name + cidLen
    }
    if (size > 262144) return i // i+1 entries shard, i entries do not
  }
}

// Largest count whose root is still a plain directory (count+1 is a HAMT),
// confirmed with the importer itself; binary search if the estimate is off.
export async function findThreshold (profile) {
  const cacheFile = path.join(corpusDir(), `hamt-threshold-${profile}.json`)
  try { return JSON.parse(fs.readFileSync(cacheFile, 'utf8')).count } catch {}
  const isShard = async (n) => (await rootTypeFor(profile, n)) === 'hamt-sharded-directory'
  let n = estimate(profile)
  if (await isShard(n) || !(await isShard(n + 1))) {
    let lo = 1; let hi = 20000 // lo flat, hi sharded
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1
      if (await isShard(mid)) hi = mid; else lo = mid
    }
    n = lo
  }
  fs.mkdirSync(corpusDir(), { recursive: true })
  fs.writeFileSync(cacheFile, JSON.stringify({ count: n, estimate: estimate(profile) }))
  return n
}
