// Walks a UnixFS HAMT and checks it against the layout documented in README.md:
// link name = 2 upper-case hex digits of the bucket index (+ entry name on leaf
// entries); bucket index at depth d = byte d of h1 (big-endian) of
// murmur3-x64-128(name); Data = bitfield as a big-endian integer where bit i means
// bucket i is occupied, minimal length (leading zero bytes dropped).
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { hamtHash } from './murmur.mjs'
import { getBlock } from './js.mjs'
import { protoFields } from './proto.mjs'

export { protoFields }

export function expectedBitfield (indexes) {
  const b = Buffer.alloc(32)
  for (const i of indexes) b[31 - (i >> 3)] |= 1 << (i & 7)
  let s = 0
  while (s < b.length && b[s] === 0) s++
  return b.subarray(s)
}

// Returns the entry names; throws on any deviation.
export function checkHamt (bs, cid, depth = 0, names = []) {
  const node = dagPb.decode(getBlock(bs, cid))
  const u = UnixFS.unmarshal(node.Data)
  if (u.type !== 'hamt-sharded-directory') throw new Error(`${cid}: type ${u.type}`)
  if (u.fanout !== 256n) throw new Error(`${cid}: fanout ${u.fanout}`)
  // ipfs-unixfs' unmarshal drops hashType: read protobuf field 5 ourselves.
  const ht = protoFields(node.Data).find(f => f.field === 5)?.value
  if (ht !== 0x22) throw new Error(`${cid}: hashType ${ht}`)
  const idx = []
  for (const l of node.Links) {
    if (!/^[0-9A-F]{2}/.test(l.Name)) throw new Error(`${cid}: bad link name ${l.Name}`)
    const i = parseInt(l.Name.slice(0, 2), 16)
    idx.push(i)
    if (l.Name.length === 2) {
      checkHamt(bs, l.Hash, depth + 1, names)
    } else {
      const name = l.Name.slice(2)
      const h = hamtHash(new TextEncoder().encode(name))
      if (h[depth] !== i) throw new Error(`${cid}: entry ${name} in bucket ${i} at depth ${depth}, hash byte is ${h[depth]}`)
      names.push(name)
    }
  }
  const want = expectedBitfield(idx)
  if (Buffer.compare(Buffer.from(u.data), want) !== 0) {
    throw new Error(`${cid}: bitfield ${Buffer.from(u.data).toString('hex')} != expected ${want.toString('hex')}`)
  }
  return names
}
