//! The JWS algorithms a DPoP proof may be signed with.

use std::fmt;
use std::str::FromStr;

/// An asymmetric JWS algorithm accepted for DPoP proofs.
///
/// There is deliberately no `none` and no HMAC variant: RFC 9449 section 4.2 forbids both, so
/// they cannot even be configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// ECDSA with P-521 and SHA-512.
    ES512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (not in the default list).
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (not in the default list).
    RS512,
    /// EdDSA (RFC 8037), with an Ed25519 or Ed448 key.
    EdDSA,
    /// Ed25519, the fully-specified name of RFC 9864.
    Ed25519,
}

impl Algorithm {
    /// Every algorithm this crate can verify (a slice, so that a new algorithm is not a
    /// breaking change).
    pub const ALL: &'static [Algorithm] = &[
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::EdDSA,
        Self::Ed25519,
    ];

    /// The default allow-list for proofs: ES256, PS256, RS256, EdDSA, Ed25519, the algorithms
    /// DPoP clients use whose verification costs about as much as a P-256 one. ES384 and ES512
    /// (3 to 10 times dearer to verify) are left out, so that a client holding its own valid
    /// token cannot make each of its requests cost several legitimate ones; name them with
    /// [`DpopLayerBuilder::algorithms`](crate::DpopLayerBuilder::algorithms) when clients need
    /// them.
    pub const DEFAULT: &'static [Algorithm] = &[
        Self::ES256,
        Self::PS256,
        Self::RS256,
        Self::EdDSA,
        Self::Ed25519,
    ];

    /// The algorithms of the FAPI 2.0 Security Profile (§5.4): PS256, ES256, EdDSA. See
    /// [`DpopLayerBuilder::fapi2_security_profile`](crate::DpopLayerBuilder::fapi2_security_profile).
    pub const FAPI2: &'static [Algorithm] = &[Self::PS256, Self::ES256, Self::EdDSA];

    /// The `alg` header value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// Parses an `alg` header value (case-sensitive, as JOSE requires).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when parsing an unknown or unsupported algorithm name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported DPoP algorithm {:?} (asymmetric JWS algorithms only)",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_symmetric_algorithms_do_not_exist() {
        for &alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
        for name in ["none", "HS256", "HS384", "HS512", "es256", "", "EDDSA"] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
            assert!(name.parse::<Algorithm>().is_err(), "{name}");
        }
    }
}
