//! The one error type of the crate, its stable kinds, and the configuration error.
//!
//! Every rejection is an [`Error`]: match on [`Error::kind`] (an [`ErrorKind`], stable and
//! `#[non_exhaustive]`), never on the description, which is for people. Each kind knows its
//! HTTP status and its RFC 6750 / RFC 9449 error code; the description is a short fixed text,
//! safe to send to the client (it never contains the token, the proof or anything else taken
//! from the request). A backend failure keeps its cause as [`source`](std::error::Error::source).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What went wrong, as a stable reason to match on.
///
/// | kinds | status | `error` in `WWW-Authenticate` |
/// |---|---|---|
/// | [`MissingCredentials`](Self::MissingCredentials) | 401 | none (bare challenge, RFC 6750 §3.1) |
/// | [`MalformedRequest`](Self::MalformedRequest), [`ForwardedOrigin`](Self::ForwardedOrigin) | 400 | `invalid_request` |
/// | `Proof*` | 401 | `invalid_dpop_proof` |
/// | [`NonceRequired`](Self::NonceRequired), [`NonceInvalid`](Self::NonceInvalid) | 401 | `use_dpop_nonce` |
/// | `Token*`, [`DpopRequired`](Self::DpopRequired) | 401 | `invalid_token` |
/// | [`KeyQuotaExceeded`](Self::KeyQuotaExceeded) | 429, with `Retry-After` | none |
/// | [`Unavailable`](Self::Unavailable) | 503 | none |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No access token at all (or one under a scheme this layer does not accept).
    MissingCredentials,
    /// The request is malformed at the HTTP level: repeated `Authorization` or `DPoP` fields,
    /// or a value that does not follow the header syntax.
    MalformedRequest,
    /// A request from a trusted proxy that does not report a configured public origin, or
    /// reports it in a malformed or mixed way.
    ForwardedOrigin,
    /// No `DPoP` header with a DPoP-scheme token.
    ProofMissing,
    /// The `DPoP` header is larger than `max_proof_size`.
    ProofTooLarge,
    /// The proof is not a compact JWS with a JSON header and claims of the right types, or a
    /// required claim is missing.
    ProofMalformed,
    /// The proof's `typ` is not `dpop+jwt`.
    ProofType,
    /// The proof's `alg` is not accepted, or does not fit its key.
    ProofAlgorithm,
    /// The proof's `jwk` is not a valid public key within the bounds.
    ProofKey,
    /// `htm` is not the request method.
    ProofMethod,
    /// `htu` is not the request URI under a public origin.
    ProofUri,
    /// `iat` is older than `max_proof_age`.
    ProofTooOld,
    /// `iat` is further ahead than `future_leeway`.
    ProofFromTheFuture,
    /// `ath` is not the SHA-256 of the access token.
    ProofTokenHash,
    /// The proof's signature does not verify with its `jwk`.
    ProofSignature,
    /// The proof's `jti` was already used with this key.
    ProofReplayed,
    /// The nonce policy requires a nonce and the proof has none.
    NonceRequired,
    /// The proof's nonce is not one this server issued, or has expired.
    NonceInvalid,
    /// The access token is larger than `max_token_size`.
    TokenTooLarge,
    /// The token validator refused the token (signature, issuer, audience, form, revoked...).
    TokenInvalid,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The token's `nbf` is still ahead.
    TokenNotYetValid,
    /// The token under the `DPoP` scheme carries no `cnf.jkt`.
    TokenNotBound,
    /// The token's `cnf.jkt` is not the thumbprint of the proof's key.
    TokenKeyMismatch,
    /// A sender-constrained token (any `cnf`) presented under `Bearer`.
    TokenSenderConstrained,
    /// The token's claims do not have the form the handler asked for (from the extractor).
    TokenClaims,
    /// A Bearer request reached a handler that needs a DPoP-bound token (from the extractor).
    DpopRequired,
    /// The proof's key holds as many live replay entries as one key may.
    KeyQuotaExceeded,
    /// A backend (replay store, key set, introspection) could not answer: refused rather than
    /// let through.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status this kind is answered with.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest | Self::ForwardedOrigin => StatusCode::BAD_REQUEST,
            Self::KeyQuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `error` parameter of the challenge, if any.
    #[must_use]
    pub fn error_code(self) -> Option<&'static str> {
        Some(match self {
            Self::MissingCredentials | Self::KeyQuotaExceeded | Self::Unavailable => return None,
            Self::MalformedRequest | Self::ForwardedOrigin => "invalid_request",
            Self::NonceRequired | Self::NonceInvalid => "use_dpop_nonce",
            Self::TokenTooLarge
            | Self::TokenInvalid
            | Self::TokenExpired
            | Self::TokenNotYetValid
            | Self::TokenNotBound
            | Self::TokenKeyMismatch
            | Self::TokenSenderConstrained
            | Self::TokenClaims
            | Self::DpopRequired => "invalid_token",
            Self::ProofMissing
            | Self::ProofTooLarge
            | Self::ProofMalformed
            | Self::ProofType
            | Self::ProofAlgorithm
            | Self::ProofKey
            | Self::ProofMethod
            | Self::ProofUri
            | Self::ProofTooOld
            | Self::ProofFromTheFuture
            | Self::ProofTokenHash
            | Self::ProofSignature
            | Self::ProofReplayed => "invalid_dpop_proof",
        })
    }
}

