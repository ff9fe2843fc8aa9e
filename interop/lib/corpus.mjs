// Deterministic corpus generation: seeded PRNG bytes, written once to a cache dir
// under the OS temp dir and reused by every test file (node --test runs each file
// in its own process).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'

export const KiB = 1024
export const MiB = 1024 * 1024

// mulberry32: tiny, fast, deterministic 32-bit PRNG.
export function prng (seed) {
  let a = seed >>> 0
  return function next () {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

export function randomBytes (size, seed) {
  const words = new Uint32Array(Math.ceil(size / 4))
  const next = prng(seed)
  for (let i = 0; i < words.length; i++) words[i] = next()
  return new Uint8Array(words.buffer, 0, size)
}

// File-size cases (name -> size). Seeds are derived from the name so that
// every file has distinct content.
export const FILE_CASES = {
  empty: 0,
  one: 1,
  'c256k-minus1': 256 * KiB - 1,
  'c256k-exact': 256 * KiB,
  'c256k-plus1': 256 * KiB + 1,
  'c1m-minus1': MiB - 1,
  'c1m-exact': MiB,
  'c1m-plus1': MiB + 1,
  // 175 leaves of 256 KiB + 1 byte: > 174 links, so the 256 KiB profiles need a
  // second level of internal nodes. (For unixfs-v1-2025 this is 44 leaves, one level.)
  'deep-175x256k-plus1': 175 * 256 * KiB + 1
}

export function seedOf (name) {
  return crypto.createHash('sha256').update(name).digest().readUInt32LE(0)
}

const CORPUS_VERSION = 'v1'

export function corpusDir () {
  return process.env.KILN_INTEROP_CORPUS ?? path.join(os.tmpdir(), `kiln-interop-corpus-${CORPUS_VERSION}`)
}

function writeAtomic (file, bytes) {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`
  fs.writeFileSync(tmp, bytes)
  fs.renameSync(tmp, file)
}

// Returns the path of the generated file, creating it if missing or of wrong size.
export function corpusFile (name, size = FILE_CASES[name]) {
  const dir = path.join(corpusDir(), 'files')
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${name}.bin`)
  try {
    if (fs.statSync(file).size === size) return file
  } catch {}
  writeAtomic(file, randomBytes(size, seedOf(name)))
  return file
}

export function mkTemp (prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kiln-interop-${prefix}-`))
}

// A tree spec is an object: name -> string|Uint8Array (file), {symlink: target},
// or a nested object (directory; {} is an empty directory).
export function writeTree (root, spec) {
  fs.mkdirSync(root, { recursive: true })
  for (const [name, v] of Object.entries(spec)) {
    const p = path.join(root, name)
    if (typeof v === 'string' || v instanceof Uint8Array) {
      fs.writeFileSync(p, v)
    } else if (v != null && typeof v.symlink === 'string') {
      fs.symlinkSync(v.symlink, p)
    } else {
      writeTree(p, v)
    }
  }
  return root
}

// The mixed tree used for directory comparisons and CAR round trips.
export function mixedTreeSpec () {
  return {
    'README.md': '# hello\n',
    'hello world.txt': 'spaces in the name\n',
    'héllo wörld.txt': 'latin-1 supplement, NFC\n',
    '日本語のファイル.txt': 'CJK\n',
    '🎉 party.txt': 'astral plane emoji\n',
    'a-256k-plus1.bin': randomBytes(256 * KiB + 1, seedOf('tree-a')),
    'small.bin': randomBytes(3000, seedOf('tree-small')),
    '.hidden-file': 'secret\n',
    '.hidden-dir': { 'inside.txt': 'inside a hidden dir\n' },
    'empty-dir': {},
    'only-hidden': { '.dotfile': 'x' },
    nested: {
      'level1.txt': 'one\n',
      deeper: {
        'level2.txt': 'two\n',
        deepest: {
          'level3.bin': randomBytes(1500, seedOf('tree-l3')),
          'empty file': ''
        }
      },
      'empty-sub': {}
    },
    'link-to-readme': { symlink: 'README.md' },
    'link-to-nested': { symlink: 'nested/deeper' },
    'dangling-link': { symlink: 'does/not/exist' },
    'absolute-link': { symlink: '/etc/hostname' },
    'zzz-last.txt': 'last\n'
  }
}

export function mixedTree () {
  const dir = path.join(corpusDir(), 'trees', 'mixed')
  const stamp = path.join(corpusDir(), 'trees', 'mixed.done')
  if (!fs.existsSync(stamp)) {
    fs.rmSync(dir, { recursive: true, force: true })
    writeTree(dir, mixedTreeSpec())
    fs.writeFileSync(stamp, '')
  }
  return dir
}

// Names of "realistic" length for the HAMT threshold directories: 18–31 bytes.
const WORDS = ['report', 'photo', 'invoice', 'notes', 'backup', 'draft', 'summary', 'holiday']
export function hamtName (i) {
  const w = WORDS[i % WORDS.length]
  return `${w}-${String(i).padStart(6, '0')}-final.txt`
}
export function hamtContent (i) {
  return `entry ${i}\n`
}

// Directory of `count` small files named hamtName(0..count-1).
export function hamtTree (count) {
  const dir = path.join(corpusDir(), 'trees', `hamt-${count}`)
  const stamp = `${dir}.done`
  if (!fs.existsSync(stamp)) {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { recursive: true })
    for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, hamtName(i)), hamtContent(i))
    fs.writeFileSync(stamp, '')
  }
  return dir
}
