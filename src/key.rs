//! Turning a proof's `jwk` into a ready signature verifier, and caching verifiers by thumbprint.
//!
//! Importing a key costs more than one signature check, and a client signs every request with
//! the same key, so verifiers are cached by `(thumbprint, alg)`. The thumbprint is a SHA-256
//! over the key's public members, so one cache entry can only ever verify with that very key.

use std::sync::Arc;
use std::time::Duration;

use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use moka::sync::Cache;
use serde_json::Value;

use crate::algorithm::Algorithm;
use crate::jwk::PublicJwk;
use crate::thumbprint::Thumbprint;

/// A verifier for one key and one algorithm.
pub(crate) struct VerifyingKey {
    verifier: Box<dyn JwsVerifier>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Imports a validated public key for `alg` (the caller checked that they fit).
    pub(crate) fn import(alg: Algorithm, jwk: &PublicJwk<'_>) -> Result<Self, &'static str> {
        const BAD_KEY: &str = "jwk is not a valid public key";
        let mut j = match jwk {
            PublicJwk::Ec { crv, x, y } => {
                let mut j = Jwk::new("EC");
                j.set_curve(crv.name());
                set(&mut j, "x", x)?;
                set(&mut j, "y", y)?;
                j
            }
            PublicJwk::Rsa { n, e } => {
                check_rsa(n, e)?;
                let mut j = Jwk::new("RSA");
                set(&mut j, "n", n)?;
                set(&mut j, "e", e)?;
                j
            }
            PublicJwk::Okp { crv, x } => {
                let mut j = Jwk::new("OKP");
                j.set_curve(crv.name());
                set(&mut j, "x", x)?;
                j
            }
        };
        j.set_key_use("sig");
        let verifier: Box<dyn JwsVerifier> = match alg {
            Algorithm::ES256 => Box::new(
                josekit::jws::ES256
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::ES384 => Box::new(
                josekit::jws::ES384
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::ES512 => Box::new(
                josekit::jws::ES512
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::PS256 => Box::new(
                josekit::jws::PS256
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::PS384 => Box::new(
                josekit::jws::PS384
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::PS512 => Box::new(
                josekit::jws::PS512
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::RS256 => Box::new(
                josekit::jws::RS256
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::RS384 => Box::new(
                josekit::jws::RS384
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::RS512 => Box::new(
                josekit::jws::RS512
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
            Algorithm::EdDSA | Algorithm::Ed25519 => Box::new(
                josekit::jws::EdDSA
                    .verifier_from_jwk(&j)
                    .map_err(|_| BAD_KEY)?,
            ),
        };
        Ok(Self { verifier })
    }

    /// `true` when `signature` is a valid signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify(message, signature).is_ok()
    }
}

fn set(j: &mut Jwk, name: &str, value: &str) -> Result<(), &'static str> {
    j.set_parameter(name, Some(Value::String(value.to_owned())))
        .map_err(|_| "jwk is not a valid public key")
}

/// Bounds on an RSA key beyond what the JWK parser checked: exact modulus size and a small,
/// odd public exponent (a huge exponent would make every verification expensive).
fn check_rsa(n: &str, e: &str) -> Result<(), &'static str> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let n = URL_SAFE_NO_PAD
        .decode(n)
        .map_err(|_| "jwk RSA modulus is not base64url")?;
    let e = URL_SAFE_NO_PAD
        .decode(e)
        .map_err(|_| "jwk RSA exponent is not base64url")?;
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => n.get(i..).unwrap_or_default(),
        None => &[],
    };
    let bits = match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(crate::jwk::MIN_RSA_BITS..=crate::jwk::MAX_RSA_BITS).contains(&bits) {
        return Err("jwk RSA modulus must be 2048 to 4096 bits");
    }
    let exp = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if exp < 3 || exp % 2 == 0 {
        return Err("jwk RSA exponent must be odd and at least 3");
    }
    Ok(())
}

/// Verifiers cached by `(thumbprint, alg)`, bounded in size; a key unused for a while leaves.
#[derive(Clone)]
pub(crate) struct KeyCache {
    cache: Option<Cache<(Thumbprint, Algorithm), Arc<VerifyingKey>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("enabled", &self.cache.is_some())
            .finish()
    }
}

impl KeyCache {
    /// A cache of at most `capacity` verifiers (0 disables caching).
    pub(crate) fn new(capacity: u64) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(600))
                .build()
        });
        Self { cache }
    }

    /// The verifier for this key, imported on first use.
    pub(crate) fn get_or_import(
        &self,
        thumbprint: Thumbprint,
        alg: Algorithm,
        jwk: &PublicJwk<'_>,
    ) -> Result<Arc<VerifyingKey>, &'static str> {
        let Some(cache) = &self.cache else {
            return VerifyingKey::import(alg, jwk).map(Arc::new);
        };
        if let Some(key) = cache.get(&(thumbprint, alg)) {
            return Ok(key);
        }
        let key = Arc::new(VerifyingKey::import(alg, jwk)?);
        cache.insert((thumbprint, alg), key.clone());
        Ok(key)
    }
}
