//! Client keys: generate, load, thumbprint, sign.

mod jwk;

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};

/// The size of a generated RSA key, in bits; loaded RSA keys must have at least this many.
pub const RSA_BITS: u32 = 2048;

/// The largest private JWK [`DpopKey::from_jwk`] reads, in bytes.
pub const MAX_JWK_LEN: usize = 16 * 1024;

/// A JWS algorithm a [`DpopKey`] signs proofs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (`EdDSA` in the JWS header).
    EdDSA,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, a 32-byte salt).
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl Algorithm {
    /// Every algorithm, in the order of preference.
    pub const ALL: &'static [Algorithm] = &[
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::ES384,
        Algorithm::PS256,
        Algorithm::RS256,
    ];

    /// The JWS `alg` name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::PS256 => "PS256",
            Self::RS256 => "RS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses a JWS `alg` name (`ES256`, `ES384`, `EdDSA`, `PS256`, `RS256`).
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::new(ErrorKind::Key, "unsupported algorithm"))
    }
}

/// A DPoP key pair: the private key that signs proofs and its public JWK.
///
/// `Debug` shows the algorithm and the thumbprint only, never the private key.
///
/// ```
/// use tower_dpop_client::{Algorithm, DpopKey};
///
/// let key = DpopKey::generate(Algorithm::ES256)?;
/// assert_eq!(key.public_jwk()["kty"], "EC");
/// assert_eq!(key.thumbprint().len(), 43); // base64url of a SHA-256
/// # Ok::<(), tower_dpop_client::Error>(())
/// ```
#[derive(Clone)]
pub struct DpopKey {
    alg: Algorithm,
    pkey: PKey<Private>,
    public_jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// Generates a new key for `alg` (RSA keys are [`RSA_BITS`] bits), from OpenSSL's
    /// random generator.
    ///
    /// # Errors
    /// When OpenSSL cannot generate the key.
    pub fn generate(alg: Algorithm) -> Result<Self, Error> {
        let pkey = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let group = EcGroup::from_curve_name(curve_of(alg))?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            Algorithm::EdDSA => PKey::generate_ed25519()?,
            Algorithm::PS256 | Algorithm::RS256 => PKey::from_rsa(Rsa::generate(RSA_BITS)?)?,
        };
        Self::from_pkey(alg, pkey)
    }

    /// Loads a private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), to sign with `alg`.
    ///
    /// # Errors
    /// [`ErrorKind::Key`] when the PEM is not a private key, or not one that fits `alg` (the
    /// curve for ECDSA, Ed25519 for `EdDSA`, RSA of at least [`RSA_BITS`] bits).
    pub fn from_pkcs8_pem(alg: Algorithm, pem: &str) -> Result<Self, Error> {
        let pkey = PKey::private_key_from_pkcs8(pem_body(pem)?.as_slice())
            .map_err(|e| Error::new(ErrorKind::Key, "not a PKCS#8 private key").with_source(e))?;
        Self::from_pkey(alg, pkey)
    }

    /// Loads a private key given as a JWK (JSON with its private members: `d`, and for RSA
    /// `p`, `q`, `dp`, `dq`, `qi` when present), to sign with `alg`.
    ///
    /// # Errors
    /// [`ErrorKind::Key`] when the JSON is larger than [`MAX_JWK_LEN`], is not a private JWK,
    /// its public members do not belong to its private key, or the key does not fit `alg`.
    pub fn from_jwk(alg: Algorithm, private_jwk: &str) -> Result<Self, Error> {
        if private_jwk.len() > MAX_JWK_LEN {
            return Err(Error::new(ErrorKind::Key, "the JWK is too large"));
        }
        let pkey = jwk::private_key(private_jwk)?;
        let key = Self::from_pkey(alg, pkey)?;
        jwk::check_public_members(private_jwk, &key.public_jwk)?;
        Ok(key)
    }

    fn from_pkey(alg: Algorithm, pkey: PKey<Private>) -> Result<Self, Error> {
        let misfit = || Error::new(ErrorKind::Key, format!("the key does not fit {alg}"));
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let ec = pkey.ec_key().map_err(|_| misfit())?;
                if ec.group().curve_name() != Some(curve_of(alg)) {
                    return Err(misfit());
                }
            }
            Algorithm::EdDSA => {
                if pkey.id() != Id::ED25519 {
                    return Err(misfit());
                }
            }
            Algorithm::PS256 | Algorithm::RS256 => {
                if pkey.id() != Id::RSA || pkey.bits() < RSA_BITS {
                    return Err(misfit());
                }
            }
        }
        let public_jwk = jwk::public_jwk(&pkey)?;
        let thumbprint = jwk::thumbprint(&public_jwk)?;
        Ok(Self {
            alg,
            pkey,
            public_jwk,
            thumbprint,
        })
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 JWK SHA-256 thumbprint of the public key, base64url without padding: the
    /// `cnf.jkt` of tokens bound to this key and the `dpop_jkt` of authorization requests.
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public key as a JWK (its required members only), as proofs carry it.
    #[must_use]
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The private key in PKCS#8 PEM, to store a generated key.
    ///
    /// # Errors
    /// When OpenSSL cannot encode the key.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        let pem = self.pkey.private_key_to_pem_pkcs8()?;
        String::from_utf8(pem).map_err(|_| Error::new(ErrorKind::Key, "PEM is not UTF-8"))
    }

    /// The JWS signature of `message` (the raw `r || s` for ECDSA), as a proof carries it.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let (digest, len) = if self.alg == Algorithm::ES256 {
                    (MessageDigest::sha256(), 32)
                } else {
                    (MessageDigest::sha384(), 48)
                };
                let mut signer = Signer::new(digest, &self.pkey)?;
                let der = signer.sign_oneshot_to_vec(message)?;
                let sig = EcdsaSig::from_der(&der)?;
                let mut raw = sig.r().to_vec_padded(len)?;
                raw.extend_from_slice(&sig.s().to_vec_padded(len)?);
                Ok(raw)
            }
            Algorithm::EdDSA => {
                Ok(Signer::new_without_digest(&self.pkey)?.sign_oneshot_to_vec(message)?)
            }
            Algorithm::PS256 => {
                let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
                Ok(signer.sign_oneshot_to_vec(message)?)
            }
            Algorithm::RS256 => {
                let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
                signer.set_rsa_padding(Padding::PKCS1)?;
                Ok(signer.sign_oneshot_to_vec(message)?)
            }
        }
    }
}

fn curve_of(alg: Algorithm) -> Nid {
    if alg == Algorithm::ES384 {
        Nid::SECP384R1
    } else {
        Nid::X9_62_PRIME256V1
    }
}

/// The DER inside a `-----BEGIN PRIVATE KEY-----` block (PKCS#8 only: the label is checked).
fn pem_body(pem: &str) -> Result<Vec<u8>, Error> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let not_pkcs8 = || Error::new(ErrorKind::Key, "not a PKCS#8 PEM private key");
    let start = pem.find(BEGIN).ok_or_else(not_pkcs8)? + BEGIN.len();
    let rest = pem.get(start..).ok_or_else(not_pkcs8)?;
    let end = rest.find(END).ok_or_else(not_pkcs8)?;
    let body: String = rest
        .get(..end)
        .ok_or_else(not_pkcs8)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| not_pkcs8())
}

/// `base64url(SHA-256(token))`, the `ath` claim of a proof sent with `token`.
#[must_use]
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}