/// The authentication scheme a rejection concerns: its error goes in that scheme's challenge
/// (RFC 9449 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `Authorization: DPoP`, or no scheme at all.
    Dpop,
    /// `Authorization: Bearer` (only when the layer accepts Bearer).
    Bearer,
}

/// Why a request was rejected. See [`ErrorKind`].
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    scheme: Scheme,
    description: Cow<'static, str>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of this kind, with a short description safe to send to the client (for a
    /// framework that adds checks of its own and answers them with
    /// [`DpopLayer::rejection`](crate::DpopLayer::rejection), or for tests).
    pub fn new(kind: ErrorKind, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            scheme: Scheme::Dpop,
            description: description.into(),
            retry_after: None,
            source: None,
        }
    }

    /// An error with a fixed description, for constants.
    pub(crate) const fn fixed(kind: ErrorKind, description: &'static str) -> Self {
        Self {
            kind,
            scheme: Scheme::Dpop,
            description: Cow::Borrowed(description),
            retry_after: None,
            source: None,
        }
    }

    /// The same error, about a Bearer request: its error goes in the `Bearer` challenge.
    #[must_use]
    pub fn bearer(mut self) -> Self {
        self.scheme = Scheme::Bearer;
        self
    }

    /// The same error, with its cause.
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// A key over its quota; another proof is accepted after `wait`.
    pub(crate) fn key_quota_exceeded(wait: Duration) -> Self {
        let mut e = Self::new(
            ErrorKind::KeyQuotaExceeded,
            "too many proofs from this key; retry later",
        );
        e.retry_after = Some(wait);
        e
    }

    /// The stable reason.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The scheme the request used (the challenge its error goes in).
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The HTTP status this rejection is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The `error` parameter of the challenge, if any.
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        self.kind.error_code()
    }

    /// A short human-readable reason, safe to send to the client and to log.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }

    /// For [`ErrorKind::KeyQuotaExceeded`]: how long until the key may send another proof
    /// (sent as `Retry-After`, whole seconds rounded up).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// Two errors are equal when their kind, scheme, description and `retry_after` are (the
/// source is not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.scheme == other.scheme
            && self.description == other.description
            && self.retry_after == other.retry_after
    }
}

impl Eq for Error {}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("scheme", &self.scheme)
            .field("description", &self.description);
        if let Some(wait) = self.retry_after {
            d.field("retry_after", &wait);
        }
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_code() {
            Some(code) => write!(f, "{code}: {}", self.description),
            None => f.write_str(&self.description),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A configuration mistake found by a `build` method: which setting is wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: Option<&'static str>,
    message: Cow<'static, str>,
}

