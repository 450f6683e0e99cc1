//! Turning a proof's `jwk` into a ready signature verifier, and caching verifiers by thumbprint.
//!
//! Keys are imported straight into OpenSSL (EC, RSA, Ed448) and ed25519-dalek (Ed25519) from
//! the JWK members, skipping the DER round trip of josekit's `verifier_from_jwk`, which costs
//! more than the signature check itself (see `docs/performance.md`). A client signs every
//! request with the same key, so verifiers are also cached, by the exact text of the proof's
//! `jwk` and the `alg`, with the key's thumbprint: identical text is the identical key.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use moka::sync::Cache;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier};
use sha2::Digest as _;

use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::{EcCurve, OkpCurve, PublicJwk};
use crate::proof::thumbprint::Thumbprint;

const BAD_KEY: &str = "jwk is not a valid public key";

/// A verifier for one key and one algorithm.
pub(crate) enum VerifyingKey {
    /// ECDSA: the signature is `r || s`, each half the curve's coordinate length.
    Ec { key: EcKey<Public>, half: usize },
    /// RSASSA-PKCS1-v1_5 or RSASSA-PSS (salt length = digest length, MGF1 with the same hash).
    Rsa {
        key: PKey<Public>,
        md: MessageDigest,
        pss: bool,
    },
    /// Ed25519, through ed25519-dalek with the checks of its `verify_strict` (no small-order
    /// keys or `R`, canonical signatures only), at the cost of its plain `verify`.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// Ed448, through OpenSSL.
    Ed448(PKey<Public>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ec { .. } => "VerifyingKey::Ec",
            Self::Rsa { .. } => "VerifyingKey::Rsa",
            Self::Ed25519(_) => "VerifyingKey::Ed25519",
            Self::Ed448(_) => "VerifyingKey::Ed448",
        })
    }
}

/// The curve groups, made once: building one is costly and they never change.
fn group(curve: EcCurve) -> Option<&'static EcGroup> {
    static GROUPS: OnceLock<Option<[EcGroup; 3]>> = OnceLock::new();
    let groups = GROUPS.get_or_init(|| {
        Some([
            EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ok()?,
            EcGroup::from_curve_name(Nid::SECP384R1).ok()?,
            EcGroup::from_curve_name(Nid::SECP521R1).ok()?,
        ])
    });
    let [p256, p384, p521] = groups.as_ref()?;
    Some(match curve {
        EcCurve::P256 => p256,
        EcCurve::P384 => p384,
        EcCurve::P521 => p521,
    })
}

fn b64(value: &str) -> Result<Vec<u8>, &'static str> {
    URL_SAFE_NO_PAD.decode(value).map_err(|_| BAD_KEY)
}

fn digest(alg: Algorithm) -> MessageDigest {
    match alg {
        Algorithm::ES384 | Algorithm::PS384 | Algorithm::RS384 => MessageDigest::sha384(),
        Algorithm::ES512 | Algorithm::PS512 | Algorithm::RS512 => MessageDigest::sha512(),
        _ => MessageDigest::sha256(),
    }
}

impl VerifyingKey {
    /// Imports a validated public key for `alg` (the caller checked that they fit).
    pub(crate) fn import(alg: Algorithm, jwk: &PublicJwk<'_>) -> Result<Self, &'static str> {
        match jwk {
            PublicJwk::Ec { crv, x, y } => {
                let group = group(*crv).ok_or(BAD_KEY)?;
                // SEC1 uncompressed point. Decoding it checks that it lies on the curve; the
                // three curves have cofactor 1, so that is all a public key needs.
                let mut sec1 = Vec::with_capacity(1 + 2 * crv.coordinate_len());
                sec1.push(0x04);
                sec1.extend_from_slice(&b64(x)?);
                sec1.extend_from_slice(&b64(y)?);
                let mut ctx = BigNumContext::new().map_err(|_| BAD_KEY)?;
                let point = EcPoint::from_bytes(group, &sec1, &mut ctx).map_err(|_| BAD_KEY)?;
                let key = EcKey::from_public_key(group, &point).map_err(|_| BAD_KEY)?;
                Ok(Self::Ec {
                    key,
                    half: crv.coordinate_len(),
                })
            }
            PublicJwk::Rsa { n, e } => {
                let n = b64(n)?;
                let e = b64(e)?;
                check_rsa(&n, &e)?;
                let rsa = Rsa::from_public_components(
                    BigNum::from_slice(&n).map_err(|_| BAD_KEY)?,
                    BigNum::from_slice(&e).map_err(|_| BAD_KEY)?,
                )
                .map_err(|_| BAD_KEY)?;
                let key = PKey::from_rsa(rsa).map_err(|_| BAD_KEY)?;
                let pss = matches!(alg, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512);
                Ok(Self::Rsa {
                    key,
                    md: digest(alg),
                    pss,
                })
            }
            PublicJwk::Okp {
                crv: OkpCurve::Ed25519,
                x,
            } => {
                let bytes: [u8; 32] = b64(x)?.try_into().map_err(|_| BAD_KEY)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| BAD_KEY)?;
                if key.is_weak() {
                    return Err("jwk is a small-order Ed25519 key");
                }
                Ok(Self::Ed25519(key))
            }
            PublicJwk::Okp {
                crv: OkpCurve::Ed448,
                x,
            } => {
                let key =
                    PKey::public_key_from_raw_bytes(&b64(x)?, Id::ED448).map_err(|_| BAD_KEY)?;
                Ok(Self::Ed448(key))
            }
        }
    }

