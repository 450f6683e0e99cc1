//! Parsing a DPoP proof JWT and checking its form (RFC 9449 sections 4.2 and 4.3).
//!
//! Pure functions, no I/O: the compact JWS is split and decoded, the header and the claims
//! are parsed into typed structs and every structural rule is checked. The signature itself is
//! checked by the `key` module, after the cheaper request checks of the pipeline (`verify_request`).

pub(crate) mod algorithm;
pub(crate) mod charset;
pub(crate) mod htu;
pub(crate) mod jwk;
pub(crate) mod key;
pub(crate) mod thumbprint;

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind};
use crate::proof::algorithm::Algorithm;
use crate::proof::jwk::{PublicJwk, RawJwk};

/// Largest `jti` accepted, in bytes.
pub(crate) const MAX_JTI_LEN: usize = 256;

/// The claims of a verified proof, handed to handlers through the extractor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProofClaims {
    /// The proof's unique identifier.
    pub jti: String,
    /// The HTTP method the proof was made for.
    pub htm: String,
    /// The HTTP target URI the proof was made for, as the client wrote it.
    pub htu: String,
    /// Creation time, in seconds since the Unix epoch.
    pub iat: u64,
    /// Hash of the access token.
    pub ath: String,
    /// The server nonce, when the proof carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl ProofClaims {
    /// Claims as a proof would carry them (no nonce), e.g. to build a
    /// [`DpopAuth`](crate::DpopAuth) in a handler's unit test.
    #[must_use]
    pub fn new(
        jti: impl Into<String>,
        htm: impl Into<String>,
        htu: impl Into<String>,
        iat: u64,
        ath: impl Into<String>,
    ) -> Self {
        Self {
            jti: jti.into(),
            htm: htm.into(),
            htu: htu.into(),
            iat,
            ath: ath.into(),
            nonce: None,
        }
    }

    /// The same claims with a server nonce.
    #[must_use]
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }
}

/// Largest signature of any accepted algorithm, in bytes (RSA with a 4096-bit modulus).
pub(crate) const MAX_SIGNATURE_LEN: usize = crate::proof::jwk::MAX_RSA_BITS / 8;

/// A proof split into its three base64url parts, not yet decoded: the header is decoded only
/// when the key cache does not know its exact text.
#[derive(Debug)]
pub(crate) struct ProofParts<'p> {
    /// The header, base64url as sent (the key cache's key).
    pub(crate) header: &'p [u8],
    payload: &'p [u8],
    signature: &'p [u8],
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'p [u8],
}

/// A decoded signature, on the stack.
pub(crate) struct Signature {
    bytes: [u8; MAX_SIGNATURE_LEN],
    len: usize,
}

impl Signature {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// A reason for a malformed proof ([`ErrorKind::ProofMalformed`]).
pub(crate) type ProofError = &'static str;

const NOT_COMPACT: ProofError = "proof is not a compact JWS with three parts";

/// Splits a compact JWS into its three non-empty parts.
pub(crate) fn split(proof: &[u8]) -> Result<ProofParts<'_>, ProofError> {
    // memchr (SIMD) finds the two dots of a kilobyte-long proof in a few dozen nanoseconds;
    // a byte-by-byte split took ten times that.
    let (Some(first), Some(last)) = (memchr::memchr(b'.', proof), memchr::memrchr(b'.', proof))
    else {
        return Err(NOT_COMPACT);
    };
    let header = proof.get(..first).unwrap_or_default();
    let payload = proof.get(first + 1..last).unwrap_or_default();
    let signature = proof.get(last + 1..).unwrap_or_default();
    if header.is_empty()
        || payload.is_empty()
        || signature.is_empty()
        || memchr::memchr(b'.', payload).is_some()
    {
        return Err(NOT_COMPACT);
    }
    Ok(ProofParts {
        header,
        payload,
        signature,
        signing_input: proof.get(..last).unwrap_or_default(),
    })
}

impl ProofParts<'_> {
    /// The header's JSON bytes.
    pub(crate) fn decode_header(&self) -> Result<Vec<u8>, ProofError> {
        URL_SAFE_NO_PAD
            .decode(self.header)
            .map_err(|_| "proof header is not base64url")
    }

    /// The payload's JSON bytes.
    pub(crate) fn decode_payload(&self) -> Result<Vec<u8>, ProofError> {
        URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| "proof payload is not base64url")
    }

    /// The signature bytes; longer than any accepted algorithm's is refused.
    pub(crate) fn decode_signature(&self) -> Result<Signature, ProofError> {
        let mut sig = Signature {
            bytes: [0; MAX_SIGNATURE_LEN],
            len: 0,
        };
        sig.len = URL_SAFE_NO_PAD
            .decode_slice(self.signature, &mut sig.bytes)
            .map_err(|e| match e {
                base64::DecodeSliceError::OutputSliceTooSmall => "proof signature is too long",
                base64::DecodeSliceError::DecodeError(_) => "proof signature is not base64url",
            })?;
        Ok(sig)
    }
}

