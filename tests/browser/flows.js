// Browser flows for Substrate, in headless Chromium (the Debian package)
// driven by playwright-core. Run by tests/browser_flows.rs, one flow per
// process:
//
//   node tests/browser/flows.js FLOW
//
// Environment: BASE (the daemon's URL, http or https), TOKEN (admin token),
// SHOTS (screenshot directory), and per flow: SPACE and FORK (home),
// BROWSER_HOME (a HOME whose NSS database trusts the local CA, for HTTPS),
// RESOLVE (a host name to map to 127.0.0.1), NAMESPACE (the daemon's, for
// docker kill in the gotty flow). Exit 0 when the flow holds;
// otherwise the error says which step failed.
'use strict';

const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const BASE = process.env.BASE;
const SHOTS = process.env.SHOTS || 'target/browser';
const flow = process.argv[2];

// Flags that work on these machines (NOTES.md): no sandbox as root, and no
// background networking toward hosts that cannot be reached.
function launchArgs() {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ];
  if (process.env.RESOLVE) {
    args.push(`--host-resolver-rules=MAP ${process.env.RESOLVE} 127.0.0.1`);
  }
  return args;
}

let shotNumber = 0;
async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  shotNumber += 1;
  const file = path.join(SHOTS, `${flow}-${String(shotNumber).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

// Requests the browser gave up on, in order: `url error` lines.
const failedRequests = [];

// Navigates to `url`. Starting a container adds a network interface to the
// host (its veth; for the first container, the daemon's network too), which
// Chromium reports as ERR_NETWORK_CHANGED and aborts what is in flight: the
// navigation itself, or, when the notice comes a moment later, the page's
// stylesheets and scripts after its HTML arrived. That is this machine
// changing under the browser, not the page failing, so the navigation is
// retried a few times — only for that error.
async function goto(page, url) {
  for (let attempt = 1; ; attempt++) {
    const failedBefore = failedRequests.length;
    try {
      const response = await page.goto(url);
      await page.waitForLoadState('load');
      const changed = failedRequests.slice(failedBefore).filter((f) => /ERR_NETWORK_CHANGED/.test(f));
      if (changed.length === 0 || attempt >= 10) return response;
      console.log(`retrying ${url}: its page's requests failed: ${changed.join(', ')}`);
      continue;
    } catch (e) {
      const message = String(e.message);
      // The gotty page also reloads itself when its connection drops,
      // which interrupts a navigation of ours: let that one finish.
      if (/interrupted by another navigation to "http/.test(message)) {
        await page.waitForLoadState('load').catch(() => {});
        if (page.url().startsWith(url.split('#')[0].split('?')[0].replace(/\/$/, ''))) return null;
      }
      const changed = /ERR_NETWORK_CHANGED|interrupted by another navigation/.test(message);
      if (attempt >= 10 || !changed) throw e;
      console.log(`retrying ${url}: ${message.split('\n')[0]}`);
      await page.waitForTimeout(200);
    }
  }
}

