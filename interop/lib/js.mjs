// The JS reference side: ipfs-unixfs-importer with the option sets that reproduce
// each kubo / IPIP-499 profile, plus helpers to import a file-system path the way
// `ipfs add [-r] [-H] [-w]` does.
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { UnixFS } from 'ipfs-unixfs'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { protoFields } from './proto.mjs'

// name -> { kiln: CLI flags, js(): fresh importer options }.
// Fresh objects every time: the importer mutates `options` when `profile` is set.
export const PROFILES = {
  // plain `ipfs add` (kubo default) == IPIP-499 unixfs-v0-2015
  v0: { kiln: ['--cid-version', '0'], js: () => ({ cidVersion: 0, rawLeaves: false }), cidVersion: 0, chunk: 262144, links: 174 },
  // `ipfs add --cid-version=1` == importer defaults
  v1: { kiln: ['--cid-version', '1'], js: () => ({}), cidVersion: 1, chunk: 262144, links: 174 },
  // IPIP-499 unixfs-v1-2025 == kiln default (no flags)
  'v1-2025': { kiln: [], js: () => ({ profile: 'unixfs-v1-2025' }), cidVersion: 1, chunk: 1048576, links: 1024 }
}

export function getBlock (bs, cid) {
  const parts = [...bs.get(cid)]
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
}

async function lastOf (it) {
  let last
  for await (const e of it) last = e
  return last
}

function readStream (file) {
  return fs.createReadStream(file, { highWaterMark: 1024 * 1024 })
}

// Import raw bytes or a file path as a single file (no name), like `ipfs add FILE`.
export async function jsAddFile (fileOrBytes, opts, bs = new MemoryBlockstore()) {
  const content = typeof fileOrBytes === 'string' ? readStream(fileOrBytes) : fileOrBytes
  const root = await lastOf(importer([{ content }], bs, opts))
  return { cid: root.cid, bs, root }
}

// Walk a directory into importer candidates, named relative to the parent of
// `dir` (so the root entry is `basename(dir)`, like `ipfs add -r dir`).
// Hidden entries (name starts with '.') are left out unless `hidden`.
// Symlinks become {path, link} candidates (the importer's symlink builder).
// Only empty directories are emitted as explicit directory candidates: the tree
// builder replaces a non-Dir entry by a fresh DirFlat when a child arrives, so
// emitting a directory after its children would empty it.
export function dirCandidates (dir, { hidden = false } = {}) {
  const out = []
  const walk = (abs, rel) => {
    const names = fs.readdirSync(abs).filter(n => hidden || !n.startsWith('.')).sort()
    if (names.length === 0) {
      out.push({ path: rel })
      return
    }
    for (const n of names) {
      const a = path.join(abs, n)
      const r = `${rel}/${n}`
      const st = fs.lstatSync(a)
      if (st.isSymbolicLink()) out.push({ path: r, link: fs.readlinkSync(a) })
      else if (st.isDirectory()) walk(a, r)
      else out.push({ path: r, content: readStream(a) })
    }
  }
  walk(dir, path.basename(dir))
  return out
}

// Like `ipfs add -r [-H] DIR`: returns the root directory CID.
export async function jsAddDir (dir, opts, { hidden = false } = {}, bs = new MemoryBlockstore()) {
  const root = await lastOf(importer(dirCandidates(dir, { hidden }), bs, opts))
  if (root.path !== path.basename(dir)) throw new Error(`unexpected JS root path ${root.path}`)
  return { cid: root.cid, bs, root }
}

// Like `ipfs add -w FILE`: a directory holding basename(FILE).
export async function jsAddWrapped (file, opts, bs = new MemoryBlockstore()) {
  const root = await lastOf(importer([{ path: path.basename(file), content: readStream(file) }], bs, { ...opts, wrapWithDirectory: true }))
  return { cid: root.cid, bs, root }
}

export function withChunker (opts, size) {
  return { ...opts, chunker: fixedSize({ chunkSize: size }) }
}

// A UnixFS symlink node built from primitives (independent of the importer):
// PBNode{Data: UnixFS{Type: Symlink, Data: target}} with no links.
export async function symlinkNode (target, cidVersion) {
  const data = new UnixFS({ type: 'symlink', data: new TextEncoder().encode(target) }).marshal()
  const bytes = dagPb.encode(dagPb.prepare({ Data: data }))
  const cid = CID.create(cidVersion, dagPb.code, await sha256.digest(bytes))
  return { cid, bytes }
}

export function unixfsType (bs, cid) {
  if (cid.code !== dagPb.code) return 'raw-block'
  const node = dagPb.decode(getBlock(bs, cid))
  return UnixFS.unmarshal(node.Data).type
}

// Human-readable dump of a dag-pb / raw block for mismatch reports.
export function describeBlock (bytes, cid) {
  if (cid.code !== dagPb.code) return `raw block, ${bytes.length} bytes`
  const node = dagPb.decode(bytes)
  let fs
  try {
    const u = UnixFS.unmarshal(node.Data)
    fs = { type: u.type, fileSize: String(u.fileSize()), blockSizes: u.blockSizes.map(String).slice(0, 8), nBlockSizes: u.blockSizes.length, dataLen: u.data?.length, fanout: u.fanout != null ? String(u.fanout) : undefined, fieldsPresent: protoFields(node.Data).map(f => f.field).join(',') }
  } catch (e) { fs = `not unixfs: ${e.message}` }
  return JSON.stringify({
    blockBytes: bytes.length,
    unixfs: fs,
    nLinks: node.Links.length,
    links: node.Links.slice(0, 6).map(l => ({ name: l.Name, tsize: l.Tsize, cid: l.Hash.toString() }))
  })
}
