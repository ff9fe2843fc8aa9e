// Compare a UnixFS DAG (read with ipfs-unixfs-exporter) to a file-system tree.
import fs from 'node:fs'
import path from 'node:path'
import assert from 'node:assert/strict'
import { exporter } from 'ipfs-unixfs-exporter'
import * as dagPb from '@ipld/dag-pb'
import { symlinkNode } from './js.mjs'

export async function exportBytes (bs, cidOrPath) {
  const entry = await exporter(cidOrPath, bs)
  const parts = []
  for await (const c of entry.content()) parts.push(c)
  return Buffer.concat(parts)
}

// Returns the number of entries checked.
export async function compareTree (bs, cid, dir, { hidden = false } = {}) {
  let count = 0
  const walk = async (cid, abs, rel) => {
    count++
    const st = fs.lstatSync(abs)
    const entry = await exporter(cid, bs)
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(abs)
      assert.equal(entry.unixfs?.type, 'symlink', `${rel}: expected a symlink, got ${entry.unixfs?.type ?? entry.type}`)
      assert.equal(Buffer.from(entry.unixfs.data).toString(), target, `${rel}: symlink target`)
      const want = await symlinkNode(target, cid.version)
      assert.equal(cid.toString(), want.cid.toString(), `${rel}: symlink node CID recomputed in JS`)
    } else if (st.isDirectory()) {
      assert.equal(entry.type, 'directory', `${rel}: expected a directory`)
      const want = fs.readdirSync(abs).filter(n => hidden || !n.startsWith('.')).sort()
      const got = []
      for await (const e of entry.entries()) got.push(e)
      assert.deepEqual(got.map(e => e.name).sort(), want, `${rel}: directory entries`)
      for (const e of got) await walk(e.cid, path.join(abs, e.name), `${rel}/${e.name}`)
    } else {
      assert.ok(entry.type === 'file' || entry.type === 'raw', `${rel}: expected a file, got ${entry.type}`)
      const bytes = await exportBytes(bs, cid)
      assert.ok(bytes.equals(fs.readFileSync(abs)), `${rel}: file content differs (${bytes.length} vs ${st.size} bytes)`)
    }
  }
  await walk(cid, dir, path.basename(dir))
  return count
}

// CID strings of every block reachable from `root` in `bs` (identity excluded).
export function dagCids (bs, root, getBlock) {
  const seen = new Set()
  const visit = (cid) => {
    if (cid.multihash.code === 0x00) return
    const s = cid.toString()
    if (seen.has(s)) return
    seen.add(s)
    if (cid.code === dagPb.code) for (const l of dagPb.decode(getBlock(bs, cid)).Links) visit(l.Hash)
  }
  visit(root)
  return seen
}