    /// `true` when `signature` is a valid signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            // ES256/384/512 pair each curve with its hash (RFC 7518), and `import` was only
            // called with an `alg` that fits the curve, so the curve decides the digest.
            Self::Ec { key, half } => {
                if signature.len() != 2 * half {
                    return false;
                }
                let (r, s) = signature.split_at(*half);
                let (Ok(r), Ok(s)) = (BigNum::from_slice(r), BigNum::from_slice(s)) else {
                    return false;
                };
                let Ok(sig) = EcdsaSig::from_private_components(r, s) else {
                    return false;
                };
                let ok = match *half {
                    32 => sig.verify(&sha2::Sha256::digest(message), key),
                    48 => sig.verify(&sha2::Sha384::digest(message), key),
                    _ => sig.verify(&sha2::Sha512::digest(message), key),
                };
                ok.unwrap_or(false)
            }
            Self::Rsa { key, md, pss } => {
                let verify = || -> Result<bool, openssl::error::ErrorStack> {
                    let mut v = Verifier::new(*md, key)?;
                    if *pss {
                        v.set_rsa_padding(Padding::PKCS1_PSS)?;
                        v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                    }
                    v.verify_oneshot(signature, message)
                };
                verify().unwrap_or(false)
            }
            Self::Ed25519(key) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                // What `verify_strict` checks, for less: the key is not small-order (checked
                // once, at import); `R` is not small-order (compared with the eight encodings,
                // where `verify_strict` decompresses it, a field exponentiation); `s` is
                // canonical (`verify` checks it too); and `R` is canonical, because `verify`
                // compares `R`'s bytes with the canonical encoding of the recomputed point.
                !is_small_order_encoding(sig.r_bytes())
                    && ed25519_dalek::Verifier::verify(key, message, &sig).is_ok()
            }
            Self::Ed448(key) => Verifier::new_without_digest(key)
                .and_then(|mut v| v.verify_oneshot(signature, message))
                .unwrap_or(false),
        }
    }
}

/// `true` when `r` is the canonical encoding of one of the eight points of small order (the
/// only encodings of them a signature check comparing canonical bytes can ever match).
fn is_small_order_encoding(r: &[u8; 32]) -> bool {
    static SMALL_ORDER: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    SMALL_ORDER
        .get_or_init(|| curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().to_bytes()))
        .contains(r)
}

/// Bounds on an RSA key beyond what the JWK parser checked: exact modulus size and a small,
/// odd public exponent (a huge exponent would make every verification expensive).
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), &'static str> {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => n.get(i..).unwrap_or_default(),
        None => &[],
    };
    let bits = match n.first() {
        Some(first) => n.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if !(crate::proof::jwk::MIN_RSA_BITS..=crate::proof::jwk::MAX_RSA_BITS).contains(&bits) {
        return Err("jwk RSA modulus must be 2048 to 4096 bits");
    }
    // At most 4 bytes (checked by the JWK parser), so no overflow; saturating regardless.
    let exp = e.iter().fold(0u64, |acc, b| {
        acc.saturating_mul(256).saturating_add(u64::from(*b))
    });
    if exp < 3 || exp % 2 == 0 {
        return Err("jwk RSA exponent must be odd and at least 3");
    }
    Ok(())
}

/// A key the layer has verified a proof with: its verifier, for one algorithm, and its
/// thumbprint.
#[derive(Debug)]
pub(crate) struct KnownKey {
    pub(crate) alg: Algorithm,
    pub(crate) thumbprint: Thumbprint,
    pub(crate) key: VerifyingKey,
}

