// DPoP for a browser client, on WebCrypto alone (RFC 9449): a non-extractable ES256 key kept in
// IndexedDB, proofs signed with it, and requests that answer a `use_dpop_nonce` challenge by
// one retry and keep the newest `DPoP-Nonce` of each server.

const encoder = new TextEncoder();

/** base64url without padding, of bytes. */
export function base64url(bytes) {
  let binary = '';
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function base64urlJson(value) {
  return base64url(encoder.encode(JSON.stringify(value)));
}

/** Decodes the claims of a JWT (for display only: the page does not verify tokens). */
export function jwtClaims(jwt) {
  const part = jwt.split('.')[1] ?? '';
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
}

async function sha256(text) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

function randomId() {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

// ---------------------------------------------------------------------------------------------
// Keys: made non-extractable, stored as CryptoKey objects in IndexedDB (the structured clone
// keeps the key usable and still non-extractable; its private part never reaches script).

const DB_NAME = 'dpop-keys';
const STORE = 'keys';

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function inStore(mode, action) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = action(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** A new ES256 key pair whose private key script can use but never read. */
export function generateKeyPair() {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
}

/**
 * The key pair stored under `name`, made and stored first if there is none. Returns the pair
 * as read back from IndexedDB, and whether it was made now.
 */
export async function storedKeyPair(name) {
  let created = false;
  if (!(await inStore('readonly', (s) => s.get(name)))) {
    // Made before the write transaction opens: a transaction closes when it sits idle.
    const keyPair = await generateKeyPair();
    await inStore('readwrite', (s) => s.put(keyPair, name));
    created = true;
  }
  return { keyPair: await inStore('readonly', (s) => s.get(name)), created };
}

/** A proof key: the pair, its public JWK (members of RFC 7638 only) and its thumbprint. */
export class ProofKey {
  static async from(keyPair) {
    const full = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
    const jwk = { crv: full.crv, kty: full.kty, x: full.x, y: full.y };
    // RFC 7638: the required members in lexicographic order, no whitespace.
    const jkt = base64url(await sha256(JSON.stringify(jwk)));
    return new ProofKey(keyPair, jwk, jkt);
  }

  constructor(keyPair, jwk, jkt) {
    this.keyPair = keyPair;
    this.jwk = jwk;
    this.jkt = jkt;
  }

  /** A fresh proof for `htm` and `htu`, with `ath` for `accessToken` and `nonce` if given. */
  async proof(htm, htu, { accessToken, nonce } = {}) {
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: this.jwk };
    const claims = { jti: randomId(), htm, htu, iat: Math.floor(Date.now() / 1000) };
    if (accessToken) claims.ath = base64url(await sha256(accessToken));
    if (nonce) claims.nonce = nonce;
    const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
    // WebCrypto's ECDSA signature is r || s, the JWS form (RFC 7518 section 3.4).
    const signature = await crypto.subtle.sign(
      { name: 'ECDSA', hash: 'SHA-256' },
      this.keyPair.privateKey,
      encoder.encode(input),
    );
    return `${input}.${base64url(signature)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Requests.

/** The `error` parameter of a `DPoP` challenge, or null. */
export function challengeError(challenge) {
  const match = /(?:^|[\s,])error="([^"]*)"/.exec(challenge ?? '');
  return match ? match[1] : null;
}

/** The `error_description` parameter of a challenge, or null. */
export function challengeDescription(challenge) {
  const match = /error_description="([^"]*)"/.exec(challenge ?? '');
  return match ? match[1] : null;
}

/** A DPoP client for one key: the newest nonce of each origin, and requests with proofs. */
export class DpopClient {
  constructor(key) {
    this.key = key;
    this.nonces = new Map();
  }

  /** The newest `DPoP-Nonce` `origin` sent, or undefined. */
  nonceFor(origin) {
    return this.nonces.get(origin);
  }

  /** Remembers a nonce handed by `origin` (every response may carry one). */
  keepNonce(origin, nonce) {
    if (nonce) this.nonces.set(origin, nonce);
  }

  /**
   * One request. `proof` replays a given proof; otherwise a fresh one is signed, with the newest
   * nonce of the origin. Returns what a page can see of the answer.
   */
  async send(method, url, { token, body, proof } = {}) {
    const { origin, href } = new URL(url);
    const htu = href.split(/[?#]/)[0];
    const nonce = this.nonceFor(origin);
    const dpop = proof ?? (await this.key.proof(method, htu, { accessToken: token, nonce }));
    const headers = { DPoP: dpop };
    if (token) headers.Authorization = `DPoP ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      mode: 'cors',
      // DPoP needs no cookies; `no-store` so every call reaches the server.
      credentials: 'omit',
      cache: 'no-store',
    });
    // Readable only because the API exposes them (Access-Control-Expose-Headers).
    const challenge = response.headers.get('WWW-Authenticate');
    const nonceReceived = response.headers.get('DPoP-Nonce');
    this.keepNonce(origin, nonceReceived);
    const text = await response.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return {
      method,
      url,
      status: response.status,
      challenge,
      error: challengeError(challenge),
      description: challengeDescription(challenge),
      nonceSent: proof ? null : nonce ?? null,
      nonceReceived,
      body: json ?? text,
      proof: dpop,
    };
  }

  /**
   * A request with a fresh proof; a `use_dpop_nonce` answer that hands a nonce is retried once
   * with it. Returns every attempt.
   */
  async request(method, url, options = {}) {
    const first = await this.send(method, url, options);
    if (first.status === 401 && first.error === 'use_dpop_nonce' && first.nonceReceived) {
      return [first, await this.send(method, url, options)];
    }
    return [first];
  }
}
