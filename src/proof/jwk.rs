//! The public key carried in a proof's `jwk` header, parsed and bounded before any crypto.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::proof::algorithm::Algorithm;

/// Smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: bigger keys cost more to verify and buy nothing.
pub(crate) const MAX_RSA_BITS: usize = 4096;

/// The `jwk` member as it appears in JSON. Known members are typed, so a duplicated known
/// member is a parse error; the private members are only detected, never read.
#[derive(Deserialize)]
pub(crate) struct RawJwk<'a> {
    #[serde(borrow)]
    kty: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    crv: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    x: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    y: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    n: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    e: Option<Cow<'a, str>>,
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    p: Option<IgnoredAny>,
    #[serde(default)]
    q: Option<IgnoredAny>,
    #[serde(default)]
    dp: Option<IgnoredAny>,
    #[serde(default)]
    dq: Option<IgnoredAny>,
    #[serde(default)]
    qi: Option<IgnoredAny>,
    #[serde(default)]
    oth: Option<IgnoredAny>,
    #[serde(default)]
    k: Option<IgnoredAny>,
}

/// An elliptic curve for `kty` `EC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EcCurve {
    P256,
    P384,
    P521,
}

impl EcCurve {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Length in bytes of one coordinate (and of one half of a JWS signature).
    pub(crate) fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }
}

/// An octet key pair curve for `kty` `OKP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OkpCurve {
    Ed25519,
    Ed448,
}

impl OkpCurve {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "Ed25519" => Some(Self::Ed25519),
            "Ed448" => Some(Self::Ed448),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::Ed448 => "Ed448",
        }
    }

    pub(crate) fn key_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            Self::Ed448 => 57,
        }
    }
}

/// A validated public key: the right members for its type, base64url of plausible lengths,
/// no private members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicJwk<'a> {
    Ec {
        crv: EcCurve,
        x: Cow<'a, str>,
        y: Cow<'a, str>,
    },
    Rsa {
        n: Cow<'a, str>,
        e: Cow<'a, str>,
    },
    Okp {
        crv: OkpCurve,
        x: Cow<'a, str>,
    },
}

/// Why a `jwk` was refused. Each is reported as `invalid_dpop_proof`.
pub(crate) type JwkError = &'static str;

impl<'a> PublicJwk<'a> {
    pub(crate) fn from_raw(raw: RawJwk<'a>) -> Result<Self, JwkError> {
        let private = raw.d.is_some()
            || raw.p.is_some()
            || raw.q.is_some()
            || raw.dp.is_some()
            || raw.dq.is_some()
            || raw.qi.is_some()
            || raw.oth.is_some()
            || raw.k.is_some();
        if private {
            return Err("jwk contains private or symmetric key material");
        }
        match raw.kty.as_ref() {
            "EC" => {
                let crv = raw
                    .crv
                    .as_deref()
                    .and_then(EcCurve::from_name)
                    .ok_or("jwk has an unsupported or missing EC curve")?;
                let len = crv.coordinate_len();
                let x = raw.x.ok_or("jwk is missing x")?;
                let y = raw.y.ok_or("jwk is missing y")?;
                check_b64(&x, len, len)?;
                check_b64(&y, len, len)?;
                Ok(Self::Ec { crv, x, y })
            }
            "RSA" => {
                let n = raw.n.ok_or("jwk is missing n")?;
                let e = raw.e.ok_or("jwk is missing e")?;
                // RFC 7518 §6.3.1: `n` and `e` are minimal octet strings. A leading zero
                // octet would give one key a second text, and so a second thumbprint. The
                // exact bit length is checked when the key is imported.
                check_b64(&n, MIN_RSA_BITS / 8, MAX_RSA_BITS / 8)
                    .map_err(|_| "jwk RSA modulus is too small, too large or malformed")?;
                check_b64(&e, 1, 4).map_err(|_| "jwk RSA exponent is malformed or too large")?;
                if has_leading_zero_octet(&n) || has_leading_zero_octet(&e) {
                    return Err("jwk RSA n or e has a leading zero octet (not minimal)");
                }
                Ok(Self::Rsa { n, e })
            }
            "OKP" => {
                let crv = raw
                    .crv
                    .as_deref()
                    .and_then(OkpCurve::from_name)
                    .ok_or("jwk has an unsupported or missing OKP curve")?;
                let x = raw.x.ok_or("jwk is missing x")?;
                check_b64(&x, crv.key_len(), crv.key_len())?;
                Ok(Self::Okp { crv, x })
            }
            _ => Err("jwk has an unsupported kty"),
        }
    }

    /// `true` when `alg` may be used with this key (RFC 9449 §4.3 check 5 and RFC 7518).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        match (alg, self) {
            (Algorithm::ES256, Self::Ec { crv, .. }) => *crv == EcCurve::P256,
            (Algorithm::ES384, Self::Ec { crv, .. }) => *crv == EcCurve::P384,
            (Algorithm::ES512, Self::Ec { crv, .. }) => *crv == EcCurve::P521,
            (
                Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512,
                Self::Rsa { .. },
            ) => true,
            (Algorithm::EdDSA, Self::Okp { .. }) => true,
            (Algorithm::Ed25519, Self::Okp { crv, .. }) => *crv == OkpCurve::Ed25519,
            _ => false,
        }
    }
}

