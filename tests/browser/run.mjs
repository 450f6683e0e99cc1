// The single-page app of examples/spa in a real headless Chromium: starts the built example,
// opens the URL it prints, waits for the page's results (`window.dpopResults`), checks every
// step from what the page saw (statuses, challenges, nonces), checks the CORS preflights
// Chromium sent, saves a screenshot, then reloads the page to check the key came back from
// IndexedDB.
//
//   node tests/browser/run.mjs
//
// Environment: SPA_BIN (the example binary; default target/debug/examples/spa), CHROMIUM (the
// browser; default /usr/bin/chromium), SPA_SCREENSHOT (default target/browser/spa.png; docs/browsers/spa.png is a copy of one).
// scripts/browser_test.sh builds the example and runs this.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const spaBin = process.env.SPA_BIN ?? path.join(root, 'target/debug/examples/spa');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const screenshot = process.env.SPA_SCREENSHOT ?? path.join(root, 'target/browser/spa.png');
/** How long to wait for the page or the server before giving up (a guard, not a measure). */
const GUARD_MS = 60_000;

let passed = 0;
function check(name, fn) {
  fn();
  passed += 1;
  console.log(`  ok  ${name}`);
}

/** Starts the example; resolves with the process and the page URL it prints. */
function startSpa() {
  return new Promise((resolve, reject) => {
    const child = spawn(spaBin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no URL from ${spaBin}: ${out}`)), GUARD_MS);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${spaBin} exited with ${code}: ${out}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /open (http:\/\/127\.0\.0\.1:\d+\/) in a browser/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1], banner: out });
      }
    });
  });
}

/** Loads the page and waits for its results. */
async function runPage(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.dpopResults?.done === true, null, { timeout: GUARD_MS });
  return page.evaluate(() => window.dpopResults);
}

/** The checks of one run of the page, from its raw results (not the page's own verdicts). */
function checkResults(r, { firstLoad }) {
  assert.equal(r.error, null, `the page threw: ${r.error}`);
  const s = r.steps;
  assert.deepEqual(r.order, ['key', 'token', 'get', 'post', 'replay', 'stolen', 'newest-nonce']);
  const apiOrigin = new URL(r.api).origin;
  check('the API is on another origin than the page', () => assert.notEqual(apiOrigin, r.app));

  check('key: ES256, not extractable, export refused', () => {
    assert.equal(s.key.extractable, false);
    assert.equal(s.key.exportRefused, 'InvalidAccessError');
    assert.match(s.key.jkt, /^[A-Za-z0-9_-]{43}$/);
  });
  check(firstLoad ? 'key: made and stored in IndexedDB' : 'key: reused from IndexedDB', () =>
    assert.equal(s.key.created, firstLoad),
  );

  check('token: 200, token_type DPoP, cnf.jkt = the key thumbprint', () => {
    assert.equal(s.token.attempts[0].status, 200);
    assert.equal(s.token.tokenType, 'DPoP');
    assert.equal(s.token.boundTo, s.key.jkt);
  });

  const [challenged, accepted] = s.get.attempts;
  check('GET: 401 use_dpop_nonce with a readable challenge and DPoP-Nonce', () => {
    assert.equal(s.get.attempts.length, 2);
    assert.equal(challenged.status, 401);
    assert.equal(challenged.nonceSent, null);
    assert.match(challenged.challenge, /^DPoP /);
    assert.equal(challenged.error, 'use_dpop_nonce');
    assert.match(challenged.challenge, /algs="[^"]*ES256/);
    assert.ok(challenged.nonceReceived, 'DPoP-Nonce is exposed to the page');
  });
  check('GET: the retry carries that nonce and gets 200 for the key', () => {
    assert.equal(accepted.status, 200);
    assert.equal(accepted.nonceSent, challenged.nonceReceived);
    assert.equal(accepted.challenge, null);
    assert.equal(accepted.body.jkt, s.key.jkt);
    assert.equal(accepted.body.sub, 'alice');
  });

  check('POST: 200 at once with the kept nonce, JSON body echoed', () => {
    assert.equal(s.post.attempts.length, 1);
    const [post] = s.post.attempts;
    assert.equal(post.status, 200);
    assert.equal(post.nonceSent, challenged.nonceReceived);
    assert.equal(post.body.note, 'hello from the page');
  });

  check('replayed proof: 401 invalid_dpop_proof, with a new nonce', () => {
    const [replay] = s.replay.attempts;
    assert.equal(s.replay.attempts.length, 1);
    assert.equal(replay.status, 401);
    assert.equal(replay.error, 'invalid_dpop_proof');
    assert.match(replay.description, /already used/);
    assert.ok(replay.nonceReceived);
    assert.notEqual(replay.nonceReceived, challenged.nonceReceived);
  });

  check('stolen token with another key: 401 invalid_token (binding)', () => {
    const last = s.stolen.attempts.at(-1);
    assert.equal(s.stolen.attempts.length, 1, 'refused for the key, not for a nonce');
    assert.equal(last.status, 401);
    assert.equal(last.error, 'invalid_token');
    assert.match(last.description, /binding/i);
  });

  check('newest nonce: the one from the latest response is used and accepted', () => {
    const [again] = s['newest-nonce'].attempts;
    assert.equal(s['newest-nonce'].attempts.length, 1);
    assert.equal(again.status, 200);
    assert.equal(again.nonceSent, s.replay.attempts[0].nonceReceived);
    assert.notEqual(again.nonceSent, challenged.nonceReceived);
  });

  check("the page's own verdicts agree", () => {
    for (const id of r.order) assert.equal(s[id].ok, true, `step ${id}`);
    assert.equal(r.ok, true);
  });
}

const { child, url, banner } = await startSpa();
process.stdout.write(banner);
const profile = mkdtempSync(path.join(tmpdir(), 'spa-chromium-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());

  // Everything the page loads or calls, preflights included (from the DevTools protocol:
  // Chromium sends preflights itself, outside the page's requests).
  const requested = [];
  const pageErrors = [];
  page.on('request', (req) => requested.push(req.url()));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (msg) => {
    // Chromium logs every 4xx answer; the page expects its 401s. CSP refusals and script
    // errors are kept.
    if (msg.type() === 'error' && !/^Failed to load resource: .* 401 /.test(msg.text())) {
      pageErrors.push(msg.text());
    }
  });
  const preflights = new Map();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.requestWillBeSent', (e) => {
    if (e.request.method === 'OPTIONS') preflights.set(e.requestId, { request: e.request, response: null });
  });
  cdp.on('Network.responseReceived', (e) => {
    const p = preflights.get(e.requestId);
    if (p) p.response = e.response;
  });

  console.log(`first load of ${url}`);
  const first = await runPage(page, url);
  checkResults(first, { firstLoad: true });

  check('nothing was loaded from outside 127.0.0.1', () => {
    assert.ok(requested.length > 0);
    for (const u of requested) assert.match(u, /^http:\/\/127\.0\.0\.1:\d+\//, u);
  });
  check('no script errors or refused loads on the page', () => assert.deepEqual(pageErrors, []));
  check('CORS preflights: no credentials, ask for authorization and dpop, answered for the page origin', () => {
    const seen = [...preflights.values()];
    assert.ok(seen.length >= 2, 'Chromium preflighted the GET and the POST');
    const lower = (headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const { request, response } of seen) {
      const asked = lower(request.headers);
      assert.equal(asked.authorization, undefined, 'a preflight carries no Authorization');
      assert.equal(asked.dpop, undefined, 'a preflight carries no DPoP');
      assert.equal(asked.origin, first.app);
      const names = (asked['access-control-request-headers'] ?? '').split(',').map((h) => h.trim());
      assert.ok(names.includes('authorization') && names.includes('dpop'), names.join(','));
      assert.ok(response, `an answer to the preflight of ${request.url}`);
      assert.equal(response.status, 200, 'answered by CORS, not refused by DPoP');
      const answer = lower(response.headers);
      assert.equal(answer['www-authenticate'], undefined, 'no DPoP challenge on a preflight');
      assert.equal(answer['access-control-allow-origin'], first.app);
      const allowed = answer['access-control-allow-headers'].split(',').map((h) => h.trim());
      for (const h of names) assert.ok(allowed.includes(h), `${h} allowed`);
    }
    const methods = seen.map(({ request }) => lower(request.headers)['access-control-request-method']);
    assert.ok(methods.includes('GET') && methods.includes('POST'), methods.join(','));
  });

  mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot saved to ${path.relative(root, screenshot)}`);

  console.log('reload: the key comes back from IndexedDB');
  const second = await runPage(page, url);
  checkResults(second, { firstLoad: false });
  check('the reloaded page signs with the same key', () =>
    assert.equal(second.steps.key.jkt, first.steps.key.jkt),
  );
  check('no script errors after the reload', () => assert.deepEqual(pageErrors, []));

  console.log(`browser test: ${passed} checks passed`);
} finally {
  await context?.close();
  child.removeAllListeners('exit');
  child.kill('SIGTERM');
  rmSync(profile, { recursive: true, force: true });
}