impl ConfigError {
    /// A mistake not tied to one setting.
    pub(crate) fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            setting: None,
            message: message.into(),
        }
    }

    /// A mistake in the setting named `setting` (the builder method's name).
    pub(crate) fn setting(setting: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            setting: Some(setting),
            message: message.into(),
        }
    }

    /// The builder method whose value is wrong or missing, when the mistake is one setting's.
    #[must_use]
    pub fn setting_name(&self) -> Option<&'static str> {
        self.setting
    }

    /// What is wrong and what to do, in a sentence.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.setting {
            Some(s) => write!(f, "invalid DPoP configuration: {s}: {}", self.message),
            None => write!(f, "invalid DPoP configuration: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Makes a string safe to place inside an RFC 9110 quoted-string: printable ASCII only, without
/// `"` or `\`, and at most 200 bytes. Descriptions are fixed strings in this crate, but token
/// validators written by users may return anything.
pub(crate) fn sanitize_description(input: &str) -> Cow<'_, str> {
    const MAX: usize = 200;
    let clean = input.len() <= MAX
        && input
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if clean {
        return Cow::Borrowed(input);
    }
    let mut out: String = input
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .take(MAX)
        .collect();
    if out.is_empty() {
        out.push_str("invalid");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_code_per_kind() {
        use ErrorKind::*;
        let cases = [
            (MissingCredentials, 401, None),
            (MalformedRequest, 400, Some("invalid_request")),
            (ForwardedOrigin, 400, Some("invalid_request")),
            (ProofMissing, 401, Some("invalid_dpop_proof")),
            (ProofTooLarge, 401, Some("invalid_dpop_proof")),
            (ProofMalformed, 401, Some("invalid_dpop_proof")),
            (ProofType, 401, Some("invalid_dpop_proof")),
            (ProofAlgorithm, 401, Some("invalid_dpop_proof")),
            (ProofKey, 401, Some("invalid_dpop_proof")),
            (ProofMethod, 401, Some("invalid_dpop_proof")),
            (ProofUri, 401, Some("invalid_dpop_proof")),
            (ProofTooOld, 401, Some("invalid_dpop_proof")),
            (ProofFromTheFuture, 401, Some("invalid_dpop_proof")),
            (ProofTokenHash, 401, Some("invalid_dpop_proof")),
            (ProofSignature, 401, Some("invalid_dpop_proof")),
            (ProofReplayed, 401, Some("invalid_dpop_proof")),
            (NonceRequired, 401, Some("use_dpop_nonce")),
            (NonceInvalid, 401, Some("use_dpop_nonce")),
            (TokenTooLarge, 401, Some("invalid_token")),
            (TokenInvalid, 401, Some("invalid_token")),
            (TokenExpired, 401, Some("invalid_token")),
            (TokenNotYetValid, 401, Some("invalid_token")),
            (TokenNotBound, 401, Some("invalid_token")),
            (TokenKeyMismatch, 401, Some("invalid_token")),
            (TokenSenderConstrained, 401, Some("invalid_token")),
            (TokenClaims, 401, Some("invalid_token")),
            (DpopRequired, 401, Some("invalid_token")),
            (KeyQuotaExceeded, 429, None),
            (Unavailable, 503, None),
        ];
        for (kind, status, code) in cases {
            let e = Error::new(kind, "x");
            assert_eq!(e.status().as_u16(), status, "{kind:?}");
            assert_eq!(e.error_code(), code, "{kind:?}");
            assert_eq!(e.kind(), kind);
        }
    }

    #[test]
    fn sanitize_strips_quotes_controls_and_bounds_length() {
        assert_eq!(sanitize_description("plain text"), "plain text");
        assert_eq!(sanitize_description("a\"b\\c\nd"), "abcd");
        assert_eq!(sanitize_description("\u{7f}é"), "invalid");
        assert_eq!(sanitize_description(&"x".repeat(500)).len(), 200);
        // Inputs made only of the characters the fast path must refuse.
        assert_eq!(sanitize_description("\"\""), "invalid");
        assert_eq!(sanitize_description("\\\\"), "invalid");
        assert!(matches!(sanitize_description("ok"), Cow::Borrowed("ok")));
    }

    #[test]
    fn display_source_scheme_and_retry_after() {
        assert_eq!(
            Error::new(ErrorKind::ProofTooOld, "proof iat is too old").to_string(),
            "invalid_dpop_proof: proof iat is too old"
        );
        assert_eq!(
            Error::new(
                ErrorKind::MissingCredentials,
                "no DPoP credentials in the request"
            )
            .to_string(),
            "no DPoP credentials in the request"
        );
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "redis timed out");
        let e =
            Error::new(ErrorKind::Unavailable, "replay store is unavailable").with_source(cause);
        assert_eq!(e.to_string(), "replay store is unavailable");
        let source = std::error::Error::source(&e).expect("cause kept");
        assert_eq!(source.to_string(), "redis timed out");
        assert!(format!("{e:?}").contains("redis timed out"));
        let bearer = Error::new(ErrorKind::TokenSenderConstrained, "x").bearer();
        assert_eq!(bearer.scheme(), Scheme::Bearer);
        assert_eq!(
            Error::new(ErrorKind::TokenInvalid, "x").scheme(),
            Scheme::Dpop
        );
        let quota = Error::key_quota_exceeded(Duration::from_millis(1500));
        assert_eq!(quota.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(quota.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn config_errors_name_the_setting() {
        let e = ConfigError::setting("max_proof_age", "must be between 1 s and 1 h");
        assert_eq!(e.setting_name(), Some("max_proof_age"));
        assert_eq!(
            e.to_string(),
            "invalid DPoP configuration: max_proof_age: must be between 1 s and 1 h"
        );
        let general = ConfigError::new("no token validator");
        assert_eq!(general.setting_name(), None);
        assert_eq!(general.message(), "no token validator");
    }
}
