// CAR helpers on top of @ipld/car.
import { CarReader, CarWriter } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { equals } from 'multiformats/bytes'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { getBlock } from './js.mjs'

// Writes a CARv1 with `roots` holding every block of `bs` reachable from the
// roots (DFS, each block once).
export async function writeCarV1 (roots, bs) {
  const { writer, out } = CarWriter.create(roots)
  const chunks = []
  const collect = (async () => { for await (const c of out) chunks.push(c) })()
  const seen = new Set()
  const visit = async (cid) => {
    const key = cid.toString()
    if (seen.has(key)) return
    seen.add(key)
    if (cid.multihash.code === identity.code) return
    const bytes = getBlock(bs, cid)
    await writer.put({ cid, bytes })
    if (cid.code === dagPb.code) {
      for (const l of dagPb.decode(bytes).Links) await visit(l.Hash)
    }
  }
  for (const r of roots) await visit(r)
  await writer.close()
  await collect
  return Buffer.concat(chunks)
}

const u64le = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b }

// CARv2 per the spec: 11-byte pragma, 40-byte header (characteristics[16],
// data offset, data size, index offset — u64 LE), optional padding, v1 payload.
// No index (index offset 0).
export function wrapCarV2 (v1, { padding = 0 } = {}) {
  const pragma = Buffer.from('0aa16776657273696f6e02', 'hex')
  const dataOffset = 11 + 40 + padding
  const header = Buffer.concat([Buffer.alloc(16), u64le(dataOffset), u64le(v1.length), u64le(0)])
  return Buffer.concat([pragma, header, Buffer.alloc(padding), v1])
}

// Reads a CAR, verifies every block's multihash (sha2-256 or identity) and that
// dag-pb blocks decode. Returns {roots, blocks: [{cid, bytes}], bs}.
export async function readAndVerifyCar (bytes) {
  const reader = await CarReader.fromBytes(bytes)
  const roots = await reader.getRoots()
  const blocks = []
  const bs = new MemoryBlockstore()
  for await (const { cid, bytes: data } of reader.blocks()) {
    let digest
    if (cid.multihash.code === sha256.code) digest = await sha256.digest(data)
    else if (cid.multihash.code === identity.code) digest = identity.digest(data)
    else throw new Error(`unexpected multihash 0x${cid.multihash.code.toString(16)} in ${cid}`)
    if (!equals(digest.bytes, cid.multihash.bytes)) throw new Error(`hash mismatch for block ${cid}`)
    if (cid.code === dagPb.code) dagPb.decode(data)
    else if (cid.code !== raw.code) throw new Error(`unexpected codec 0x${cid.code.toString(16)} in ${cid}`)
    blocks.push({ cid, bytes: data })
    await bs.put(cid, data)
  }
  return { roots, blocks, bs, version: reader.version }
}

// Byte layout of a CARv1: [{start, cidStart, dataStart, end}] per block section
// (header excluded). CID length is found by parsing the CID prefix.
export function carSections (v1) {
  let i = 0
  const varint = () => { let v = 0; let m = 1; for (;;) { const b = v1[i++]; v += (b & 0x7f) * m; m *= 128; if (b < 128) return v } }
  const hlen = varint(); i += hlen
  const out = []
  while (i < v1.length) {
    const start = i
    const len = varint()
    const cidStart = i
    let dataStart
    if (v1[i] === 0x12 && v1[i + 1] === 0x20) dataStart = i + 34
    else { varint(); varint(); varint(); const dl = varint(); dataStart = i + dl }
    i = cidStart + len
    out.push({ start, cidStart, dataStart, end: i })
  }
  return out
}
