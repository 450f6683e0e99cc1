//! The signing and nonce handling that the Tower layer, the reqwest client and the token
//! client share.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use crate::clock::{Clock, SystemClock};
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind};
use crate::nonce::{is_use_dpop_nonce, NonceCache};
use crate::proof::origin;

/// The `DPoP` request header.
pub const DPOP: http::HeaderName = http::HeaderName::from_static("dpop");

#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) nonces: NonceCache,
}

impl Default for Signer {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            nonces: NonceCache::new(),
        }
    }
}

impl Signer {
    /// Sets `DPoP` (a fresh proof with the origin's nonce) and, with a token,
    /// `Authorization: DPoP <token>` on a request head. Returns the request's origin.
    pub(crate) fn sign(
        &self,
        credentials: &Credentials,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
    ) -> Result<String, Error> {
        let origin = origin(uri)?;
        let nonce = self.nonces.get(&origin);
        let mut proof = credentials
            .key()
            .proof(method, uri)?
            .clock(&*self.clock)
            .nonce(nonce.as_deref());
        if let Some(token) = credentials.access_token() {
            proof = proof.access_token(token);
            let value = HeaderValue::try_from(format!("DPoP {token}")).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidTokenResponse,
                    "the access token is not a header value",
                )
            })?;
            headers.insert(AUTHORIZATION, value);
        }
        let proof = HeaderValue::try_from(proof.sign()?)
            .map_err(|_| Error::new(ErrorKind::Signing, "the proof is not a header value"))?;
        headers.insert(DPOP, proof);
        Ok(origin)
    }

    /// Remembers a response's `DPoP-Nonce`; whether the response is a resource server's
    /// `use_dpop_nonce` challenge that came with a nonce to answer it.
    pub(crate) fn observe(&self, origin: &str, status: StatusCode, headers: &HeaderMap) -> bool {
        let stored = self.nonces.remember_from(origin, headers);
        stored && is_use_dpop_nonce(status, headers)
    }
}

/// What a DPoP client did for a request, in the response's extensions.
///
/// ```
/// # use tower_dpop_client::DpopOutcome;
/// # let response = http::Response::new(());
/// if let Some(outcome) = response.extensions().get::<DpopOutcome>() {
///     println!("retried: {}", outcome.retried());
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopOutcome {
    pub(crate) retried: bool,
    pub(crate) nonce_challenge: bool,
}

impl DpopOutcome {
    /// Whether the request was sent a second time, with the nonce the server asked for.
    #[must_use]
    pub fn retried(&self) -> bool {
        self.retried
    }

    /// Whether the response handed back is still a `use_dpop_nonce` challenge: the body
    /// could not be replayed (a streamed body), or the retry was refused again. The nonce
    /// is remembered, so the next request carries it.
    #[must_use]
    pub fn nonce_challenge(&self) -> bool {
        self.nonce_challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    type Case = (
        &'static str,
        StatusCode,
        &'static [(&'static str, &'static str)],
        bool,
        Option<&'static str>,
    );

    /// A retry is asked for only by a `use_dpop_nonce` challenge that brings a usable nonce;
    /// a nonce is remembered from any response.
    #[test]
    fn observe_table() {
        const CHALLENGE: (&str, &str) = ("www-authenticate", r#"DPoP error="use_dpop_nonce""#);
        let cases: &[Case] = &[
            (
                "challenge with nonce",
                StatusCode::UNAUTHORIZED,
                &[CHALLENGE, ("dpop-nonce", "n1")],
                true,
                Some("n1"),
            ),
            (
                "challenge without nonce",
                StatusCode::UNAUTHORIZED,
                &[CHALLENGE],
                false,
                None,
            ),
            (
                "challenge with an invalid nonce",
                StatusCode::UNAUTHORIZED,
                &[CHALLENGE, ("dpop-nonce", "a b")],
                false,
                None,
            ),
            (
                "success with nonce",
                StatusCode::OK,
                &[("dpop-nonce", "n2")],
                false,
                Some("n2"),
            ),
            (
                "other 401 with nonce",
                StatusCode::UNAUTHORIZED,
                &[
                    ("www-authenticate", r#"DPoP error="invalid_token""#),
                    ("dpop-nonce", "n3"),
                ],
                false,
                Some("n3"),
            ),
        ];
        for (name, status, pairs, retry, kept) in cases {
            let signer = Signer::default();
            assert_eq!(
                signer.observe("https://o", *status, &headers(pairs)),
                *retry,
                "{name}"
            );
            assert_eq!(signer.nonces.get("https://o").as_deref(), *kept, "{name}");
        }
    }
}