/// `true` when the first octet `s` decodes to is zero, read from its first two characters
/// (6 + 2 bits) without decoding: `A` (0) then a character whose value is below 16 (`A`-`P`).
/// `s` is base64url already checked to decode to at least one octet.
fn has_leading_zero_octet(s: &str) -> bool {
    matches!(s.as_bytes(), [b'A', second, ..] if (b'A'..=b'P').contains(second))
}

/// Checks that `s` is unpadded base64url whose decoded length is within `min..=max` bytes,
/// without decoding it.
fn check_b64(s: &str, min: usize, max: usize) -> Result<(), JwkError> {
    const MALFORMED: JwkError = "jwk member is not base64url of the right length";
    if !crate::proof::charset::is_base64url(s.as_bytes()) {
        return Err(MALFORMED);
    }
    let len = s.len();
    if len % 4 == 1 {
        return Err(MALFORMED);
    }
    let decoded = len / 4 * 3 + (len % 4).saturating_sub(1);
    if decoded < min || decoded > max {
        return Err(MALFORMED);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PublicJwk<'_>, JwkError> {
        let raw: RawJwk<'_> = serde_json::from_str(json).map_err(|_| "json")?;
        PublicJwk::from_raw(raw)
    }

    const EC: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;

    #[test]
    fn accepts_rfc9449_key() {
        let jwk = parse(EC).unwrap();
        assert!(jwk.fits(Algorithm::ES256));
        assert!(!jwk.fits(Algorithm::ES384));
        assert!(!jwk.fits(Algorithm::RS256));
        assert!(!jwk.fits(Algorithm::EdDSA));
    }

    #[test]
    fn rejects_every_private_member() {
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let json = EC.replacen('{', &format!("{{\"{member}\":\"AAAA\","), 1);
            assert_eq!(
                parse(&json),
                Err("jwk contains private or symmetric key material"),
                "{member}"
            );
        }
    }

    #[test]
    fn rejects_duplicate_members() {
        let json = EC.replacen('{', "{\"kty\":\"RSA\",", 1);
        assert_eq!(parse(&json), Err("json"));
    }

    #[test]
    fn rejects_wrong_lengths_curves_and_types() {
        let cases = [
            (
                r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#,
                "short coordinates",
            ),
            (
                r#"{"kty":"EC","crv":"secp256k1","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#,
                "curve",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"}"#,
                "missing y",
            ),
            (r#"{"kty":"oct","k":"AAAA"}"#, "oct"),
            (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "tiny modulus"),
            (
                r#"{"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
                "x25519",
            ),
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHUR+"}"#,
                "non-base64url",
            ),
        ];
        for (json, name) in cases {
            assert!(parse(json).is_err(), "{name}");
        }
    }

    #[test]
    fn base64url_lengths_that_cannot_be_are_refused() {
        // 4k + 1 characters is not a base64 length, even where the byte count would fit.
        for len in [341, 342, 343, 344, 345] {
            // `g` first: a modulus whose top bit is set, so no leading zero octet.
            let n = format!("g{}", "A".repeat(len - 1));
            let json = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
            let expected = len % 4 != 1;
            assert_eq!(parse(&json).is_ok(), expected, "n of {len} characters");
        }
        assert_eq!(
            check_b64(&"A".repeat(345), 1, 1000),
            Err("jwk member is not base64url of the right length")
        );
        assert_eq!(check_b64(&"A".repeat(344), 258, 258), Ok(()));
        assert_eq!(check_b64(&"A".repeat(343), 257, 257), Ok(()));
        assert_eq!(check_b64(&"A".repeat(342), 256, 256), Ok(()));
    }

    /// RFC 7518 §6.3.1: `n` and `e` are minimal; a leading zero octet is a second text (and
    /// so a second thumbprint) for the same key.
    #[test]
    fn rsa_members_with_a_leading_zero_octet_are_refused() {
        let n = format!("g{}", "A".repeat(341)); // 2048 bits, top bit set
        let rsa = |n: &str, e: &str| format!(r#"{{"kty":"RSA","n":"{n}","e":"{e}"}}"#);
        assert!(parse(&rsa(&n, "AQAB")).is_ok());
        let not_minimal = Err("jwk RSA n or e has a leading zero octet (not minimal)");
        // A zero octet in front of a 2048-bit modulus (0x00 0x80 ...): 258 octets.
        let padded = format!("AI{}", "A".repeat(342));
        assert_eq!(parse(&rsa(&padded, "AQAB")), not_minimal);
        // The first octet is the 6 bits of `A` and the top 2 of the second character: zero
        // for `A` to `P`, one from `Q` on.
        assert_eq!(
            parse(&rsa(&format!("AP{}", "A".repeat(340)), "AQAB")),
            not_minimal
        );
        assert!(has_leading_zero_octet("AP"));
        assert!(!has_leading_zero_octet("AQ"));
        assert!(!has_leading_zero_octet("BA"));
        // e = 65537 as 00 01 00 01.
        assert_eq!(parse(&rsa(&n, "AAEAAQ")), not_minimal);
        assert_eq!(parse(&rsa(&n, "AAM")), not_minimal);
        assert!(parse(&rsa(&n, "Aw")).is_ok(), "e = 3");
    }

    #[test]
    fn okp_fits_eddsa_and_ed25519_only_for_ed25519() {
        let ed = parse(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        assert!(ed.fits(Algorithm::EdDSA));
        assert!(ed.fits(Algorithm::Ed25519));
        assert!(!ed.fits(Algorithm::ES256));
    }
}