/// For `Option<Cow<str>>` fields: borrows from the input when the string has no escapes.
/// (serde's own `Option<Cow<str>>` allocates every string, `#[serde(borrow)]` or not.)
pub(crate) fn borrowed_str<'de: 'a, 'a, D>(d: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Str<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Str<'a>>::deserialize(d)?.map(|s| s.0))
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    alg: Option<Cow<'a, str>>,
    /// Kept as raw JSON text, parsed by [`parse_jwk`] without copying it.
    #[serde(borrow, default)]
    jwk: Option<&'a RawValue>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The checked header of a proof.
#[derive(Debug)]
pub(crate) struct ProofHeader<'a> {
    pub(crate) alg: Algorithm,
    /// The `jwk` member as JSON text, exactly as sent (checked by [`parse_jwk`]).
    pub(crate) jwk: &'a str,
}

/// Parses and checks a proof's `jwk` (public only, well formed, consistent with `alg`).
pub(crate) fn parse_jwk(jwk: &str, alg: Algorithm) -> Result<PublicJwk<'_>, Error> {
    let key = |reason| Error::new(ErrorKind::ProofKey, reason);
    let raw: RawJwk<'_> = serde_json::from_str(jwk)
        .map_err(|_| key("proof jwk is not a JSON object of the expected form"))?;
    let jwk = PublicJwk::from_raw(raw).map_err(key)?;
    if !jwk.fits(alg) {
        return Err(Error::new(
            ErrorKind::ProofAlgorithm,
            "proof alg does not match the jwk key type or curve",
        ));
    }
    Ok(jwk)
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    jti: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    htm: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    htu: Option<Cow<'a, str>>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    ath: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    nonce: Option<Cow<'a, str>>,
}

/// The checked claims of a proof, borrowing from the decoded payload.
#[derive(Debug)]
pub(crate) struct Claims<'a> {
    pub(crate) jti: Cow<'a, str>,
    pub(crate) htm: Cow<'a, str>,
    pub(crate) htu: Cow<'a, str>,
    pub(crate) iat: u64,
    pub(crate) ath: Cow<'a, str>,
    pub(crate) nonce: Option<Cow<'a, str>>,
}

impl Claims<'_> {
    pub(crate) fn to_owned_claims(&self) -> ProofClaims {
        ProofClaims {
            jti: self.jti.clone().into_owned(),
            htm: self.htm.clone().into_owned(),
            htu: self.htu.clone().into_owned(),
            iat: self.iat,
            ath: self.ath.clone().into_owned(),
            nonce: self.nonce.clone().map(Cow::into_owned),
        }
    }
}

/// Parses and checks the JOSE header: `typ`, `alg` (allow-listed, never `none` or MAC), a
/// `jwk` member (checked by [`parse_jwk`]), no `crit`.
pub(crate) fn parse_header<'h>(
    json: &'h [u8],
    allowed: &[Algorithm],
) -> Result<ProofHeader<'h>, Error> {
    let malformed = |reason| Error::new(ErrorKind::ProofMalformed, reason);
    let algorithm = |reason| Error::new(ErrorKind::ProofAlgorithm, reason);
    let raw: RawHeader<'_> = serde_json::from_slice(json)
        .map_err(|_| malformed("proof header is not a JSON object of the expected form"))?;
    match raw.typ.as_deref() {
        Some("dpop+jwt") => {}
        Some(_) => {
            return Err(Error::new(
                ErrorKind::ProofType,
                "proof typ is not dpop+jwt",
            ))
        }
        None => return Err(Error::new(ErrorKind::ProofType, "proof header has no typ")),
    }
    let alg = raw
        .alg
        .ok_or_else(|| algorithm("proof header has no alg"))?;
    let alg = Algorithm::from_name(&alg)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| algorithm("proof alg is not an accepted asymmetric algorithm"))?;
    if raw.crit.is_some() {
        return Err(malformed(
            "proof header has crit, and no extension is understood",
        ));
    }
    let jwk = raw
        .jwk
        .ok_or_else(|| Error::new(ErrorKind::ProofKey, "proof header has no jwk"))?
        .get();
    Ok(ProofHeader { alg, jwk })
}

