// Writes tests/vectors/rfc9449.json: the DPoP proof examples of RFC 9449
// (figures 2 and 13) and the JWK thumbprint example of RFC 7638 section 3.1,
// copied from the RFCs. The `signature_valid` fields and the thumbprints are
// checked with panva's `jose` before anything is written; the script exits
// non-zero if a thumbprint, an `ath` or a decoded claim disagrees with the RFC.
//
// Run from a directory where `jose` is installed (see README.md):
//   cd /tmp/fixgen && node /work/main/tests/vectors/gen_rfc9449.mjs > /work/main/tests/vectors/rfc9449.json
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

const require = createRequire(process.cwd() + '/');
const jose = require('jose');

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const die = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1); };

// RFC 9449 figure 2 (DPoP proof for a token request).
const FIGURE2 = 'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg';
// RFC 9449 figure 13 (DPoP proof for a protected resource request).
const FIGURE13 = 'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA';

const proofs = [
  {
    name: 'figure2', proof: FIGURE2, method: 'POST', htu: 'https://server.example.com/token', iat: 1562262616,
    jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I', access_token: null, ath: null,
  },
  {
    name: 'figure13', proof: FIGURE13, method: 'GET', htu: 'https://resource.example.org/protectedresource', iat: 1562262618,
    jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I',
    access_token: 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU', ath: 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
  },
];

// RFC 7638 section 3.1 example JWK, with all its members as printed in the RFC.
const RFC7638_JWK = {
  kty: 'RSA',
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};
const RFC7638_THUMBPRINT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

const t7638 = await jose.calculateJwkThumbprint(RFC7638_JWK, 'sha256');
if (t7638 !== RFC7638_THUMBPRINT) die(`RFC 7638 thumbprint ${t7638} != ${RFC7638_THUMBPRINT}`);

const out = [];
for (const p of proofs) {
  const header = jose.decodeProtectedHeader(p.proof);
  const claims = jose.decodeJwt(p.proof);
  if (header.typ !== 'dpop+jwt' || header.alg !== 'ES256') die(`${p.name}: header ${JSON.stringify(header)}`);
  const jkt = await jose.calculateJwkThumbprint(header.jwk, 'sha256');
  if (jkt !== p.jkt) die(`${p.name}: jkt ${jkt} != ${p.jkt}`);
  if (claims.htm !== p.method || claims.htu !== p.htu || claims.iat !== p.iat) die(`${p.name}: claims ${JSON.stringify(claims)}`);
  if ((claims.ath ?? null) !== p.ath) die(`${p.name}: ath claim ${claims.ath} != ${p.ath}`);
  if (p.access_token !== null) {
    const ath = b64u(createHash('sha256').update(p.access_token, 'ascii').digest());
    if (ath !== p.ath) die(`${p.name}: sha256(access_token) ${ath} != ${p.ath}`);
  }
  let signature_valid;
  try {
    const r = await jose.compactVerify(p.proof, jose.EmbeddedJWK, { algorithms: ['ES256'] });
    signature_valid = true;
    if (!isDeepStrictEqual(JSON.parse(Buffer.from(r.payload).toString('utf8')), claims)) die(`${p.name}: payload mismatch`);
  } catch (e) {
    console.error(`${p.name}: signature did not verify: ${e.code || e.name}: ${e.message}`);
    signature_valid = false;
  }
  out.push({ ...p, signature_valid });
}

process.stdout.write(JSON.stringify({
  source: 'RFC 9449 figures 2 and 13; RFC 7638 section 3.1',
  proofs: out,
  rfc7638: { jwk: RFC7638_JWK, thumbprint: RFC7638_THUMBPRINT },
}, null, 2) + '\n');
