// Writes idp.json: access tokens shaped as each identity provider documents them, signed with
// panva's jose (an implementation independent of tower-dpop), with each issuer's public JWKS
// and one DPoP client key the tokens are bound to.
//
//   npm install --prefix /tmp/idp-jose jose@5.10.0
//   NODE_PATH=/tmp/idp-jose/node_modules node tests/vectors/idp/gen_idp.mjs > tests/vectors/idp/idp.json
//
// Keys are random on every run; the committed JSON comes from one run. See ../README.md.
import { createRequire } from 'node:module';
import { randomBytes, randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const jose = require(require.resolve('jose', { paths: (process.env.NODE_PATH || '').split(':') }));

const NOW = 1764000000;
const EXP = NOW + 3600;
const API = 'https://api.example.com';
const rand = (n) => randomBytes(n).toString('base64url');

async function issuerKey(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await jose.exportJWK(publicKey);
  return { alg, kid, privateKey, public: { ...jwk, kid, use: 'sig', alg } };
}

const sign = (key, header, claims) =>
  new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(key.privateKey);

// The DPoP client key every bound token is bound to.
const client = await jose.generateKeyPair('ES256', { extractable: true });
const clientPrivate = await jose.exportJWK(client.privateKey);
const clientPublic = await jose.exportJWK(client.publicKey);
const jkt = await jose.calculateJwkThumbprint(clientPublic, 'sha256');
const cnf = { jkt };

const issuers = {
  okta: { issuer: 'https://dev-123456.okta.com/oauth2/default', key: await issuerKey('RS256', 'okta-custom-as-key') },
  okta_org: { issuer: 'https://dev-123456.okta.com', key: await issuerKey('RS256', 'okta-org-as-key') },
  auth0: { issuer: 'https://example-tenant.us.auth0.com/', key: await issuerKey('RS256', 'auth0-key-1') },
  keycloak: { issuer: 'https://keycloak.example.com/realms/api', key: await issuerKey('RS256', 'keycloak-rs256') },
  pingfederate: { issuer: 'https://pingfederate.example.com', key: await issuerKey('PS256', 'pf-atm-key') },
  entra: {
    issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
    key: await issuerKey('RS256', 'entra-key-1'),
  },
};

const header = (iss, extra = {}) => ({ alg: issuers[iss].key.alg, kid: issuers[iss].key.kid, ...extra });

const shapes = [
  {
    name: 'okta_custom_as', issuer: 'okta',
    header: header('okta'),
    claims: {
      ver: 1, jti: `AT.${rand(32)}`, iss: issuers.okta.issuer, aud: 'api://default',
      iat: NOW, exp: EXP, cid: '0oa8f5j3ecb5w3dF35d7', uid: '00u1a2b3c4d5e6f7g8h9',
      scp: ['openid', 'profile', 'orders:read'], auth_time: NOW - 60, sub: 'alice@example.com', cnf,
    },
  },
  {
    name: 'okta_org_as', issuer: 'okta_org',
    header: header('okta_org', { typ: 'application/okta-internal-at+jwt' }),
    claims: {
      ver: 1, jti: `AT.${rand(32)}`, iss: issuers.okta_org.issuer, aud: issuers.okta_org.issuer,
      iat: NOW, exp: EXP, cid: '0oa8f5j3ecb5w3dF35d7', uid: '00u1a2b3c4d5e6f7g8h9',
      scp: ['okta.users.read'], sub: 'alice@example.com', cnf,
    },
  },
  {
    name: 'auth0_default', issuer: 'auth0',
    header: header('auth0', { typ: 'JWT' }),
    claims: {
      iss: issuers.auth0.issuer, sub: 'auth0|5f7c8ec7c33c6c004bbafe82',
      aud: [API, `${issuers.auth0.issuer}userinfo`], iat: NOW, exp: EXP,
      scope: 'openid profile read:orders', azp: 'Hk3Y2mB8q9ZtLQwX4nPv7sRdA1cE6uJo', cnf,
    },
  },
  {
    name: 'auth0_rfc9068', issuer: 'auth0',
    header: header('auth0', { typ: 'at+jwt' }),
    claims: {
      iss: issuers.auth0.issuer, sub: 'auth0|5f7c8ec7c33c6c004bbafe82', aud: API,
      iat: NOW, exp: EXP, scope: 'read:orders', jti: rand(16),
      client_id: 'Hk3Y2mB8q9ZtLQwX4nPv7sRdA1cE6uJo', cnf,
    },
  },
  {
    name: 'keycloak_default', issuer: 'keycloak',
    header: header('keycloak', { typ: 'JWT' }),
    claims: {
      exp: EXP, iat: NOW, auth_time: NOW - 30, jti: randomUUID(), iss: issuers.keycloak.issuer,
      aud: 'account', sub: randomUUID(), typ: 'DPoP', azp: 'orders-app', sid: randomUUID(),
      acr: '1', 'allowed-origins': ['https://app.example.com'],
      realm_access: { roles: ['offline_access', 'uma_authorization'] },
      resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
      scope: 'openid profile email', email_verified: true, preferred_username: 'alice', cnf,
    },
  },
  {
    name: 'keycloak_audience_mapper', issuer: 'keycloak',
    header: header('keycloak', { typ: 'JWT' }),
    claims: {
      exp: EXP, iat: NOW, jti: randomUUID(), iss: issuers.keycloak.issuer,
      aud: [API, 'account'], sub: randomUUID(), typ: 'DPoP', azp: 'orders-app', sid: randomUUID(),
      scope: 'openid orders:read', preferred_username: 'alice', cnf,
    },
  },
  {
    name: 'pingfederate_jwt', issuer: 'pingfederate',
    header: header('pingfederate'),
    claims: {
      scope: ['orders:read', 'orders:write'], client_id: 'orders-app', iss: issuers.pingfederate.issuer,
      aud: API, jti: rand(16), iat: NOW, exp: EXP, username: 'alice', cnf,
    },
  },
  {
    name: 'entra_v2', issuer: 'entra',
    header: header('entra', { typ: 'JWT' }),
    claims: {
      aud: 'api://6e74172b-be56-4843-9ff4-e66a39bb12e3', iss: issuers.entra.issuer,
      iat: NOW, nbf: NOW, exp: EXP, aio: rand(40), azp: '9b1c6e4f-6f2d-4e47-8a8b-2f1c0d3e5a7b', azpacr: '0',
      name: 'Alice', oid: randomUUID(), preferred_username: 'alice@contoso.com', rh: rand(20),
      scp: 'Orders.Read Orders.Write', sub: rand(32), tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      uti: rand(16), ver: '2.0',
    },
  },
];

const tokens = [];
for (const s of shapes) {
  tokens.push({ ...s, token: await sign(issuers[s.issuer].key, s.header, s.claims) });
}
// A token that claims Auth0 but is signed with Keycloak's key: under Keycloak's kid, and under
// Auth0's kid (a kid that names a key of the claimed issuer, and a signature it does not verify).
const forgedClaims = { ...shapes[3].claims };
tokens.push({
  name: 'auth0_claimed_signed_by_keycloak', issuer: 'auth0',
  header: { alg: 'RS256', kid: issuers.keycloak.key.kid, typ: 'at+jwt' },
  claims: forgedClaims,
  token: await sign(issuers.keycloak.key, { alg: 'RS256', kid: issuers.keycloak.key.kid, typ: 'at+jwt' }, forgedClaims),
});
tokens.push({
  name: 'auth0_claimed_signed_by_keycloak_with_auth0_kid', issuer: 'auth0',
  header: { alg: 'RS256', kid: issuers.auth0.key.kid, typ: 'at+jwt' },
  claims: forgedClaims,
  token: await sign(issuers.keycloak.key, { alg: 'RS256', kid: issuers.auth0.key.kid, typ: 'at+jwt' }, forgedClaims),
});

// Self-check with jose before writing: each token verifies with the JWKS of the issuer whose
// key signed it, and the forged ones do not verify with the claimed issuer's set.
for (const t of tokens) {
  const set = jose.createLocalJWKSet({ keys: [issuers[t.issuer].key.public] });
  const ok = await jose.compactVerify(t.token, set).then(() => true, () => false);
  if (ok !== !t.name.includes('signed_by')) {
    console.error(`self-check failed for ${t.name}`);
    process.exit(1);
  }
}

const out = {
  generator: 'node jose 5.10.0',
  now: NOW,
  audience: API,
  client: { private_jwk: clientPrivate, public_jwk: clientPublic, jkt },
  issuers: Object.fromEntries(Object.entries(issuers).map(([name, i]) => [
    name, { issuer: i.issuer, jwks: { keys: [i.key.public] } },
  ])),
  tokens: tokens.map(({ name, issuer, header, claims, token }) => ({ name, issuer, header, claims, token })),
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
