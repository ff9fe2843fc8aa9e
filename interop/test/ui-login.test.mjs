// Signing a real browser in to the web UI of a daemon that requires tokens (no
// --open-loopback): headless Chromium is refused, opens the one-time link `kiln ui login`
// prints, lands on the dashboard with a session cookie it cannot read from a script
// (HttpOnly, SameSite=Strict), finds the link used up, signs out, and is refused again.
// Then the administrator's pages in the browser (a user added with the Users form, an invite
// made, the audit trail), and a writer signed in with its own token: its own dashboard, no
// admin pages.
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

let kiln, bob, daemon, context, page, profileDir

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
  bob?.cleanup()
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

test('an administrator runs the admin pages; a writer sees only its own', { skip }, async t => {
  const shot = async name => {
    const file = path.join(ARTIFACTS, name)
    await page.screenshot({ path: file, fullPage: true })
    t.diagnostic(`screenshot: ${file}`)
  }
  await page.goto(kiln.ok(['ui', 'login']).stdout.toString().trim())
  assert.equal(await page.title(), 'Dashboard · kiln')

  // Users: add one with the form; the command line sees it.
  bob = new Kiln('ui-bob', { identity: true })
  const bobDid = bob.ok(['identity', 'show']).stdout.toString().trim()
  await page.getByRole('link', { name: 'Users', exact: true }).click()
  await page.waitForURL(/\/ui\/users$/)
  await page.fill('#user-did', bobDid)
  await page.fill('#user-name', 'Bob')
  await page.selectOption('#user-role', 'writer')
  await page.getByRole('button', { name: 'Add', exact: true }).click()
  await page.waitForURL(/\/ui\/users$/)
  const row = page.locator(`#users tr[data-did="${bobDid}"]`)
  assert.match(await row.innerText(), /Bob[\s\S]*writer/)
  assert.match(kiln.ok(['user', 'ls']).stdout.toString(), new RegExp(`${bobDid}.*writer`))
  await shot('ui-users.png')

  // Invites: one made, its code shown once.
  await page.getByRole('link', { name: 'Invites', exact: true }).click()
  await page.waitForURL(/\/ui\/invites$/)
  await page.getByRole('button', { name: 'Make an invite' }).click()
  const code = (await page.locator('#invite-code').innerText()).trim()
  assert.match(code, /^[A-Z2-7]{5}(-[A-Z2-7]{5}){3}$/)
  assert.match(await page.locator('#invite-join').innerText(), new RegExp(`^kiln join ${daemon.api} ${code}$`))
  await shot('ui-invite.png')
  assert.match(kiln.ok(['invite', 'ls']).stdout.toString(), /writer/)

  // Audit: what was just done, by whom.
  await page.getByRole('link', { name: 'Audit', exact: true }).click()
  await page.waitForURL(/\/ui\/audit$/)
  const audit = await page.locator('#audit').innerText()
  assert.match(audit, /user add/)
  assert.match(audit, /invite create/)
  await shot('ui-audit.png')
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForSelector('h1:text("Signed out")')

  // Bob signs in with his own token: his dashboard, no admin pages.
  bob.env.KILN_TOKEN = kiln.ok(['token', 'create', '--for', bobDid, '--ttl', '1h']).stdout.toString().trim()
  const bobLink = bob.ok(['--node', daemon.api, 'ui', 'login']).stdout.toString().trim()
  await page.goto(bobLink)
  assert.equal(await page.title(), 'Dashboard · kiln')
  assert.equal((await page.locator('#you-did').innerText()).trim(), bobDid)
  assert.match(await page.locator('#you-roles').innerText(), /writer/)
  assert.equal(await page.getByRole('link', { name: 'Users', exact: true }).count(), 0)
  assert.equal(await page.getByRole('link', { name: 'Activity', exact: true }).count(), 1)
  await shot('ui-writer.png')
  const res = await page.goto(`${daemon.api}/ui/users`)
  assert.equal(res.status(), 403)
})
