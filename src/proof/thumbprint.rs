//! RFC 7638 JWK thumbprints (SHA-256), the value a bound token carries as `cnf.jkt`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::proof::jwk::PublicJwk;

/// A JWK SHA-256 thumbprint: 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprint([u8; 32]);

impl Thumbprint {
    /// Wraps a raw SHA-256 digest.
    #[must_use]
    pub fn from_bytes(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The raw digest.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64url form used in `cnf.jkt`.
    #[must_use]
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Compares with a `cnf.jkt` value in constant time (with respect to the digest).
    ///
    /// The claim is decoded first; a claim that is not the base64url of 32 bytes never matches.
    #[must_use]
    pub fn matches_jkt(&self, jkt: &str) -> bool {
        Self::from_jkt(jkt).is_some_and(|other| self.matches(&other))
    }

    /// Decodes a `cnf.jkt` value: `None` unless it is the unpadded base64url of 32 bytes.
    pub(crate) fn from_jkt(jkt: &str) -> Option<Self> {
        let mut decoded = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(jkt.as_bytes(), &mut decoded) {
            Ok(32) => Some(Self(decoded)),
            _ => None,
        }
    }

    /// Compares two thumbprints in constant time.
    pub(crate) fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The first characters of the base64url form, enough to correlate logs without
    /// publishing the whole key identifier.
    #[must_use]
    pub fn short(&self) -> String {
        let mut s = self.to_base64url();
        s.truncate(8);
        s
    }
}

impl std::fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumbprint({})", self.to_base64url())
    }
}

impl std::fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

/// Computes the RFC 7638 thumbprint of a validated public key: SHA-256 over the required
/// members in lexicographic order, without whitespace.
pub(crate) fn thumbprint(jwk: &PublicJwk<'_>) -> Thumbprint {
    // Member values were checked to be base64url or a known curve name, so no JSON escaping
    // is needed.
    let mut h = Sha256::new();
    match jwk {
        PublicJwk::Ec { crv, x, y } => {
            h.update(br#"{"crv":""#);
            h.update(crv.name().as_bytes());
            h.update(br#"","kty":"EC","x":""#);
            h.update(x.as_bytes());
            h.update(br#"","y":""#);
            h.update(y.as_bytes());
            h.update(br#""}"#);
        }
        PublicJwk::Rsa { n, e } => {
            h.update(br#"{"e":""#);
            h.update(e.as_bytes());
            h.update(br#"","kty":"RSA","n":""#);
            h.update(n.as_bytes());
            h.update(br#""}"#);
        }
        PublicJwk::Okp { crv, x } => {
            h.update(br#"{"crv":""#);
            h.update(crv.name().as_bytes());
            h.update(br#"","kty":"OKP","x":""#);
            h.update(x.as_bytes());
            h.update(br#""}"#);
        }
    }
    Thumbprint(h.finalize().into())
}

/// Computes the RFC 7638 thumbprint of a public JWK given as JSON, e.g. to put into `cnf.jkt`
/// when minting test tokens. Returns `None` for a key the layer would not accept (private
/// material, unsupported type, wrong lengths).
#[must_use]
pub(crate) fn jwk_thumbprint(jwk_json: &str) -> Option<String> {
    let raw: crate::proof::jwk::RawJwk<'_> = serde_json::from_str(jwk_json).ok()?;
    let jwk = PublicJwk::from_raw(raw).ok()?;
    Some(thumbprint(&jwk).to_base64url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_section_3_1_example() {
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        assert_eq!(
            jwk_thumbprint(jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn rfc9449_example_key() {
        let jwk = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
        assert_eq!(
            jwk_thumbprint(jwk).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
    }

    #[test]
    fn member_order_and_whitespace_do_not_matter() {
        let a = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
        let b = "{ \"crv\" : \"P-256\",\n \"y\":\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\", \"kid\":\"k1\",\t\"x\":\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\", \"kty\":\"EC\" }";
        assert_eq!(jwk_thumbprint(a), jwk_thumbprint(b));
    }

    #[test]
    fn display_debug_and_short_forms() {
        let tp = Thumbprint::from_bytes([0xfb; 32]);
        let b64 = tp.to_base64url();
        assert_eq!(b64.len(), 43);
        assert_eq!(tp.to_string(), b64);
        assert_eq!(format!("{tp:?}"), format!("Thumbprint({b64})"));
        assert_eq!(tp.short(), b64[..8]);
    }

    #[test]
    fn matches_jkt_is_exact() {
        let jwk = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
        let raw: crate::proof::jwk::RawJwk<'_> = serde_json::from_str(jwk).unwrap();
        let tp = thumbprint(&PublicJwk::from_raw(raw).unwrap());
        assert!(tp.matches_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert!(!tp.matches_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4J"));
        assert!(!tp.matches_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I="));
        assert!(!tp.matches_jkt(""));
        assert!(!tp.matches_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }
}
