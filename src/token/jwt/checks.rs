//! What is checked of an access token before its signature, in this order: size, compact form,
//! JOSE header and claims decoded (`crit` refused) by [`parse`]; then, once `iss` selected the
//! issuer's [`Policy`], [`Policy::admit`]: `typ`, `alg`, and the claims that do not change with
//! time (`iss`, `aud`, `exp` present). All of it costs a base64 decode and a JSON parse of at most
//! `MAX_TOKEN_LEN` bytes; the one signature check comes after, in [`Checked::verify`].

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::MAX_TOKEN_LEN;
use crate::proof::algorithm::Algorithm;
use crate::proof::key::VerifyingKey;
use crate::token::expect::Expected;
use crate::token::{AccessToken, TokenError};

/// The message for a token whose signature does not verify, or whose key is not in the set.
pub(super) const BAD_SIGNATURE: &str = "access token signature is invalid or its key is unknown";

/// What a token must satisfy, from the builder.
#[derive(Debug)]
pub(super) struct Policy {
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) strict_typ: bool,
    pub(super) expected: Expected,
    pub(super) require_exp: bool,
}

/// The JOSE header. Known members are typed, so a repeated one is a parse error.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::proof::borrowed_str")]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The JOSE `typ` of a token, classified (RFC 7515 §4.1.9: compared without case, an
/// `application/` prefix being optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Typ {
    /// `at+jwt`, RFC 9068 §2.1.
    AtJwt,
    /// `JWT`, RFC 7519 §5.1: what many authorization servers still put on access tokens.
    Jwt,
    /// No `typ`.
    Absent,
    /// `application/okta-internal-at+jwt`: a token of an Okta org authorization server.
    OktaInternal,
    /// `dpop+jwt`: a DPoP proof sent where the access token belongs.
    DpopProof,
    /// Anything else: a JWT of another kind.
    Other,
}

impl Typ {
    fn classify(typ: Option<&str>) -> Self {
        let Some(typ) = typ else {
            return Self::Absent;
        };
        let media = match typ.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => {
                typ.get(12..).unwrap_or_default()
            }
            _ => typ,
        };
        [
            ("at+jwt", Self::AtJwt),
            ("jwt", Self::Jwt),
            ("okta-internal-at+jwt", Self::OktaInternal),
            ("dpop+jwt", Self::DpopProof),
        ]
        .into_iter()
        .find(|(name, _)| media.eq_ignore_ascii_case(name))
        .map_or(Self::Other, |(_, class)| class)
    }
}

/// A token split and decoded, its header and claims read, nothing checked against a policy
/// yet: what selects the issuer whose policy and keys apply.
#[derive(Debug)]
pub(super) struct Parsed<'t> {
    typ: Typ,
    /// `None`: absent, or not the name of an asymmetric algorithm.
    alg: Option<Algorithm>,
    kid: Option<String>,
    signing_input: &'t str,
    signature: &'t str,
    claims: Map<String, Value>,
}

/// A token that passed every check but its signature.
#[derive(Debug)]
pub(super) struct Checked<'t> {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<String>,
    signing_input: &'t str,
    signature: &'t str,
    claims: Map<String, Value>,
}

fn invalid(reason: &'static str) -> TokenError {
    TokenError::invalid(reason)
}

/// Splits and decodes a token: size, compact form, the JOSE header (`crit` refused) and the
/// claims, a JSON object. Bounded by `MAX_TOKEN_LEN` before anything is decoded.
pub(super) fn parse(token: &str) -> Result<Parsed<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("access token is too large"));
    }
    let not_jws = || invalid("access token is not a signed JWT");
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(not_jws());
    };
    let header = token.get(..first).unwrap_or_default();
    let payload = token.get(first + 1..second).unwrap_or_default();
    let signature = token.get(second + 1..).unwrap_or_default();
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(not_jws());
    }
    let signing_input = token.get(..second).unwrap_or_default();

    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| invalid("access token header is malformed"))?;
    let header: Header<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| invalid("access token header is malformed"))?;
    if header.crit.is_some() {
        return Err(invalid("access token has unsupported crit"));
    }
    let claims: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| invalid("access token claims are malformed"))?;
    Ok(Parsed {
        typ: Typ::classify(header.typ.as_deref()),
        alg: header.alg.as_deref().and_then(Algorithm::from_name),
        kid: header.kid.map(Cow::into_owned),
        signing_input,
        signature,
        claims,
    })
}

impl Parsed<'_> {
    /// The `iss` claim when it is a string (not yet verified: it only selects the issuer
    /// whose keys may verify the token).
    pub(super) fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

impl Policy {
    /// `true` when this policy accepts tokens of issuer `iss`.
    pub(super) fn accepts_issuer(&self, iss: Option<&str>) -> bool {
        self.expected.accepts_issuer(iss)
    }

    /// Checks a parsed token against this policy: `typ`, `alg` on the allow-list, then the
    /// claims that do not change with time.
    pub(super) fn admit<'t>(&self, parsed: Parsed<'t>) -> Result<Checked<'t>, TokenError> {
        self.check_typ(parsed.typ)?;
        let alg = parsed
            .alg
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| invalid("access token alg is not accepted"))?;
        self.check_claims(&parsed.claims)?;
        Ok(Checked {
            alg,
            kid: parsed.kid,
            signing_input: parsed.signing_input,
            signature: parsed.signature,
            claims: parsed.claims,
        })
    }

    /// RFC 9068 `at+jwt`; `JWT` or none unless strict; anything else refused, saying why.
    fn check_typ(&self, typ: Typ) -> Result<(), TokenError> {
        match typ {
            Typ::AtJwt => Ok(()),
            Typ::Jwt | Typ::Absent if !self.strict_typ => Ok(()),
            Typ::Jwt | Typ::Absent => Err(invalid(
                "access token typ is not at+jwt (RFC 9068 section 2.1), which this validator requires",
            )),
            Typ::OktaInternal => Err(invalid(
                "access token typ is application/okta-internal-at+jwt: a token of an Okta org \
                 authorization server, which Okta does not support validating outside Okta; \
                 use a custom authorization server",
            )),
            Typ::DpopProof => Err(invalid(
                "access token typ is dpop+jwt: a DPoP proof, not an access token",
            )),
            Typ::Other => Err(invalid(
                "access token typ is neither at+jwt nor JWT: the JWT is not an access token",
            )),
        }
    }

    /// `iss` and `aud` as configured, `exp` present unless allowed absent.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), TokenError> {
        self.expected.check(claims)?;
        if self.require_exp && !claims.contains_key("exp") {
            return Err(invalid("access token has no exp"));
        }
        Ok(())
    }
}

impl Checked<'_> {
    /// The one signature check, with the key the set chose; then the claims, typed.
    pub(super) fn verify(self, key: &VerifyingKey) -> Result<AccessToken, TokenError> {
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| invalid(BAD_SIGNATURE))?;
        if !key.verify(self.signing_input.as_bytes(), &signature) {
            return Err(invalid(BAD_SIGNATURE));
        }
        AccessToken::from_claims(self.claims)
    }
}