function step(what) {
  console.log(`step: ${what}`);
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

async function bodyText(page) {
  return page.evaluate(() => document.body ? document.body.innerText : '');
}

// notes: open /notes/, get redirected to a space, add a note, open the
// fork: URL, and see the two diverge.
async function notes(page) {
  step('open /notes/ and follow the redirect to a new space');
  await goto(page, `${BASE}/notes/`);
  const url = page.url();
  const m = url.match(/\/notes;data=(sp-[0-9A-Z]{26})\//);
  expect(m, `not redirected to a space: ${url}`);
  const space = m[1];
  await shot(page, 'empty-space');

  step('add a note');
  await page.fill('textarea[name=text]', 'written before the fork');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForFunction(() => document.body.innerText.includes('written before the fork'));
  await shot(page, 'first-note');

  step('open the fork: URL');
  await goto(page, `${BASE}/notes;data=fork:${space}/`);
  const forkUrl = page.url();
  const f = forkUrl.match(/\/notes;data=(sp-[0-9A-Z]{26})\//);
  expect(f && f[1] !== space, `the fork did not get a space of its own: ${forkUrl}`);
  expect((await bodyText(page)).includes('written before the fork'), 'the fork lacks the note made before it');
  await page.fill('textarea[name=text]', 'only in the fork');
  await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
  await page.waitForFunction(() => document.body.innerText.includes('only in the fork'));
  await shot(page, 'fork-diverged');

  step('the original does not have the fork\'s note');
  await goto(page, url);
  const original = await bodyText(page);
  expect(original.includes('written before the fork'), 'the original lost its note');
  expect(!original.includes('only in the fork'), 'the fork\'s note leaked into the original');
  await shot(page, 'original-unchanged');
}

// starting: a service that takes ~3 s to start shows "starting…", then the
// app, with no user action.
async function starting(page) {
  step('open the slow service');
  await goto(page, `${BASE}/slowweb/`);
  const first = await bodyText(page);
  expect(/Starting slowweb/.test(first), `no "starting…" page first: ${first.slice(0, 200)}`);
  await shot(page, 'starting');
  step('wait for the app without doing anything');
  await page.waitForFunction(() => document.body && document.body.innerText.includes('"hostname"'), null, { timeout: 30000 });
  await shot(page, 'app');
}

async function login(page) {
  step('log in with the admin token');
  await goto(page, `${BASE}/`);
  expect(await page.isVisible('#token'), 'no login form at /');
  await shot(page, 'login');
  await page.fill('#token', process.env.TOKEN);
  await Promise.all([page.waitForLoadState('load'), page.click('#login')]);
  expect(await page.isVisible('#spaces'), 'the home page did not open after logging in');
}

// home: log in, see the space and its fork in the lineage picture, press
// "checkpoint", see the checkpoint appear.
async function home(page) {
  const space = process.env.SPACE;
  const fork = process.env.FORK;
  await login(page);
  await shot(page, 'home');
  step('the lineage picture shows the space, its fork and the fork edge');
  await goto(page, `${BASE}/?space=${space}#lineage`);
  for (const id of [space, fork]) {
    expect(await page.locator(`svg.lineage g.space[data-id="${id}"]`).count() === 1, `${id} is not in the lineage picture`);
  }
  expect(await page.locator('svg.lineage .edge.fork').count() >= 1, 'no fork edge in the lineage picture');
  const before = await page.locator('svg.lineage g.checkpoint').count();
  await shot(page, 'lineage');

  step('press "checkpoint" on the space');
  const row = page.locator(`tr[data-space="${space}"]`);
  await row.locator('input[name=message]').fill('from the browser');
  await Promise.all([page.waitForLoadState('load'), row.locator('button.checkpoint').click()]);
  const notice = await page.textContent('#notice');
  expect(notice && notice.includes('checkpointed'), `no confirmation after the checkpoint: ${notice}`);
  const after = await page.locator('svg.lineage g.checkpoint').count();
  expect(after === before + 1, `the checkpoint did not appear in the lineage picture (${before} → ${after})`);
  await shot(page, 'checkpointed');
}

// gotty: type into the terminal, kill the container, reload, read it back.
async function terminalType(page, text) {
  await page.click('.xterm, #terminal, body');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

async function terminalText(page) {
  return page.evaluate(() => {
    const rows = document.querySelector('.xterm-rows');
    return rows ? rows.innerText : document.body.innerText;
  });
}

async function gotty(page) {
  step('open /gotty/ and follow the redirect to a space');
  await goto(page, `${BASE}/gotty/`);
  const url = page.url();
  expect(/\/gotty;data=sp-[0-9A-Z]{26}\//.test(url), `not redirected to a space: ${url}`);
  await page.waitForSelector('.xterm', { timeout: 30000 });
  await page.waitForFunction(() => /[$#] *$/m.test((document.querySelector('.xterm-rows') || document.body).innerText), null, { timeout: 30000 });
  step('type echo hello > greeting.txt');
  await terminalType(page, 'echo hello > greeting.txt && pwd');
  await page.waitForFunction(() => (document.querySelector('.xterm-rows') || document.body).innerText.includes('/spaces/data/tree'), null, { timeout: 15000 });
  await shot(page, 'typed');

  step('docker kill the container');
  // The instance of this page's URL (a retried navigation to /gotty/ may
  // have made other spaces, and instances, of its own).
  const viewspec = decodeURIComponent(new URL(url).pathname.split('/')[1]);
  const filters = ['--filter', `label=substrate.namespace=${process.env.NAMESPACE}`, '--filter', `label=substrate.instance=${viewspec}`];
  const ids = execFileSync('docker', ['ps', '-q', ...filters]).toString().trim().split('\n').filter(Boolean);
  expect(ids.length === 1, `expected one container for ${viewspec}, found ${ids.length}`);
  execFileSync('docker', ['kill', ids[0]]);

  step('reload and cat greeting.txt');
  const deadline = Date.now() + 60000;
  for (;;) {
    await goto(page, url);
    const ready = await page.waitForSelector('.xterm', { timeout: 30000 }).then(() => true, () => false);
    if (ready) break;
    expect(Date.now() < deadline, 'the terminal did not come back after the kill');
  }
  await page.waitForFunction(() => /[$#] *$/m.test((document.querySelector('.xterm-rows') || document.body).innerText), null, { timeout: 30000 });
  await terminalType(page, 'cat greeting.txt');
  await page.waitForFunction(() => /^hello\s*$/m.test((document.querySelector('.xterm-rows') || document.body).innerText), null, { timeout: 15000 })
    .catch(async () => { throw new Error(`cat greeting.txt did not print hello: ${await terminalText(page)}`); });
  await shot(page, 'survived-kill');
}

const FLOWS = { notes, starting, home, gotty };

(async () => {
  const run = FLOWS[flow];
  if (!run) throw new Error(`unknown flow ${flow}; flows: ${Object.keys(FLOWS).join(', ')}`);
  const env = { ...process.env };
  if (process.env.BROWSER_HOME) env.HOME = process.env.BROWSER_HOME;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: launchArgs(),
    env,
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('requestfailed', (r) => failedRequests.push(`${r.url()} ${r.failure() ? r.failure().errorText : '?'}`));
  try {
    await run(page);
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    if (failedRequests.length) console.log(`failed requests:\n  ${failedRequests.join('\n  ')}`);
    throw e;
  } finally {
    await browser.close();
  }
  console.log(`flow ${flow}: ok`);
})().catch((e) => {
  console.error(`flow ${flow} failed: ${e.message}`);
  process.exit(1);
});
