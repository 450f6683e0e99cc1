// The page's steps: a key, a token bound to it, GET and POST on the API across origins with the
// nonce round trip, a replayed proof, a stolen token, and a call with the newest nonce kept.
// Each step is shown on the page (`#step-<id>`, with `data-ok`) and kept, with every attempt's
// status, challenge and nonces, in `window.dpopResults` (no tokens or proofs in it).

import { DpopClient, ProofKey, generateKeyPair, jwtClaims, storedKeyPair } from './dpop.js';

const results = { done: false, ok: false, error: null, app: location.origin, api: null, order: [], steps: {} };
window.dpopResults = results;

/** A nonce, shortened for display: its end (the start is the same for nonces of one second). */
function short(value) {
  return value ? `…${value.slice(-10)}` : '—';
}

/** What of an attempt goes into the results: no proof, no token. */
function publicAttempt({ proof, ...attempt }) {
  return attempt;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(step) {
  const section = document.createElement('section');
  section.id = `step-${step.id}`;
  section.className = `step ${step.ok ? 'ok' : 'failed'}`;
  section.dataset.ok = String(step.ok);
  const heading = document.createElement('h2');
  heading.textContent = `${step.ok ? '✔' : '✘'} ${step.title}`;
  const expected = document.createElement('p');
  expected.className = 'expected';
  expected.textContent = `Expected: ${step.expected}`;
  section.append(heading, expected);
  for (const [name, value] of Object.entries(step.detail)) {
    const p = document.createElement('p');
    p.className = 'detail';
    p.dataset.name = name;
    p.textContent = `${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
    section.append(p);
  }
  if (step.attempts.length > 0) {
    const table = document.createElement('table');
    const head = table.createTHead().insertRow();
    for (const title of ['request', 'status', 'WWW-Authenticate', 'nonce sent', 'DPoP-Nonce received']) {
      const th = document.createElement('th');
      th.textContent = title;
      head.append(th);
    }
    const body = table.createTBody();
    step.attempts.forEach((a, i) => {
      const row = body.insertRow();
      row.id = `step-${step.id}-attempt-${i}`;
      cell(row, `${a.method} ${new URL(a.url).pathname}`);
      cell(row, String(a.status), a.status < 300 ? 'status good' : 'status refused').dataset.status = String(a.status);
      cell(row, a.challenge ?? '—', 'challenge');
      cell(row, a.proofReplayed ? '(replayed proof)' : short(a.nonceSent), 'nonce');
      cell(row, short(a.nonceReceived), 'nonce');
    });
    section.append(table);
  }
  document.getElementById('steps').append(section);
}

function record(id, title, expected, ok, detail, attempts = []) {
  const step = { id, title, expected, ok: Boolean(ok), detail, attempts: attempts.map(publicAttempt) };
  results.order.push(id);
  results.steps[id] = step;
  render(step);
  return step;
}

function statuses(attempts) {
  return attempts.map((a) => a.status).join(', ');
}

async function run() {
  const config = await (await fetch('/config.json', { cache: 'no-store' })).json();
  results.api = config.api;
  document.getElementById('origins').textContent =
    `page and authorization server: ${location.origin} · API: ${config.api}`;
  const tokenUrl = new URL(config.token_endpoint, location.origin).href;
  const meUrl = `${config.api}/api/me`;
  const echoUrl = `${config.api}/api/echo`;

  // 1. The key: non-extractable, stored in IndexedDB and read back from it.
  const { keyPair, created } = await storedKeyPair('dpop-es256');
  const key = await ProofKey.from(keyPair);
  let exportRefused = null;
  try {
    await crypto.subtle.exportKey('jwk', keyPair.privateKey);
  } catch (e) {
    exportRefused = e.name;
  }
  record(
    'key',
    'Non-extractable ES256 key in IndexedDB',
    'private key not extractable, export refused, key read back from IndexedDB',
    keyPair.privateKey.extractable === false && exportRefused !== null && keyPair.privateKey instanceof CryptoKey,
    {
      created: created ? 'made now and stored' : 'reused from IndexedDB',
      algorithm: `${keyPair.privateKey.algorithm.name} ${keyPair.privateKey.algorithm.namedCurve}`,
      extractable: keyPair.privateKey.extractable,
      exportRefused: exportRefused ?? 'no: the private key was exported',
      jkt: key.jkt,
    },
  );
  results.steps.key.created = created;
  results.steps.key.extractable = keyPair.privateKey.extractable;
  results.steps.key.exportRefused = exportRefused;
  results.steps.key.jkt = key.jkt;

  // 2. The token: a DPoP proof for the token endpoint; the token comes back bound to the key.
  const tokenProof = await key.proof('POST', tokenUrl);
  const tokenResponse = await fetch(tokenUrl, {
    method: 'POST',
    headers: { DPoP: tokenProof, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
    cache: 'no-store',
  });
  const tokenBody = await tokenResponse.json();
  const token = tokenBody.access_token;
  const boundTo = token ? jwtClaims(token).cnf?.jkt ?? null : null;
  const tokenStep = record(
    'token',
    'Access token bound to the key',
    '200, token_type DPoP, cnf.jkt = the key thumbprint',
    tokenResponse.status === 200 && tokenBody.token_type === 'DPoP' && boundTo === key.jkt,
    { token_type: tokenBody.token_type ?? tokenBody.error, 'cnf.jkt': boundTo ?? '—' },
    [{ method: 'POST', url: tokenUrl, status: tokenResponse.status, challenge: null, nonceSent: null, nonceReceived: null }],
  );
  tokenStep.tokenType = tokenBody.token_type ?? null;
  tokenStep.boundTo = boundTo;
  if (!token) throw new Error(`no token: ${JSON.stringify(tokenBody)}`);

  const client = new DpopClient(key);
  const api = new URL(config.api).origin;

  // 3. GET across origins: the first proof has no nonce, the API answers use_dpop_nonce with
  // one, and the retry carries it.
  const get = await client.request('GET', meUrl, { token });
  const firstNonce = get[0].nonceReceived;
  record(
    'get',
    'GET /api/me: nonce challenge, then retry',
    '401 use_dpop_nonce with a DPoP-Nonce, then 200 with that nonce',
    get.length === 2 &&
      get[0].status === 401 &&
      get[0].error === 'use_dpop_nonce' &&
      firstNonce !== null &&
      get[1].status === 200 &&
      get[1].nonceSent === firstNonce &&
      get[1].body?.jkt === key.jkt,
    { statuses: statuses(get), 'answer jkt': get.at(-1).body?.jkt ?? '—' },
    get,
  );

  // 4. POST with the nonce kept from the GET: accepted at once.
  const note = { note: 'hello from the page', at: new Date().toISOString() };
  const nonceBeforePost = client.nonceFor(api);
  const post = await client.request('POST', echoUrl, { token, body: note });
  record(
    'post',
    'POST /api/echo with the nonce kept',
    '200 on the first attempt, body echoed',
    post.length === 1 &&
      post[0].status === 200 &&
      post[0].nonceSent === nonceBeforePost &&
      JSON.stringify(post[0].body) === JSON.stringify(note),
    { statuses: statuses(post), echoed: post[0].body },
    post,
  );

  // 5. The GET's accepted proof sent again, unchanged: refused as a replay.
  const replayed = await client.send('GET', meUrl, { token, proof: get.at(-1).proof });
  replayed.proofReplayed = true;
  record(
    'replay',
    'Replayed proof',
    '401 invalid_dpop_proof (jti already used)',
    replayed.status === 401 && replayed.error === 'invalid_dpop_proof',
    { statuses: statuses([replayed]), reason: replayed.description ?? '—' },
    [replayed],
  );

  // 6. The token stolen by a page with another key (and the current nonce): refused, since the
  // token is bound to the first key.
  const attackerKey = await ProofKey.from(await generateKeyPair());
  const attacker = new DpopClient(attackerKey);
  attacker.keepNonce(api, client.nonceFor(api));
  const stolen = await attacker.request('GET', meUrl, { token });
  record(
    'stolen',
    'Stolen token with another key',
    '401 invalid_token (key binding)',
    stolen.at(-1).status === 401 && stolen.at(-1).error === 'invalid_token',
    { statuses: statuses(stolen), 'attacker jkt': attackerKey.jkt, reason: stolen.at(-1).description ?? '—' },
    stolen,
  );

  // 7. The newest nonce (from the replay's refusal) is the one used next, and accepted.
  const newest = client.nonceFor(api);
  const again = await client.request('GET', meUrl, { token });
  record(
    'newest-nonce',
    'GET /api/me with the newest DPoP-Nonce',
    '200 on the first attempt, with the nonce of the latest response',
    again.length === 1 &&
      again[0].status === 200 &&
      again[0].nonceSent === newest &&
      newest === replayed.nonceReceived &&
      newest !== firstNonce,
    { statuses: statuses(again) },
    again,
  );

  results.ok = results.order.every((id) => results.steps[id].ok);
}

function finish() {
  const summary = document.getElementById('summary');
  summary.textContent = results.error
    ? `Error: ${results.error}`
    : results.ok
      ? `All ${results.order.length} steps as expected.`
      : 'Some steps were not as expected.';
  summary.className = results.ok ? 'ok' : 'failed';
  document.getElementById('results-json').textContent = JSON.stringify(results, null, 2);
  results.done = true;
  document.body.dataset.done = 'true';
}

run()
  .catch((e) => {
    results.error = String(e?.stack ?? e);
    results.ok = false;
  })
  .finally(finish);
