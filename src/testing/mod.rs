//! Helpers to mint DPoP proofs and access tokens in tests, demos and benchmarks.
//!
//! These sign with freshly generated keys. They are for exercising a protected API (your
//! integration tests, the demo, the benchmarks), not a DPoP client for production use.
//!
//! ```
//! use tower_dpop::testing::{ClientKey, TestIssuer};
//! use tower_dpop::Algorithm;
//!
//! let issuer = TestIssuer::new();
//! let client = ClientKey::generate(Algorithm::ES256);
//! let token = issuer.token_for(client.jkt(), 1_700_000_000 + 3600);
//! let proof = client
//!     .proof("GET", "https://api.example.com/me")
//!     .access_token(&token)
//!     .iat(1_700_000_000)
//!     .sign();
//! assert_eq!(proof.split('.').count(), 3);
//! ```

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

mod replay_store;

pub use replay_store::check_replay_store;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwk::{alg::ed::EdCurve, Jwk, KeyPair};
use josekit::jws::JwsSigner;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::proof::algorithm::Algorithm;

/// A random base64url string of `bytes` random bytes.
#[must_use]
pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buf).expect("the OS random generator works");
    URL_SAFE_NO_PAD.encode(buf)
}

/// `base64url(SHA-256(token))`, the `ath` of a proof for `token`.
#[must_use]
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The request headers of a DPoP request: `Authorization: DPoP <token>` and `DPoP: <proof>`,
/// e.g. for [`request_parts`] and [`DpopLayer::authenticate`](crate::DpopLayer::authenticate).
///
/// # Panics
/// If `token` or `proof` is not a valid header value (they are test inputs).
#[must_use]
pub fn dpop_headers(token: &str, proof: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("DPoP {token}")).expect("token is a header value"),
    );
    headers.insert(
        &crate::header::DPOP,
        http::HeaderValue::from_str(proof).expect("proof is a header value"),
    );
    headers
}

