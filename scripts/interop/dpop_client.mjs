// Interop check: the example server against an independent DPoP client library (npm `dpop`,
// panva) and tokens minted by npm `jose`, as a new user would try it.
//
//   cargo build --release --example resource_server
//   mkdir /tmp/x && cd /tmp/x && npm install dpop@2.1.2 jose@5.10.0 && cp /path/to/scripts/interop/dpop_client.mjs . \
//     && node dpop_client.mjs /path/to/target/release/examples/resource_server
// (the script resolves `dpop` and `jose` from its own directory, hence the copy)
//
// Starts a JWKS server and two resource servers (DPOP_NONCE=required, one shared
// DPOP_NONCE_SECRET) on 127.0.0.1, runs the checks, stops everything, and exits non-zero on any
// unexpected answer.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as DPoP from 'dpop';
import { generateKeyPair, exportJWK, SignJWT, calculateJwkThumbprint } from 'jose';

const bin = process.argv[2];
if (!bin) { console.error('usage: dpop_client.mjs <resource_server binary>'); process.exit(2); }

const as = await generateKeyPair('RS256');
const asJwk = { ...(await exportJWK(as.publicKey)), kid: 'as-1', alg: 'RS256', use: 'sig' };
const jwksServer = createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [asJwk] })); });
await new Promise((r) => jwksServer.listen(0, '127.0.0.1', r));
const jwksUrl = `http://127.0.0.1:${jwksServer.address().port}/jwks`;
const secret = randomBytes(32).toString('base64url');

function startServer(extra = { DPOP_NONCE: 'required', DPOP_NONCE_SECRET: secret }) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env: { ...process.env, DPOP_LISTEN: '127.0.0.1:0', DPOP_JWKS_URL: jwksUrl, DPOP_ISSUER: 'https://as.example', DPOP_AUDIENCE: 'https://api.example', RUST_LOG: 'warn', ...extra }, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d) => { const m = /listening on (http:\/\/\S+)/.exec(String(d)); if (m) resolve({ child, base: m[1] }); });
    child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}
const [a, b] = [await startServer(), await startServer()];
const c = await startServer({ DPOP_ALLOW_BEARER: '1' });

async function token(jkt, cnf = true, { aud = 'https://api.example', exp = true, confirmation } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'interop-user', client_id: 'interop', ...(cnf ? { cnf: confirmation ?? { jkt } } : {}) };
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'as-1', typ: 'at+jwt' })
    .setIssuer('https://as.example').setAudience(aud).setIssuedAt(now);
  if (exp) jwt = jwt.setExpirationTime(now + 600);
  return jwt.sign(as.privateKey);
}

let failures = 0, checks = 0;
function expect(name, res, status, code) {
  checks++;
  const www = res.headers.get('www-authenticate') || '';
  const ok = res.status === status && (code === undefined || www.includes(`error="${code}"`));
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${res.status} ${www}`);
}
const call = (base, path, tok, proof, scheme = 'DPoP', method = 'GET') => fetch(`${base}${path}`, { method, headers: { authorization: `${scheme} ${tok}`, ...(proof ? { dpop: proof } : {}) } });

try {
for (const alg of ['ES256', 'Ed25519', 'PS256', 'RS256']) {
  const keys = await DPoP.generateKeyPair(alg);
  const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
  const tok = await token(jkt);
  const url = `${a.base}/api/me`;
  // 1. No nonce: challenge with a DPoP-Nonce.
  const r1 = await call(a.base, '/api/me', tok, await DPoP.generateProof(keys, url, 'GET', undefined, tok));
  expect(`${alg} no nonce -> use_dpop_nonce`, r1, 401, 'use_dpop_nonce');
  const nonce = r1.headers.get('dpop-nonce');
  // 2. Retry with it.
  const proof = await DPoP.generateProof(keys, url, 'GET', nonce, tok);
  const r2 = await call(a.base, '/api/me', tok, proof);
  expect(`${alg} retry with nonce -> 200`, r2, 200);
  if (r2.status === 200) { const body = await r2.json(); if (body.jkt !== jkt) { failures++; console.log(`FAIL ${alg} jkt ${body.jkt} != ${jkt}`); } }
  // 3. Replay.
  expect(`${alg} replay -> invalid_dpop_proof`, await call(a.base, '/api/me', tok, proof), 401, 'invalid_dpop_proof');
  // 4. The other instance accepts the first one's nonce (shared secret).
  const pb = await DPoP.generateProof(keys, `${b.base}/api/me`, 'GET', nonce, tok);
  expect(`${alg} nonce from instance A at instance B -> 200`, await call(b.base, '/api/me', tok, pb), 200);
  // 5. Hostile: wrong URL, wrong method, stolen token, Bearer downgrade, unbound token.
  expect(`${alg} proof for another URL`, await call(a.base, '/api/me', tok, await DPoP.generateProof(keys, `${a.base}/api/other`, 'GET', nonce, tok)), 401, 'invalid_dpop_proof');
  expect(`${alg} proof for POST sent with GET`, await call(a.base, '/api/me', tok, await DPoP.generateProof(keys, url, 'POST', nonce, tok)), 401, 'invalid_dpop_proof');
  const thief = await DPoP.generateKeyPair(alg);
  expect(`${alg} stolen token, thief's key`, await call(a.base, '/api/me', tok, await DPoP.generateProof(thief, url, 'GET', nonce, tok)), 401, 'invalid_token');
  expect(`${alg} token as Bearer`, await call(a.base, '/api/me', tok, undefined, 'Bearer'), 401);
  const unbound = await token(jkt, false);
  expect(`${alg} unbound token under DPoP`, await call(a.base, '/api/me', unbound, await DPoP.generateProof(keys, url, 'GET', nonce, unbound)), 401, 'invalid_token');
  // 6. POST echo.
  const pe = await DPoP.generateProof(keys, `${a.base}/api/echo`, 'POST', nonce, tok);
  const re = await fetch(`${a.base}/api/echo`, { method: 'POST', headers: { authorization: `DPoP ${tok}`, dpop: pe, 'content-type': 'text/plain' }, body: 'hello' });
  expect(`${alg} POST /api/echo`, re, 200);
}

