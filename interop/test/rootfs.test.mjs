// `kiln rootfs import` records an executable file's mode (UnixFS 1.5 `mode` 0755): its root
// CID must be the JS importer's for the same tree with `mode: 0o755` on those files.
import { describe, test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { UnixFS } from 'ipfs-unixfs'
import * as dagPb from '@ipld/dag-pb'
import { PROFILES, getBlock } from '../lib/js.mjs'
import { Kiln, kilnSkip } from '../lib/kiln.mjs'
import { mkTemp, randomBytes, writeTree } from '../lib/corpus.mjs'

// Importer candidates for a root file system: every entry (hidden ones too), symlinks as
// links, files with mode 0755 when any execute bit is set and no mode otherwise.
function rootfsCandidates (dir) {
  const out = []
  const walk = (abs, rel) => {
    const names = fs.readdirSync(abs).sort()
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
      else out.push({ path: r, content: fs.readFileSync(a), mode: (st.mode & 0o111) ? 0o755 : undefined })
    }
  }
  walk(dir, path.basename(dir))
  return out
}

describe('kiln rootfs import == JS importer with modes', { skip: kilnSkip }, () => {
  let kiln
  const k = () => (kiln ??= new Kiln('rootfs'))
  const tmp = mkTemp('rootfs-tree')
  after(() => {
    kiln?.cleanup()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  test('a tree with executables, plain files, a multi-chunk executable, symlinks, empty entries', async () => {
    const root = writeTree(path.join(tmp, 'root'), {
      bin: { hello: '#!/bin/sh\necho hello\n', 'empty-tool': '', sh: { symlink: 'hello' } },
      etc: { motd: 'welcome\n', '.hidden': 'h' },
      usr: { lib: { 'big.so': randomBytes((5 << 19) + 7, 11) } },
      tmp: {},
      lib: { symlink: '/usr/lib' }
    })
    for (const f of ['bin/hello', 'bin/empty-tool', 'usr/lib/big.so']) fs.chmodSync(path.join(root, f), 0o755)
    fs.chmodSync(path.join(root, 'etc/motd'), 0o600)

    const bs = new MemoryBlockstore()
    let last
    for await (const e of importer(rootfsCandidates(root), bs, PROFILES['v1-2025'].js())) last = e
    assert.equal(last.path, 'root')
    const got = k().ok(['rootfs', 'import', root]).stdout.toString().trim()
    assert.equal(got, last.cid.toString())

    // The executable's own node carries the mode; the plain file is a raw leaf.
    const links = Object.fromEntries(dagPb.decode(getBlock(bs, last.cid)).Links.map(l => [l.Name, l.Hash]))
    const bin = Object.fromEntries(dagPb.decode(getBlock(bs, links.bin)).Links.map(l => [l.Name, l.Hash]))
    const hello = UnixFS.unmarshal(dagPb.decode(getBlock(bs, bin.hello)).Data)
    assert.equal(hello.mode, 0o755)
    const etc = Object.fromEntries(dagPb.decode(getBlock(bs, links.etc)).Links.map(l => [l.Name, l.Hash]))
    assert.equal(etc.motd.code, 0x55)
  })
})