/// Parses the claims and checks that every required claim is present and well typed.
pub(crate) fn parse_claims(json: &[u8]) -> Result<Claims<'_>, ProofError> {
    let raw: RawClaims<'_> = serde_json::from_slice(json)
        .map_err(|_| "proof claims are not a JSON object with claims of the right types")?;
    let jti = raw.jti.ok_or("proof has no jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err("proof jti is empty or too long");
    }
    let htm = raw.htm.ok_or("proof has no htm")?;
    let htu = raw.htu.ok_or("proof has no htu")?;
    let iat = raw.iat.ok_or("proof has no iat")?;
    if !(0.0..9.0e15).contains(&iat) {
        return Err("proof iat is out of range");
    }
    // NumericDate may carry a fraction; whole seconds are enough for the window.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let iat = iat.floor() as u64;
    let ath = raw.ath.ok_or("proof has no ath")?;
    Ok(Claims {
        jti,
        htm,
        htu,
        iat,
        ath,
        nonce: raw.nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    const JWK: &str = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
    const CLAIMS: &str = r#"{"jti":"j1","htm":"GET","htu":"https://a.example/x","iat":1700000000,"ath":"fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}"#;

    fn proof(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    fn header_err(header: &str) -> String {
        let p = proof(header, CLAIMS);
        let json = split(p.as_bytes()).unwrap().decode_header().unwrap();
        let e = match parse_header(&json, Algorithm::DEFAULT) {
            Err(e) => e,
            Ok(h) => parse_jwk(h.jwk, h.alg).unwrap_err(),
        };
        e.description().to_owned()
    }

    fn claims_err(claims: &str) -> ProofError {
        let h = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{JWK}}}"#);
        let p = proof(&h, claims);
        let json = split(p.as_bytes()).unwrap().decode_payload().unwrap();
        parse_claims(&json).unwrap_err()
    }

    #[test]
    fn structure() {
        for bad in ["", "a.b", "a.b.c.d", "..", "a..c", "a.b.", ".b.c", "a.b.c."] {
            assert_eq!(split(bad.as_bytes()).unwrap_err(), NOT_COMPACT, "{bad:?}");
        }
        let p = split(b"a!.YQ==.Y-_w").unwrap();
        assert_eq!(
            p.decode_header().unwrap_err(),
            "proof header is not base64url"
        );
        assert_eq!(
            p.decode_payload().unwrap_err(),
            "proof payload is not base64url"
        );
        assert_eq!(p.decode_signature().unwrap().as_bytes(), [0x63, 0xef, 0xf0]);
        let p = split(b"YQ.Yg.Yw=").unwrap();
        assert_eq!(p.decode_header().unwrap(), b"a");
        assert_eq!(p.decode_payload().unwrap(), b"b");
        assert_eq!(p.signing_input, b"YQ.Yg");
        assert_eq!(p.header, b"YQ");
        assert_eq!(
            p.decode_signature().err(),
            Some("proof signature is not base64url")
        );
    }

    /// A signature of the largest accepted size decodes; one byte more is refused.
    #[test]
    fn signature_size_bound() {
        let max = format!("e.p.{}", b64(&"s".repeat(MAX_SIGNATURE_LEN)));
        let sig = split(max.as_bytes()).unwrap().decode_signature().unwrap();
        assert_eq!(sig.as_bytes(), "s".repeat(MAX_SIGNATURE_LEN).as_bytes());
        let over = format!("e.p.{}", b64(&"s".repeat(MAX_SIGNATURE_LEN + 1)));
        assert_eq!(
            split(over.as_bytes()).unwrap().decode_signature().err(),
            Some("proof signature is too long")
        );
    }

    #[test]
    fn header_rules() {
        let cases = [
            (
                format!(r#"{{"alg":"ES256","jwk":{JWK}}}"#),
                "proof header has no typ",
            ),
            (
                format!(r#"{{"typ":"JWT","alg":"ES256","jwk":{JWK}}}"#),
                "proof typ is not dpop+jwt",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","jwk":{JWK}}}"#),
                "proof header has no alg",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"none","jwk":{JWK}}}"#),
                "proof alg is not an accepted asymmetric algorithm",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"HS256","jwk":{JWK}}}"#),
                "proof alg is not an accepted asymmetric algorithm",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"RS384","jwk":{JWK}}}"#),
                "proof alg is not an accepted asymmetric algorithm",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"PS256","jwk":{JWK}}}"#),
                "proof alg does not match the jwk key type or curve",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"RS256","jwk":{JWK}}}"#),
                "proof alg does not match the jwk key type or curve",
            ),
            (
                r#"{"typ":"dpop+jwt","alg":"ES256"}"#.to_owned(),
                "proof header has no jwk",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"ES256","crit":["exp"],"jwk":{JWK}}}"#),
                "proof header has crit, and no extension is understood",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{JWK}}}"#),
                "proof header is not a JSON object of the expected form",
            ),
            (
                format!(r#"{{"typ":1,"alg":"ES256","jwk":{JWK}}}"#),
                "proof header is not a JSON object of the expected form",
            ),
            (
                "[1,2]".to_owned(),
                "proof header is not a JSON object of the expected form",
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{JWK},"jwk":{JWK}}}"#),
                "proof header is not a JSON object of the expected form",
            ),
            (
                r#"{"typ":"dpop+jwt","alg":"ES256","jwk":"EC"}"#.to_owned(),
                "proof jwk is not a JSON object of the expected form",
            ),
            (
                format!(
                    r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#,
                    JWK.replacen(r#""kty":"EC","#, r#""kty":"EC","kty":"EC","#, 1)
                ),
                "proof jwk is not a JSON object of the expected form",
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(header_err(&header), expected, "{header}");
        }
        let ok = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{JWK},"kid":"ignored"}}"#);
        let p = proof(&ok, CLAIMS);
        let json = split(p.as_bytes()).unwrap().decode_header().unwrap();
        assert_eq!(
            parse_header(&json, Algorithm::DEFAULT).unwrap().alg,
            Algorithm::ES256
        );
        assert!(
            parse_header(&json, &[Algorithm::EdDSA]).is_err(),
            "allow-list is honoured"
        );
    }

    #[test]
    fn claim_rules() {
        let cases = [
            (
                r#"{"htm":"GET","htu":"https://a/","iat":1,"ath":"x"}"#,
                "proof has no jti",
            ),
            (
                r#"{"jti":"","htm":"GET","htu":"https://a/","iat":1,"ath":"x"}"#,
                "proof jti is empty or too long",
            ),
            (
                r#"{"jti":"j","htu":"https://a/","iat":1,"ath":"x"}"#,
                "proof has no htm",
            ),
            (
                r#"{"jti":"j","htm":"GET","iat":1,"ath":"x"}"#,
                "proof has no htu",
            ),
            (
                r#"{"jti":"j","htm":"GET","htu":"https://a/","ath":"x"}"#,
                "proof has no iat",
            ),
            (
                r#"{"jti":"j","htm":"GET","htu":"https://a/","iat":1}"#,
                "proof has no ath",
            ),
            (
                r#"{"jti":"j","htm":"GET","htu":"https://a/","iat":-5,"ath":"x"}"#,
                "proof iat is out of range",
            ),
            (
                r#"{"jti":"j","htm":"GET","htu":"https://a/","iat":"1","ath":"x"}"#,
                "proof claims are not a JSON object with claims of the right types",
            ),
            (
                r#"{"jti":7,"htm":"GET","htu":"https://a/","iat":1,"ath":"x"}"#,
                "proof claims are not a JSON object with claims of the right types",
            ),
            (
                r#"{"jti":"j","jti":"k","htm":"GET","htu":"https://a/","iat":1,"ath":"x"}"#,
                "proof claims are not a JSON object with claims of the right types",
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(claims_err(claims), expected, "{claims}");
        }
        let long = format!(
            r#"{{"jti":"{}","htm":"GET","htu":"https://a/","iat":1,"ath":"x"}}"#,
            "j".repeat(MAX_JTI_LEN + 1)
        );
        assert_eq!(claims_err(&long), "proof jti is empty or too long");
    }
    /// Claim strings borrow from the payload (no allocation per claim) unless they contain an
    /// escape, which is decoded; `null` is absent; duplicates are still refused.
    #[test]
    fn claim_strings_borrow_unless_escaped() {
        let c = parse_claims(CLAIMS.as_bytes()).unwrap();
        assert!(matches!(c.jti, Cow::Borrowed("j1")));
        assert!(matches!(c.htu, Cow::Borrowed("https://a.example/x")));
        let escaped = CLAIMS.replace("https://a.example/x", r"https:\/\/a.example\/x");
        let c = parse_claims(escaped.as_bytes()).unwrap();
        assert!(matches!(c.htu, Cow::Owned(ref s) if s == "https://a.example/x"));
        let with_null = CLAIMS.replace(r#""jti":"j1""#, r#""jti":"j1","nonce":null"#);
        assert!(parse_claims(with_null.as_bytes()).unwrap().nonce.is_none());
        let twice = CLAIMS.replace(r#""jti":"j1""#, r#""jti":"j1","nonce":"a","nonce":"b""#);
        assert!(parse_claims(twice.as_bytes()).is_err());
    }
}