// Bearer and DPoP clients against one server (DPOP_ALLOW_BEARER=1), and the RFC 9728 document.
{
  const keys = await DPoP.generateKeyPair('ES256');
  const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
  const bound = await token(jkt);
  const legacy = await token(jkt, false);
  const me = await call(c.base, '/api/me', legacy, undefined, 'Bearer');
  expect('bearer mode: unbound token as Bearer -> 200', me, 200);
  expect('bearer mode: bound token as Bearer -> 401', await call(c.base, '/api/me', bound, undefined, 'Bearer'), 401, 'invalid_token');
  expect('bearer mode: bound token with DPoP -> 200', await call(c.base, '/api/me', bound, await DPoP.generateProof(keys, `${c.base}/api/me`, 'GET', undefined, bound)), 200);
  expect('bearer mode: unbound token under DPoP -> 401', await call(c.base, '/api/me', legacy, await DPoP.generateProof(keys, `${c.base}/api/me`, 'GET', undefined, legacy)), 401, 'invalid_token');
  // Safe defaults: no exp, another audience, a token bound by mutual TLS (cnf.x5t#S256) as Bearer.
  const proofFor = (t) => DPoP.generateProof(keys, `${c.base}/api/me`, 'GET', undefined, t);
  const noExp = await token(jkt, true, { exp: false });
  expect('defaults: token without exp -> 401', await call(c.base, '/api/me', noExp, await proofFor(noExp)), 401, 'invalid_token');
  const otherAud = await token(jkt, true, { aud: 'https://other-api.example' });
  expect('defaults: token for another audience -> 401', await call(c.base, '/api/me', otherAud, await proofFor(otherAud)), 401, 'invalid_token');
  const mtls = await token(jkt, true, { confirmation: { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' } });
  expect('defaults: mTLS-bound token as Bearer -> 401', await call(c.base, '/api/me', mtls, undefined, 'Bearer'), 401, 'invalid_token');
  for (const [srv, required] of [[a, true], [c, false]]) {
    const doc = await (await fetch(`${srv.base}/.well-known/oauth-protected-resource`)).json();
    const challenge = (await fetch(`${srv.base}/api/me`)).headers.get('www-authenticate');
    const algs = /algs="([^"]*)"/.exec(challenge)[1];
    checks++;
    const ok = doc.resource === srv.base && doc.dpop_bound_access_tokens_required === required
      && doc.dpop_signing_alg_values_supported.join(' ') === algs && doc.authorization_servers[0] === 'https://as.example';
    if (!ok) failures++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} metadata (${required ? 'DPoP only' : 'Bearer allowed'}): ${JSON.stringify(doc)}`);
  }
}
} finally {
  for (const s of [a, b, c]) s.child.kill('SIGTERM');
  jwksServer.close();
}
console.log(`interop: ${checks - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
