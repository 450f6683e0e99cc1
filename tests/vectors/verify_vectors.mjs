// Re-checks independent.json and rfc9449.json with panva's `jose` (the same
// library that made them), independently of tower-dpop:
//   - every DPoP proof verifies with the jwk embedded in its header, at `now`
//     (or at the RFC's iat), has typ dpop+jwt and the case's alg, carries only
//     public key members, and its htm/htu/iat/ath/jti/nonce claims match the case;
//   - every access token verifies against as_jwks (RS256, typ at+jwt,
//     kid as-key-1, iss, aud, iat=now, exp=now+3600) and its cnf.jkt is the
//     case's jkt;
//   - jkt is the RFC 7638 SHA-256 thumbprint of client_public_jwk and
//     ath is base64url(sha256(access_token)).
// Ed25519-family proofs are also checked with node:crypto directly.
//
// Run from a directory where `jose` is installed (see README.md):
//   cd /tmp/fixgen && node /work/main/tests/vectors/verify_vectors.mjs
import { createRequire } from 'node:module';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const require = createRequire(process.cwd() + '/');
const jose = require('jose');
const JOSE_VERSION = require('jose/package.json').version;

const dir = new URL('.', import.meta.url);
const load = (f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8'));
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const sha256b64u = (s) => b64u(createHash('sha256').update(s, 'ascii').digest());
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

let passed = 0;
let failed = 0;
function check(label, cond, detail = '') {
  if (cond) passed++;
  else { failed++; console.error(`FAIL ${label}${detail ? `: ${detail}` : ''}`); }
}
async function attempt(label, fn) {
  try { return await fn(); } catch (e) { check(label, false, `${e.code || e.name}: ${e.message}`); return null; }
}

// ---- independent.json ----
const ind = load('independent.json');
console.log(`independent.json: generator "${ind.generator}", verifying with jose ${JOSE_VERSION}`);
const now = ind.now;
check('now', now === 1764000000);
const currentDate = new Date(now * 1000);
const asKey = ind.as_jwks.keys[0];
check('as_jwks single key', ind.as_jwks.keys.length === 1);
check('as key members', asKey.kid === 'as-key-1' && asKey.alg === 'RS256' && asKey.use === 'sig' && asKey.kty === 'RSA');
check('as key public only', PRIVATE_MEMBERS.every((m) => !(m in asKey)));
const JWKS = jose.createLocalJWKSet(ind.as_jwks);
const names = new Set();
const keyByAlg = new Map();

for (const c of ind.cases) {
  const L = c.name;
  check(`${L}: unique name`, !names.has(L));
  names.add(L);

  // Client key and thumbprint.
  check(`${L}: client jwk public only`, PRIVATE_MEMBERS.every((m) => !(m in c.client_public_jwk)));
  const jkt = await jose.calculateJwkThumbprint(c.client_public_jwk, 'sha256');
  check(`${L}: jkt`, jkt === c.jkt, `${jkt} != ${c.jkt}`);
  if (keyByAlg.has(c.alg)) check(`${L}: one key per alg`, keyByAlg.get(c.alg) === c.jkt);
  else keyByAlg.set(c.alg, c.jkt);

  // Access token.
  check(`${L}: ath`, sha256b64u(c.access_token) === c.ath);
  const at = await attempt(`${L}: access token verifies`, () => jose.jwtVerify(c.access_token, JWKS, {
    issuer: ind.issuer, audience: ind.audience, typ: 'at+jwt', algorithms: ['RS256'], currentDate,
  }));
  if (at) {
    check(`${L}: at header`, at.protectedHeader.alg === 'RS256' && at.protectedHeader.kid === 'as-key-1');
    const p = at.payload;
    check(`${L}: at claims`, p.iat === now && p.exp === now + 3600 && p.scope === 'read'
      && typeof p.sub === 'string' && typeof p.client_id === 'string' && typeof p.jti === 'string'
      && p.iss === ind.issuer && p.aud === ind.audience, JSON.stringify(p));
    check(`${L}: at cnf.jkt`, p.cnf?.jkt === c.jkt);
  }

  // Proof.
  const pr = await attempt(`${L}: proof verifies with embedded jwk`, () => jose.jwtVerify(c.proof, jose.EmbeddedJWK, {
    typ: 'dpop+jwt', algorithms: [c.alg], currentDate,
  }));
  if (pr) {
    const h = pr.protectedHeader;
    check(`${L}: proof header`, h.alg === c.alg && h.typ === 'dpop+jwt' && isDeepStrictEqual(h.jwk, c.client_public_jwk)
      && Object.keys(h).sort().join() === 'alg,jwk,typ', JSON.stringify(h));
    const p = pr.payload;
    check(`${L}: htm`, p.htm === c.method);
    check(`${L}: htu`, p.htu === c.url);
    check(`${L}: iat`, p.iat === now);
    check(`${L}: proof ath`, p.ath === c.ath);
    check(`${L}: jti >= 96 bits`, typeof p.jti === 'string' && /^[A-Za-z0-9_-]+$/.test(p.jti) && Buffer.from(p.jti, 'base64url').length >= 12);
    check(`${L}: nonce`, p.nonce === c.nonce, `${p.nonce} vs ${c.nonce}`);
    const expectedKeys = ['ath', 'htm', 'htu', 'iat', 'jti', ...(c.nonce !== undefined ? ['nonce'] : [])].sort().join();
    check(`${L}: proof claim set`, Object.keys(p).sort().join() === expectedKeys, Object.keys(p).join());
  }
  if (c.alg === 'EdDSA' || c.alg === 'Ed25519') {
    const [h, pl, s] = c.proof.split('.');
    const ok = nodeVerify(null, Buffer.from(`${h}.${pl}`, 'ascii'), createPublicKey({ key: c.client_public_jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
    check(`${L}: node:crypto Ed25519 verify`, ok);
    check(`${L}: crv Ed25519`, c.client_public_jwk.kty === 'OKP' && c.client_public_jwk.crv === 'Ed25519');
  }

  // request_url: same as url, or url plus a query that htu leaves out.
  const ru = new URL(c.request_url);
  check(`${L}: request_url vs htu`, `${ru.origin}${ru.pathname}` === c.url);
  check(`${L}: method`, ['GET', 'POST'].includes(c.method));
}
const expectedNames = ['es256-get', 'es256-post', 'es256-nonce', 'es256-query', 'es384-get', 'es512-get', 'ps256-get', 'rs256-get', 'eddsa-ed25519-get', 'ed25519-get'];
check('case names', isDeepStrictEqual([...names], expectedNames), [...names].join());

// ---- rfc9449.json ----
const rfc = load('rfc9449.json');
for (const p of rfc.proofs) {
  const L = `rfc9449 ${p.name}`;
  const r = await attempt(`${L}: verifies`, () => jose.jwtVerify(p.proof, jose.EmbeddedJWK, {
    typ: 'dpop+jwt', algorithms: ['ES256'], currentDate: new Date(p.iat * 1000),
  }));
  check(`${L}: signature_valid recorded as found`, p.signature_valid === (r !== null));
  if (r) {
    check(`${L}: claims`, r.payload.htm === p.method && r.payload.htu === p.htu && r.payload.iat === p.iat && (r.payload.ath ?? null) === p.ath);
    check(`${L}: jkt`, (await jose.calculateJwkThumbprint(r.protectedHeader.jwk, 'sha256')) === p.jkt);
  }
  check(`${L}: jkt is the RFC's`, p.jkt === '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
  if (p.access_token !== null) check(`${L}: ath = sha256(access_token)`, sha256b64u(p.access_token) === p.ath);
}
check('rfc7638 thumbprint', (await jose.calculateJwkThumbprint(rfc.rfc7638.jwk, 'sha256')) === rfc.rfc7638.thumbprint
  && rfc.rfc7638.thumbprint === 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');

console.log(`vectors: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
