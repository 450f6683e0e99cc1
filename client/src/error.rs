//! The crate's one error type.

use std::borrow::Cow;
use std::fmt;

/// A boxed error, the error type of [`DpopClient`](crate::DpopClient) (as in Tower).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong, stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A key could not be generated or loaded, or does not fit its algorithm.
    Key,
    /// Signing a proof failed, or the random generator did not answer.
    Signing,
    /// The request URI is not an absolute `http` or `https` URI, so it has no `htu`.
    Uri,
    /// The HTTP exchange failed (connection, or a response too large to read).
    Transport,
    /// The token endpoint refused the request (see [`Error::oauth_error`]).
    TokenEndpoint,
    /// The token endpoint issued a token whose `token_type` is not `DPoP`.
    TokenType,
    /// The token endpoint's answer is not a token response this client can use.
    InvalidTokenResponse,
}

/// An error of this crate: a [`kind`](Self::kind), a message and, where another library
/// failed, its error as [`source`](std::error::Error::source). Messages never contain a key,
/// a token, a proof or a secret.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    oauth_error: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            oauth_error: None,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn with_oauth_error(mut self, code: String) -> Self {
        self.oauth_error = Some(code);
        self
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The OAuth `error` code of a token endpoint's refusal (`invalid_client`,
    /// `invalid_grant`, `use_dpop_nonce`, ...), for [`ErrorKind::TokenEndpoint`].
    #[must_use]
    pub fn oauth_error(&self) -> Option<&str> {
        self.oauth_error.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.oauth_error {
            write!(f, " ({code})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Self::new(ErrorKind::Signing, "OpenSSL failed").with_source(e)
    }
}
