// Verifies the DPoP proofs in proofs.json, made by tower-dpop-client with the fixed keys of
// keys.json, with panva's `jose` (an implementation independent of this repository), and
// writes verdicts.json for the Rust test tests/vectors.rs. For each case it checks:
//   - the compact JWS verifies with the public jwk embedded in its header (EmbeddedJWK),
//     typ is dpop+jwt, alg is asymmetric, the jwk has no private members;
//   - htm, htu, nonce are the case's, iat is the file's, jti has at least 128 bits;
//   - ath is base64url(SHA-256(token)) when a token is given, absent otherwise;
// and records jose's RFC 7638 thumbprint of the embedded jwk and its own ath.
//
// Run from the directory where jose 5.10.0 is installed:
//   npm install --prefix /tmp/client-jose jose@5.10.0
//   cd /tmp/client-jose && node /path/to/client/tests/vectors/verify_proofs.mjs
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const require = createRequire(process.cwd() + '/');
const jose = require('jose');
const version = require('jose/package.json').version;

const dir = new URL('.', import.meta.url);
const { iat, cases } = JSON.parse(readFileSync(new URL('proofs.json', dir), 'utf8'));
const sha256b64u = (s) => createHash('sha256').update(s, 'ascii').digest('base64url');
const PRIVATE = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const ALGS = ['ES256', 'ES384', 'EdDSA', 'PS256', 'RS256'];

const check = (cond, what) => {
  if (!cond) throw new Error(what);
};

const verdicts = [];
for (const c of cases) {
  const verdict = { name: c.name, proof: c.proof };
  try {
    const { payload, protectedHeader } = await jose.compactVerify(c.proof, jose.EmbeddedJWK, {
      algorithms: ALGS,
    });
    const claims = JSON.parse(new TextDecoder().decode(payload));
    check(protectedHeader.typ === 'dpop+jwt', 'typ');
    check(ALGS.includes(protectedHeader.alg), 'alg');
    check(PRIVATE.every((m) => !(m in protectedHeader.jwk)), 'private jwk members');
    check(claims.htm === c.htm, 'htm');
    check(claims.htu === c.htu, 'htu');
    check(claims.iat === iat, 'iat');
    check(typeof claims.jti === 'string' && Buffer.from(claims.jti, 'base64url').length >= 16, 'jti');
    check(claims.nonce === c.nonce, 'nonce');
    if (c.token !== undefined) {
      verdict.ath = sha256b64u(c.token);
      check(claims.ath === verdict.ath, 'ath');
    } else {
      check(!('ath' in claims), 'ath without token');
    }
    verdict.ok = true;
    verdict.alg = protectedHeader.alg;
    verdict.jwk = protectedHeader.jwk;
    verdict.jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
    verdict.claims = claims;
  } catch (e) {
    verdict.ok = false;
    verdict.error = String(e.code ?? e.message);
  }
  verdicts.push(verdict);
}
writeFileSync(
  new URL('verdicts.json', dir),
  JSON.stringify({ verifier: `node jose ${version}`, verdicts }, null, 2) + '\n',
);
const ok = verdicts.filter((v) => v.ok).length;
console.log(`verify_proofs: ${ok} valid, ${verdicts.length - ok} invalid, jose ${version}`);
