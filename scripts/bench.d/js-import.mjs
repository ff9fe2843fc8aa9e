// Hash-only import of one file with the JS reference importer, for scripts/bench.
//
//   node scripts/bench.d/js-import.mjs FILE
//
// ipfs-unixfs-importer with its default options (== `ipfs add --cid-version=1`:
// CIDv1, raw leaves, 256 KiB fixed-size chunks, balanced layout with 174 links),
// a blockstore that discards every block, and the file read as a stream
// (fs.createReadStream with 1 MiB chunks, as interop/lib/js.mjs reads files;
// BENCH_JS_CHUNK=BYTES to change: with the stream default of 64 KiB the
// importer is about 1.8x slower here, so 1 MiB is the stronger baseline).
// Prints the root CID and the file size. Resolved from interop/node_modules.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const interop = path.resolve(here, '..', '..', 'interop')

// The package is ESM-only and lives in interop/node_modules, which bare imports
// from this directory would not search: import its entry point by URL.
function resolveEsm (name) {
  const dir = path.join(interop, 'node_modules', name)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const exp = pkg.exports?.['.']
  const entry = (typeof exp === 'string' ? exp : exp?.import ?? exp?.default) ?? pkg.module ?? pkg.main
  return pathToFileURL(path.join(dir, entry)).href
}

const file = process.argv[2]
if (!file) {
  console.error('usage: js-import.mjs FILE')
  process.exit(2)
}

const { importer } = await import(resolveEsm('ipfs-unixfs-importer'))

// Discards blocks; only `put` is needed by the importer.
const blockstore = {
  async put (cid) { return cid }
}

const highWaterMark = Number(process.env.BENCH_JS_CHUNK || 1024 * 1024)
const content = fs.createReadStream(file, { highWaterMark })
let last
for await (const entry of importer([{ content }], blockstore)) last = entry
console.log(`${last.cid.toString()} ${last.size}`)
