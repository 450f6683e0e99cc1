//! The one error type of the crate and its mapping to HTTP responses.
//!
//! Every rejection the layer makes is an [`Error`]. Each variant knows its HTTP status, its
//! RFC 6750 / RFC 9449 error code and a short, fixed description that is safe to send to the
//! client (it never contains the token, the proof or anything else taken from the request).

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

/// Why a request was rejected.
///
/// | variant | status | `error` in `WWW-Authenticate` |
/// |---|---|---|
/// | [`MissingCredentials`](Error::MissingCredentials) | 401 | none (bare challenge, RFC 6750 §3.1) |
/// | [`InvalidRequest`](Error::InvalidRequest) | 400 | `invalid_request` |
/// | [`InvalidProof`](Error::InvalidProof) | 401 | `invalid_dpop_proof` |
/// | [`InvalidToken`](Error::InvalidToken) | 401 | `invalid_token` |
/// | [`InvalidBearerToken`](Error::InvalidBearerToken) | 401 | `invalid_token`, in the `Bearer` challenge |
/// | [`UseNonce`](Error::UseNonce) | 401 | `use_dpop_nonce` |
/// | [`KeyQuotaExceeded`](Error::KeyQuotaExceeded) | 429, with `Retry-After` | none |
/// | [`Unavailable`](Error::Unavailable) | 503 | none |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The request carries no access token at all (or one under a scheme this layer does not
    /// accept). Answered with a bare challenge, without an error code.
    MissingCredentials,
    /// The request is malformed at the HTTP level: repeated `Authorization` or `DPoP` fields,
    /// or a value that does not follow the header syntax.
    InvalidRequest(&'static str),
    /// The DPoP proof failed one of the checks of RFC 9449 section 4.3.
    InvalidProof(&'static str),
    /// The access token is invalid, expired, not bound to a key, or bound to another key.
    InvalidToken(Cow<'static, str>),
    /// A token presented under the `Bearer` scheme (when the layer accepts Bearer) is invalid,
    /// or is DPoP-bound and so may only be used with a proof (RFC 9449 section 7.2).
    InvalidBearerToken(Cow<'static, str>),
    /// The proof lacks a valid server nonce; the response carries a fresh `DPoP-Nonce`.
    UseNonce(&'static str),
    /// The proof's key holds as many live replay entries as one key may (see
    /// [`replay_key_quota`](crate::DpopLayerBuilder::replay_key_quota)); its next proof is
    /// accepted once the oldest entry leaves the replay window, after the given time (sent as
    /// `Retry-After`, in whole seconds rounded up). Only that key is refused.
    KeyQuotaExceeded(std::time::Duration),
    /// A backend (replay store, key set, introspection) could not answer, so the request is
    /// rejected rather than let through (fail closed).
    Unavailable(Cow<'static, str>),
}

impl Error {
    /// The HTTP status this rejection is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::KeyQuotaExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingCredentials
            | Self::InvalidProof(_)
            | Self::InvalidToken(_)
            | Self::InvalidBearerToken(_)
            | Self::UseNonce(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `error` parameter of the challenge, if any.
    #[must_use]
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingCredentials | Self::KeyQuotaExceeded(_) | Self::Unavailable(_) => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidProof(_) => Some("invalid_dpop_proof"),
            Self::InvalidToken(_) | Self::InvalidBearerToken(_) => Some("invalid_token"),
            Self::UseNonce(_) => Some("use_dpop_nonce"),
        }
    }

    /// A short human-readable reason, safe to send to the client and to log.
    #[must_use]
    pub fn description(&self) -> &str {
        match self {
            Self::MissingCredentials => "no DPoP credentials in the request",
            Self::KeyQuotaExceeded(_) => "too many proofs from this key; retry later",
            Self::InvalidRequest(d) | Self::InvalidProof(d) | Self::UseNonce(d) => d,
            Self::InvalidToken(d) | Self::InvalidBearerToken(d) | Self::Unavailable(d) => d,
        }
    }

    /// `true` for a proof failure (`invalid_dpop_proof`).
    #[must_use]
    pub fn is_invalid_proof(&self) -> bool {
        matches!(self, Self::InvalidProof(_))
    }

    /// `true` for a token failure (`invalid_token`).
    #[must_use]
    pub fn is_invalid_token(&self) -> bool {
        matches!(self, Self::InvalidToken(_) | Self::InvalidBearerToken(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_code() {
            Some(code) => write!(f, "{code}: {}", self.description()),
            None => f.write_str(self.description()),
        }
    }
}

impl std::error::Error for Error {}

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
    fn status_and_code_per_variant() {
        struct Case {
            error: Error,
            status: StatusCode,
            code: Option<&'static str>,
        }
        let cases = [
            Case {
                error: Error::MissingCredentials,
                status: StatusCode::UNAUTHORIZED,
                code: None,
            },
            Case {
                error: Error::InvalidRequest("x"),
                status: StatusCode::BAD_REQUEST,
                code: Some("invalid_request"),
            },
            Case {
                error: Error::InvalidProof("x"),
                status: StatusCode::UNAUTHORIZED,
                code: Some("invalid_dpop_proof"),
            },
            Case {
                error: Error::InvalidToken("x".into()),
                status: StatusCode::UNAUTHORIZED,
                code: Some("invalid_token"),
            },
            Case {
                error: Error::UseNonce("x"),
                status: StatusCode::UNAUTHORIZED,
                code: Some("use_dpop_nonce"),
            },
            Case {
                error: Error::Unavailable("x".into()),
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: None,
            },
        ];
        for case in cases {
            assert_eq!(case.error.status(), case.status, "{:?}", case.error);
            assert_eq!(case.error.error_code(), case.code, "{:?}", case.error);
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
    fn kind_predicates() {
        let all = [
            Error::MissingCredentials,
            Error::InvalidRequest("x"),
            Error::InvalidProof("x"),
            Error::InvalidToken("x".into()),
            Error::InvalidBearerToken("x".into()),
            Error::UseNonce("x"),
            Error::Unavailable("x".into()),
        ];
        let proof: Vec<bool> = all.iter().map(Error::is_invalid_proof).collect();
        let token: Vec<bool> = all.iter().map(Error::is_invalid_token).collect();
        assert_eq!(proof, [false, false, true, false, false, false, false]);
        assert_eq!(token, [false, false, false, true, true, false, false]);
    }

    #[test]
    fn display_is_code_then_description() {
        assert_eq!(
            Error::InvalidProof("proof iat is too old").to_string(),
            "invalid_dpop_proof: proof iat is too old"
        );
        assert_eq!(
            Error::MissingCredentials.to_string(),
            "no DPoP credentials in the request"
        );
        assert_eq!(
            Error::Unavailable("replay store is unavailable".into()).to_string(),
            "replay store is unavailable"
        );
    }
}
