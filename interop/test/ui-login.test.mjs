// Signing a real browser in to the web UI of a daemon that requires tokens (no
// --open-loopback): headless Chromium is refused, opens the one-time link `kiln ui login`
// prints, lands on the dashboard with a session cookie it cannot read from a script
// (HttpOnly, SameSite=Strict), finds the link used up, signs out, and is refused again.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { Kiln, kilnSkip, startDaemon } from '../lib/kiln.mjs'
import { mkTemp } from '../lib/corpus.mjs'

const CHROMIUM = process.env.KILN_CHROMIUM || '/usr/bin/chromium'
const ARTIFACTS = path.resolve(process.env.KILN_ARTIFACTS ||
  path.join(import.meta.dirname, '..', '..', 'target', 'artifacts'))

const noBrowser = !fs.existsSync(CHROMIUM) && `no browser at ${CHROMIUM} (interop/run installs it)`
if (noBrowser && process.env.CI === 'true') throw new Error(`${noBrowser}; CI=true`)
const skip = kilnSkip || noBrowser

let kiln, daemon, context, page, profileDir

before(async () => {
  if (skip) return
  kiln = new Kiln('ui-login')
  kiln.ok(['init'])
  daemon = await startDaemon(kiln.home, { strict: true })
  profileDir = mkTemp('ui-login-chromium')
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  page = context.pages()[0] ?? await context.newPage()
  fs.mkdirSync(ARTIFACTS, { recursive: true })
})

after(async () => {
  await context?.close()
  if (daemon) {
    const exited = new Promise(resolve => daemon.child.on('exit', resolve))
    daemon.child.kill('SIGTERM')
    await exited
  }
  kiln?.cleanup()
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true })
})

test('a browser signs in with a one-time link, and out', { skip }, async t => {
  let res = await page.goto(`${daemon.api}/ui/pins`)
  assert.equal(res.status(), 401)
  assert.equal(await page.locator('h1').innerText(), 'Sign-in needed')
  assert.match(await page.locator('main').innerText(), /kiln ui login/)

  const link = kiln.ok(['ui', 'login']).stdout.toString().trim()
  assert.ok(link.startsWith(`${daemon.api}/ui/login?code=`), link)
  res = await page.goto(link)
  assert.equal(res.status(), 200)
  assert.equal(new URL(page.url()).pathname, '/')
  assert.equal(await page.title(), 'Dashboard · kiln')
  const [cookie] = await context.cookies(daemon.api)
  assert.equal(cookie.name, 'kiln_session')
  assert.equal(cookie.httpOnly, true)
  assert.equal(cookie.sameSite, 'Strict')
  assert.equal(await page.evaluate(() => document.cookie), '', 'no script can read the session')
  await page.getByRole('link', { name: 'Pins', exact: true }).click()
  await page.waitForURL(/\/ui\/pins$/)
  const shot = path.join(ARTIFACTS, 'ui-signed-in.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.diagnostic(`screenshot: ${shot}`)

  // The link is used up, even in the same browser.
  res = await page.goto(link)
  assert.equal(res.status(), 401)
  assert.equal(await page.locator('h1').innerText(), 'Sign-in failed')

  await page.goto(`${daemon.api}/`)
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForSelector('h1:text("Signed out")')
  assert.deepEqual(await context.cookies(daemon.api), [])
  res = await page.goto(`${daemon.api}/`)
  assert.equal(res.status(), 401)
})
