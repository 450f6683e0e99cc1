// Generates tests/vectors/independent.json: DPoP proofs (RFC 9449) and
// DPoP-bound access tokens made by an independent JOSE implementation
// (panva's `jose` for Node.js), so tower-dpop is tested against proofs it
// did not sign itself.
//
// Run from a directory where `jose` is installed (see README.md):
//   mkdir -p /tmp/fixgen && cd /tmp/fixgen && npm init -y && npm install jose@5.10.0
//   node /work/main/tests/vectors/gen_independent.mjs > /work/main/tests/vectors/independent.json
//
// Keys are freshly generated on every run; the structure of the output is
// fixed. The committed independent.json is the output of one run.
import { createRequire } from 'node:module';
import { createHash, randomBytes, sign as nodeSign } from 'node:crypto';

// `jose` is resolved from the current working directory (where it was
// installed with npm), not from this file's location in the repository.
const require = createRequire(process.cwd() + '/');
const jose = require('jose');
const JOSE_VERSION = require('jose/package.json').version;

const NOW = 1764000000;
const ISSUER = 'https://as.example.com';
const AUDIENCE = 'https://rs.example.com';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const randomJti = () => b64u(randomBytes(16)); // 128 bits
const ath = (token) => b64u(createHash('sha256').update(token, 'ascii').digest());

const notes = [];

// Authorization server signing key (RS256, RSA 2048).
const asKeys = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const asPublicJwk = { ...(await jose.exportJWK(asKeys.publicKey)), kid: 'as-key-1', alg: 'RS256', use: 'sig' };

// One client key per proof algorithm.
const clientKeySpecs = {
  ES256: ['ES256', {}],
  ES384: ['ES384', {}],
  ES512: ['ES512', {}],
  PS256: ['PS256', { modulusLength: 2048 }],
  RS256: ['RS256', { modulusLength: 2048 }],
  EdDSA: ['EdDSA', { crv: 'Ed25519' }],
  Ed25519: ['EdDSA', { crv: 'Ed25519' }],
};
const clientKeys = {};
for (const [alg, [genAlg, opts]] of Object.entries(clientKeySpecs)) {
  const { publicKey, privateKey } = await jose.generateKeyPair(genAlg, { ...opts, extractable: true });
  const jwk = await jose.exportJWK(publicKey); // public members only
  const jkt = await jose.calculateJwkThumbprint(jwk, 'sha256');
  clientKeys[alg] = { publicKey, privateKey, jwk, jkt };
}

async function accessToken(clientId, jkt) {
  return new jose.SignJWT({ client_id: clientId, scope: 'read', cnf: { jkt } })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'as-key-1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject('user-123')
    .setIssuedAt(NOW)
    .setExpirationTime(NOW + 3600)
    .setJti(randomJti())
    .sign(asKeys.privateKey);
}

// Fallback for a library that refuses the fully-specified "Ed25519" alg
// name (RFC 9864): sign the JWS signing input with Node's crypto directly.
function signCompactByHand(header, payload, privateKey) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  const sig = nodeSign(null, Buffer.from(input, 'ascii'), privateKey);
  return `${input}.${b64u(sig)}`;
}

async function dpopProof({ alg, key, method, htu, accessTokenValue, nonce }) {
  const header = { typ: 'dpop+jwt', alg, jwk: key.jwk };
  const payload = { jti: randomJti(), htm: method, htu, iat: NOW, ath: ath(accessTokenValue) };
  if (nonce !== undefined) payload.nonce = nonce;
  try {
    return await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader(header)
      .sign(key.privateKey);
  } catch (e) {
    if (alg !== 'Ed25519') throw e;
    notes.push(`jose ${JOSE_VERSION} refused alg "Ed25519" (${e.code || e.name}: ${e.message}); signed by hand with node:crypto sign(null, ...)`);
    return signCompactByHand(header, payload, key.privateKey);
  }
}

const caseSpecs = [
  { name: 'es256-get', alg: 'ES256', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'es256-post', alg: 'ES256', method: 'POST', url: 'https://rs.example.com/api/echo' },
  { name: 'es256-nonce', alg: 'ES256', method: 'GET', url: 'https://rs.example.com/api/me', nonce: 'server-nonce-123' },
  { name: 'es256-query', alg: 'ES256', method: 'GET', url: 'https://rs.example.com/api/me', request_url: 'https://rs.example.com/api/me?x=1' },
  { name: 'es384-get', alg: 'ES384', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'es512-get', alg: 'ES512', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'ps256-get', alg: 'PS256', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'rs256-get', alg: 'RS256', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'eddsa-ed25519-get', alg: 'EdDSA', method: 'GET', url: 'https://rs.example.com/api/me' },
  { name: 'ed25519-get', alg: 'Ed25519', method: 'GET', url: 'https://rs.example.com/api/me' },
];

const cases = [];
for (const spec of caseSpecs) {
  const key = clientKeys[spec.alg];
  const clientId = `client-${spec.alg.toLowerCase()}`;
  const token = await accessToken(clientId, key.jkt);
  const proof = await dpopProof({
    alg: spec.alg, key, method: spec.method, htu: spec.url, accessTokenValue: token, nonce: spec.nonce,
  });
  const c = {
    name: spec.name,
    alg: spec.alg,
    client_public_jwk: key.jwk,
    jkt: key.jkt,
    access_token: token,
    ath: ath(token),
    method: spec.method,
    url: spec.url,
    request_url: spec.request_url ?? spec.url,
    proof,
  };
  if (spec.nonce !== undefined) c.nonce = spec.nonce;
  cases.push(c);
}

const out = {
  generator: `node jose ${JOSE_VERSION}`,
  now: NOW,
  issuer: ISSUER,
  audience: AUDIENCE,
  as_jwks: { keys: [asPublicJwk] },
  cases,
};
if (notes.length) out.notes = notes;
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