/// Verifiers cached by the exact base64url text of the proof's JOSE header, bounded in size; a
/// key unused for a while leaves.
///
/// Keyed by the header text rather than the thumbprint so that a returning client's proof
/// header is neither decoded, parsed, checked nor hashed into a thumbprint again: identical
/// text is the identical `typ`, `alg` and `jwk`, already checked under this layer's
/// configuration (the cache belongs to one layer). A key enters only after a proof signed
/// with it verified, so a token thief cannot fill the cache with textual variants (extra
/// members, whitespace) of the victim's header.
#[derive(Clone)]
pub(crate) struct KeyCache {
    cache: Option<Cache<Arc<[u8]>, Arc<KnownKey>, foldhash::fast::RandomState>>,
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
        // foldhash rather than SipHash: the key is a few hundred bytes hashed on every
        // request, and only verified headers get in, so flooding is not a concern.
        let cache = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(600))
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Self { cache }
    }

    /// The known key of a proof header with exactly this base64url text.
    pub(crate) fn get(&self, header: &[u8]) -> Option<Arc<KnownKey>> {
        self.cache.as_ref()?.get(header)
    }

    /// Remembers a key after a proof with this header, signed with it, verified.
    pub(crate) fn insert(&self, header: &[u8], key: Arc<KnownKey>) {
        if let Some(cache) = &self.cache {
            cache.insert(Arc::from(header), key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::Scalar;
    use ed25519_dalek::{Signer as _, SigningKey};
    use sha2::Sha512;

    fn ed25519(signing: &SigningKey) -> VerifyingKey {
        VerifyingKey::Ed25519(signing.verifying_key())
    }

    #[test]
    fn the_small_order_encodings_are_the_eight_weak_points() {
        let mut seen = Vec::new();
        for p in curve25519_dalek::constants::EIGHT_TORSION {
            let bytes = p.compress().to_bytes();
            assert!(is_small_order_encoding(&bytes));
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).unwrap();
            assert!(key.is_weak(), "{bytes:02x?}");
            seen.push(bytes);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 8);
        let ordinary = SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes();
        assert!(!is_small_order_encoding(&ordinary));
    }

    #[test]
    fn ed25519_accepts_valid_and_rejects_altered_signatures() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = ed25519(&signing);
        let sig = signing.sign(b"message").to_bytes();
        assert!(key.verify(b"message", &sig));
        assert!(!key.verify(b"messagf", &sig));
        let mut bad = sig;
        bad[40] ^= 1;
        assert!(!key.verify(b"message", &bad));
        assert!(!key.verify(b"message", &sig[..63]));
    }

    #[test]
    fn ed25519_rejects_a_non_canonical_s() {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = ed25519(&signing);
        let sig = signing.sign(b"message").to_bytes();
        // s + L: the same scalar, a second encoding (the malleability strict checks forbid).
        let s = Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).unwrap();
        let mut s_plus_l = [0u8; 32];
        // L = 2^252 + 27742317777372353535851937790883648493, little endian.
        let l_bytes: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s.as_bytes()[i]) + u16::from(l_bytes[i]) + carry;
            s_plus_l[i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0);
        let mut malleated = sig;
        malleated[32..].copy_from_slice(&s_plus_l);
        assert!(!key.verify(b"message", &malleated));
    }

    #[test]
    fn ed25519_rejects_a_small_order_r_that_plain_verify_accepts() {
        // The key holder can sign with R = identity: s = k·a, so [s]B - [k]A = identity.
        let signing = SigningKey::from_bytes(&[7; 32]);
        let public = signing.verifying_key();
        let message = b"message";
        let r = curve25519_dalek::EdwardsPoint::default()
            .compress()
            .to_bytes();
        let mut h = Sha512::new();
        h.update(r);
        h.update(public.as_bytes());
        h.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = k * signing.to_scalar();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(s.as_bytes());
        let parsed = ed25519_dalek::Signature::from_bytes(&sig);
        // Cofactorless plain verification accepts it; the strict check and ours refuse it.
        assert!(ed25519_dalek::Verifier::verify(&public, message, &parsed).is_ok());
        assert!(public.verify_strict(message, &parsed).is_err());
        assert!(!ed25519(&signing).verify(message, &sig));
    }

    #[test]
    fn debug_names_the_kind_only() {
        let signing = SigningKey::from_bytes(&[3; 32]);
        assert_eq!(format!("{:?}", ed25519(&signing)), "VerifyingKey::Ed25519");
        assert_eq!(
            format!("{:?}", KeyCache::new(1)),
            "KeyCache { enabled: true }"
        );
        assert_eq!(
            format!("{:?}", KeyCache::new(0)),
            "KeyCache { enabled: false }"
        );
    }

    #[test]
    fn the_cache_answers_only_for_the_same_text() {
        let signing = SigningKey::from_bytes(&[3; 32]);
        let known = || {
            Arc::new(KnownKey {
                alg: Algorithm::EdDSA,
                thumbprint: Thumbprint::from_bytes([1; 32]),
                key: ed25519(&signing),
            })
        };
        let text = b"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVkRFNBIn0";
        let cache = KeyCache::new(10);
        assert!(cache.get(text).is_none());
        cache.insert(text, known());
        assert_eq!(cache.get(text).map(|k| k.alg), Some(Algorithm::EdDSA));
        assert!(cache.get(&text[..text.len() - 1]).is_none());
        assert!(cache
            .get(b"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVkRFNBIn1")
            .is_none());

        let off = KeyCache::new(0);
        off.insert(text, known());
        assert!(off.get(text).is_none());
    }
}
