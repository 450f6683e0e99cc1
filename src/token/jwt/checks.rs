//! What is checked of an access token before its signature, in this order: size, compact form,
//! JOSE header (`crit`, `typ`, `alg`), then the claims that do not change with time (`iss`,
//! `aud`, `exp` present). All of it costs a base64 decode and a JSON parse of at most
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

impl Policy {
    /// Runs the checks that come before the signature.
    pub(super) fn check<'t>(&self, token: &'t str) -> Result<Checked<'t>, TokenError> {
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
        if !self.typ_ok(header.typ.as_deref()) {
            return Err(invalid("access token typ is not at+jwt"));
        }
        let alg = header
            .alg
            .as_deref()
            .and_then(Algorithm::from_name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| invalid("access token alg is not accepted"))?;

        let claims: Map<String, Value> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(|| invalid("access token claims are malformed"))?;
        self.check_claims(&claims)?;
        Ok(Checked {
            alg,
            kid: header.kid.map(Cow::into_owned),
            signing_input,
            signature,
            claims,
        })
    }

    /// RFC 9068 `at+jwt` (either spelling, any case); `JWT` or none unless strict.
    fn typ_ok(&self, typ: Option<&str>) -> bool {
        match typ {
            Some(t) if t.eq_ignore_ascii_case("at+jwt") => true,
            Some(t) if t.eq_ignore_ascii_case("application/at+jwt") => true,
            Some(t) if t.eq_ignore_ascii_case("jwt") => !self.strict_typ,
            None => !self.strict_typ,
            Some(_) => false,
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
