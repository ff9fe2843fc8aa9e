// Driving the kiln CLI. KILN_BIN: the binary; each group gets a fresh KILN_HOME.
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkTemp } from './corpus.mjs'

export const KILN_BIN = process.env.KILN_BIN
  ? path.resolve(process.env.KILN_BIN)
  : path.resolve(import.meta.dirname, '..', '..', 'target', 'release', 'kiln')

export const haveKiln = fs.existsSync(KILN_BIN)

// When the binary is missing the kiln-side tests fail (so CI cannot go green
// without a build) unless KILN_INTEROP_SKIP_MISSING=1, which turns them into skips.
export const kilnSkip = !haveKiln && process.env.KILN_INTEROP_SKIP_MISSING === '1'
  ? `kiln binary not found at ${KILN_BIN}`
  : false

export class Kiln {
  // `identity`: give this repository's user an identity of its own (a config directory of
  // its own, never the real user's), the node's first admin once `kiln init` runs.
  constructor (label = 'repo', { identity = false } = {}) {
    this.home = mkTemp(label)
    this.env = { KILN_HOME: this.home }
    if (identity) {
      this.env.XDG_CONFIG_HOME = mkTemp(`${label}-config`)
      this.ok(['identity', 'new'])
    }
  }

  // Runs kiln; returns {status, stdout (Buffer), stderr (string)}.
  run (args, { input, cwd } = {}) {
    if (!haveKiln) throw new Error(`kiln binary not found at ${KILN_BIN} (set KILN_BIN)`)
    const r = spawnSync(KILN_BIN, args, {
      env: { ...process.env, ...this.env },
      input,
      cwd,
      maxBuffer: 1 << 30,
      timeout: 120_000
    })
    if (r.error) throw r.error
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString() }
  }

  // Runs kiln and throws with full context on a non-zero exit.
  ok (args, opts) {
    const r = this.run(args, opts)
    if (r.status !== 0) {
      throw new Error(`kiln ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.trim()}`)
    }
    return r
  }

  // `kiln add -Q ...` → root CID string.
  addQ (args, opts) {
    const out = this.ok(['add', '-Q', ...args], opts).stdout.toString().trim()
    const lines = out.split('\n')
    if (lines.length !== 1 || lines[0] === '') throw new Error(`kiln add -Q ${args.join(' ')}: expected one line, got ${JSON.stringify(out)}`)
    return lines[0]
  }

  cleanup () {
    fs.rmSync(this.home, { recursive: true, force: true })
    if (this.env.XDG_CONFIG_HOME) fs.rmSync(this.env.XDG_CONFIG_HOME, { recursive: true, force: true })
  }
}

// Starts `kiln daemon` on ephemeral ports for the repository `home`; resolves once it
// prints `Daemon is ready`, with the child and the API and gateway URLs. Loopback clients
// act as the local administrator (`--open-loopback`) unless `strict`: then every TCP
// client needs a token, and the web UI a sign-in (`kiln ui login`).
export async function startDaemon (home, { strict = false } = {}) {
  const args = ['daemon', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0']
  if (!strict) args.push('--open-loopback')
  const child = spawn(KILN_BIN, args, {
    env: { ...process.env, KILN_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines = createInterface({ input: child.stdout })
  let api, gateway
  for await (const line of lines) {
    let m = line.match(/^API listening on (http:\/\/\S+)$/)
    if (m) api = m[1]
    m = line.match(/^Gateway listening on (http:\/\/\S+)$/)
    if (m) gateway = m[1]
    if (line === 'Daemon is ready') break
  }
  if (!api || !gateway) throw new Error('daemon did not print its addresses')
  return { child, api, gateway }
}