/// Seconds since the Unix epoch, from the system clock.
#[must_use]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sign_compact(signer: &dyn JwsSigner, header: &Value, claims: &Value) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = signer.sign(out.as_bytes()).expect("signing works");
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// A client key pair that signs DPoP proofs.
pub struct ClientKey {
    alg: Algorithm,
    signer: Box<dyn JwsSigner>,
    public_jwk: Value,
    jkt: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Generates a key for `alg` (RSA keys are 2048 bits).
    #[must_use]
    pub fn generate(alg: Algorithm) -> Self {
        use josekit::jws;
        let (pair, public): (Jwk, Jwk) = match alg {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
                let kp = match alg {
                    Algorithm::ES256 => jws::ES256.generate_key_pair(),
                    Algorithm::ES384 => jws::ES384.generate_key_pair(),
                    _ => jws::ES512.generate_key_pair(),
                }
                .expect("EC key generation works");
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
            Algorithm::EdDSA | Algorithm::Ed25519 => {
                let kp = jws::EdDSA
                    .generate_key_pair(EdCurve::Ed25519)
                    .expect("Ed25519 key generation works");
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
            _ => {
                let kp = jws::RS256
                    .generate_key_pair(2048)
                    .expect("RSA key generation works");
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
        };
        Self::from_pair(alg, pair, &public).expect("a generated key fits its algorithm")
    }

    /// Loads a private key given as a JWK (JSON with its private members), to sign with
    /// `alg`.
    ///
    /// # Errors
    /// When the JSON is not a private JWK, or the key does not fit `alg`.
    pub fn from_jwk(alg: Algorithm, private_jwk: &str) -> Result<Self, String> {
        let pair = Jwk::from_bytes(private_jwk).map_err(|e| e.to_string())?;
        let mut public = pair.clone();
        let members: Vec<String> = pair.as_ref().keys().cloned().collect();
        let mut public_map = public.as_ref().clone();
        for m in &members {
            if matches!(
                m.as_str(),
                "d" | "p" | "q" | "dp" | "dq" | "qi" | "oth" | "k"
            ) {
                public_map.remove(m);
            }
        }
        public = Jwk::from_map(public_map).map_err(|e| e.to_string())?;
        Self::from_pair(alg, pair, &public)
    }

    /// Loads a private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), to sign with `alg`.
    ///
    /// # Errors
    /// When the PEM is not a private key of a type that fits `alg`.
    pub fn from_pkcs8_pem(alg: Algorithm, pem: &str) -> Result<Self, String> {
        use josekit::jws;
        let err = |e: josekit::JoseError| e.to_string();
        let (pair, public) = match alg {
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
                let kp = match alg {
                    Algorithm::ES256 => jws::ES256.key_pair_from_pem(pem),
                    Algorithm::ES384 => jws::ES384.key_pair_from_pem(pem),
                    _ => jws::ES512.key_pair_from_pem(pem),
                }
                .map_err(err)?;
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
            Algorithm::EdDSA | Algorithm::Ed25519 => {
                let kp = jws::EdDSA.key_pair_from_pem(pem).map_err(err)?;
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
            _ => {
                let kp = jws::RS256.key_pair_from_pem(pem).map_err(err)?;
                (kp.to_jwk_key_pair(), kp.to_jwk_public_key())
            }
        };
        Self::from_pair(alg, pair, &public)
    }

    fn from_pair(alg: Algorithm, mut pair: Jwk, public: &Jwk) -> Result<Self, String> {
        use josekit::jws;
        // The generator stamps its own `alg`; the key is used with `alg` instead.
        pair.set_algorithm(match alg {
            Algorithm::Ed25519 => "EdDSA",
            other => other.as_str(),
        });
        let pair = &pair;
        let fits = |e: josekit::JoseError| format!("the key does not fit {alg}: {e}");
        let signer: Box<dyn JwsSigner> = match alg {
            Algorithm::ES256 => Box::new(jws::ES256.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::ES384 => Box::new(jws::ES384.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::ES512 => Box::new(jws::ES512.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::PS256 => Box::new(jws::PS256.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::PS384 => Box::new(jws::PS384.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::PS512 => Box::new(jws::PS512.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::RS256 => Box::new(jws::RS256.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::RS384 => Box::new(jws::RS384.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::RS512 => Box::new(jws::RS512.signer_from_jwk(pair).map_err(fits)?),
            Algorithm::EdDSA | Algorithm::Ed25519 => {
                Box::new(jws::EdDSA.signer_from_jwk(pair).map_err(fits)?)
            }
        };
        let mut public_jwk: Map<String, Value> = public.as_ref().clone();
        for member in ["alg", "use", "kid", "key_ops"] {
            public_jwk.remove(member);
        }
        let public_jwk = Value::Object(public_jwk);
        let jkt = crate::proof::thumbprint::jwk_thumbprint(&public_jwk.to_string())
            .ok_or("the public key has no RFC 7638 thumbprint")?;
        Ok(Self {
            alg,
            signer,
            public_jwk,
            jkt,
        })
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 thumbprint, for `cnf.jkt`.
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// Starts a proof for `method` and `url` (the `htu`), with `iat` now and a random `jti`.
    pub fn proof(&self, method: &str, url: &str) -> ProofBuilder<'_> {
        ProofBuilder {
            key: self,
            header: json!({ "typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": self.public_jwk }),
            claims: json!({ "jti": random_id(16), "htm": method, "htu": url, "iat": unix_now() }),
        }
    }

    /// Signs arbitrary bytes as this key's JWS signature (for hand-made proofs).
    #[must_use]
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        self.signer.sign(message).expect("signing works")
    }
}

/// A proof being built; [`sign`](Self::sign) produces the compact JWS.
#[derive(Debug)]
#[must_use]
pub struct ProofBuilder<'k> {
    key: &'k ClientKey,
    header: Value,
    claims: Value,
}

impl ProofBuilder<'_> {
    /// Binds the proof to this access token (`ath`).
    pub fn access_token(self, token: &str) -> Self {
        self.claim("ath", json!(ath(token)))
    }

    /// Sets `iat`.
    pub fn iat(self, iat: u64) -> Self {
        self.claim("iat", json!(iat))
    }

    /// Sets `jti`.
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", json!(jti))
    }

    /// Sets `nonce`.
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", json!(nonce))
    }

    /// Sets (or replaces) any claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        if let Some(c) = self.claims.as_object_mut() {
            c.insert(name.to_owned(), value);
        }
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        if let Some(c) = self.claims.as_object_mut() {
            c.remove(name);
        }
        self
    }

    /// Sets (or replaces) a header parameter.
    pub fn header(mut self, name: &str, value: Value) -> Self {
        if let Some(h) = self.header.as_object_mut() {
            h.insert(name.to_owned(), value);
        }
        self
    }

    /// Removes a header parameter.
    pub fn without_header(mut self, name: &str) -> Self {
        if let Some(h) = self.header.as_object_mut() {
            h.remove(name);
        }
        self
    }

    /// Signs the proof with the key.
    #[must_use]
    pub fn sign(self) -> String {
        sign_compact(&*self.key.signer, &self.header, &self.claims)
    }
}

/// The audience of a [`TestIssuer`]'s tokens.
const TEST_AUDIENCE: &str = "https://api.example.com";

/// A stand-in authorization server: one ES256 signing key, its JWKS, and JWT access tokens
/// (with `iss`, `aud` and `exp`).
pub struct TestIssuer {
    signer: Box<dyn JwsSigner>,
    jwks: Value,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// An issuer `https://as.example.com` with a new ES256 key.
    #[must_use]
    pub fn new() -> Self {
        Self::with_issuer("https://as.example.com")
    }

    /// An issuer with this `iss` and a new ES256 key.
    #[must_use]
    pub fn with_issuer(issuer: &str) -> Self {
        let kp = josekit::jws::ES256
            .generate_key_pair()
            .expect("EC key generation works");
        let kid = random_id(8);
        let signer = josekit::jws::ES256
            .signer_from_jwk(&kp.to_jwk_key_pair())
            .expect("key fits");
        let mut public: Map<String, Value> = kp.to_jwk_public_key().as_ref().clone();
        public.insert("kid".into(), json!(kid));
        public.insert("alg".into(), json!("ES256"));
        public.insert("use".into(), json!("sig"));
        Self {
            signer: Box::new(signer),
            jwks: json!({ "keys": [Value::Object(public)] }),
            kid,
            issuer: issuer.to_owned(),
        }
    }

    /// The issuer's `iss`.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key set, as JSON.
    #[must_use]
    pub fn jwks_json(&self) -> String {
        self.jwks.to_string()
    }

    /// The `aud` of the tokens [`token_for`](Self::token_for) mints.
    #[must_use]
    pub fn audience(&self) -> &'static str {
        TEST_AUDIENCE
    }

    /// A [`JwtValidator`](crate::token::jwt::JwtValidator) trusting this issuer's key set and
    /// requiring its `iss` and the [`audience`](Self::audience) of its tokens (and `exp`, as
    /// every validator does by default).
    ///
    /// # Panics
    /// Never for a key set this type made (it is its own JWKS).
    #[must_use]
    pub fn validator(&self) -> crate::token::jwt::JwtValidator {
        crate::token::jwt::JwtValidator::builder()
            .jwks_json(&self.jwks_json())
            .issuer(&self.issuer)
            .audience(TEST_AUDIENCE)
            .build()
            .expect("a TestIssuer's own key set is a valid JWKS")
    }

    /// Signs these claims as an `at+jwt` access token.
    #[must_use]
    pub fn mint(&self, claims: &Value) -> String {
        let header = json!({ "typ": "at+jwt", "alg": "ES256", "kid": self.kid });
        sign_compact(&*self.signer, &header, claims)
    }

    /// A token from this issuer (`iss`) for [`audience`](Self::audience), subject `alice`, client
    /// `demo-client`, bound to `jkt`, expiring at `exp`.
    #[must_use]
    pub fn token_for(&self, jkt: &str, exp: u64) -> String {
        self.mint(&json!({
            "iss": self.issuer,
            "sub": "alice",
            "aud": TEST_AUDIENCE,
            "client_id": "demo-client",
            "scope": "read",
            "iat": exp.saturating_sub(3600),
            "exp": exp,
            "jti": random_id(12),
            "cnf": { "jkt": jkt },
        }))
    }
}

/// The head of a request for `path` (a path, or an absolute URL) with this method and these
/// headers, to hand to [`DpopLayer::authenticate`](crate::DpopLayer::authenticate).
///
/// # Panics
/// When `path` is not a valid URI.
#[must_use]
pub fn request_parts(
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> http::request::Parts {
    let mut request = http::Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = path.parse().expect("a valid request URI");
    *request.headers_mut() = headers.clone();
    request.into_parts().0
}

/// The RFC 7638 thumbprint (base64url) of a public JWK given as JSON, as the layer computes
/// it; `None` when the JSON is not a JWK of a supported key type.
#[must_use]
pub fn jwk_thumbprint(jwk_json: &str) -> Option<String> {
    crate::proof::thumbprint::jwk_thumbprint(jwk_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key loaded from its JWK or its PKCS#8 PEM signs proofs the layer accepts (same
    /// thumbprint as the key's own), for every key type.
    #[test]
    fn keys_load_from_jwk_and_pem() {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let pem = String::from_utf8(
            PKey::from_ec_key(ec)
                .unwrap()
                .private_key_to_pem_pkcs8()
                .unwrap(),
        )
        .unwrap();
        let from_pem = ClientKey::from_pkcs8_pem(Algorithm::ES256, &pem).unwrap();
        assert_eq!(from_pem.public_jwk()["crv"], "P-256");
        assert!(from_pem.public_jwk().get("d").is_none(), "public only");
        let proof = from_pem
            .proof("GET", "https://a.example/r")
            .access_token("t")
            .iat(1)
            .sign();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(proof.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            jwk_thumbprint(&header["jwk"].to_string()).as_deref(),
            Some(from_pem.jkt())
        );
        // And the layer accepts its proofs for a token bound to it.
        let issuer = TestIssuer::new();
        let token = issuer.token_for(from_pem.jkt(), unix_now() + 600);
        let layer = crate::DpopLayer::builder()
            .public_origin("https://a.example")
            .token_validator(issuer.validator())
            .build()
            .unwrap();
        let proof = from_pem
            .proof("GET", "https://a.example/r")
            .access_token(&token)
            .sign();
        let parts = request_parts(&http::Method::GET, "/r", &dpop_headers(&token, &proof));
        let accepted = futures::executor::block_on(layer.authenticate(&parts));
        assert!(accepted.is_ok(), "{accepted:?}");

        let ed = PKey::generate_ed25519().unwrap();
        let ed_pem = String::from_utf8(ed.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(ClientKey::from_pkcs8_pem(Algorithm::EdDSA, &ed_pem).is_ok());
        assert!(
            ClientKey::from_pkcs8_pem(Algorithm::ES256, &ed_pem).is_err(),
            "wrong type"
        );
        assert!(ClientKey::from_pkcs8_pem(Algorithm::ES256, "not a pem").is_err());

        let generated = josekit::jws::ES256.generate_key_pair().unwrap();
        let private = generated.to_jwk_key_pair().to_string();
        let from_jwk = ClientKey::from_jwk(Algorithm::ES256, &private).unwrap();
        assert!(from_jwk.public_jwk().get("d").is_none(), "public only");
        assert!(ClientKey::from_jwk(Algorithm::ES256, "{}").is_err());
        assert!(
            ClientKey::from_jwk(Algorithm::RS256, &private).is_err(),
            "wrong type"
        );
    }
}
