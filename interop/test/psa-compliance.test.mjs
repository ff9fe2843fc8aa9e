// The official Pinning Service API compliance suite (@ipfs-shipyard/pinning-service-compliance
// 1.8.1, in ../psa-compliance) against a live kiln daemon that requires tokens, with a token
// minted for the run. The suite always exits 0 and drops checks that fail to start, so its
// JSON report is read and every one of its 9 checks must pass.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Kiln, kilnSkip, startDaemon } from '../lib/kiln.mjs'

const SUITE = path.join(import.meta.dirname, '..', 'psa-compliance')
const PKG = path.join(SUITE, 'node_modules', '@ipfs-shipyard', 'pinning-service-compliance')
const DOCS = path.join(PKG, 'dist', 'docs')

let kiln, daemon

before(async () => {
  if (kilnSkip) return
  kiln = new Kiln('psa-compliance', { identity: true })
  kiln.ok(['init'])
  daemon = await startDaemon(kiln.home, { strict: true })
})

after(async () => {
  if (daemon) {
    const exited = new Promise(resolve => daemon.child.on('exit', resolve))
    daemon.child.kill('SIGTERM')
    await exited
  }
  kiln?.cleanup()
})

test('the compliance suite passes 9 of 9 checks', { skip: kilnSkip, timeout: 600_000 }, () => {
  assert.ok(fs.existsSync(PKG), 'the compliance suite is not installed (interop/run installs it)')
  const token = kiln.ok(['token', 'create', '--ttl', '1h', '--note', 'psa-compliance']).stdout.toString().trim()
  fs.rmSync(DOCS, { recursive: true, force: true })
  const endpoint = `${daemon.api}/psa`
  const run = spawnSync(process.execPath, [path.join(PKG, 'dist', 'src', 'index.js'), '-s', endpoint, token], {
    cwd: SUITE,
    encoding: 'utf8',
    timeout: 540_000,
    env: { ...process.env, npm_package_name: 'kiln-interop' }
  })
  const host = new URL(endpoint).hostname
  const reportFile = path.join(DOCS, `${host}.json`)
  const markdown = path.join(DOCS, `${host}.md`)
  const details = () => [
    run.stdout?.slice(-4000),
    run.stderr?.slice(-2000),
    fs.existsSync(markdown) ? fs.readFileSync(markdown, 'utf8').slice(0, 20000) : '(no markdown report)'
  ].join('\n----\n')
  assert.ok(fs.existsSync(reportFile), `the suite wrote no report (a request failed to start?):\n${details()}`)
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8'))
  assert.equal(report.total, 9, `the suite ran ${report.total} checks, not 9:\n${details()}`)
  assert.equal(report.passed, 9, `${report.passed}/9 checks passed:\n${details()}`)
  assert.equal(report.success, true)
  // The token never reaches the daemon's journal.
  const events = kiln.ok(['audit', '--json', '-n', '10000']).stdout.toString()
  assert.ok(!events.includes(token))
  assert.match(events, /"action":"pin request"/)
})
