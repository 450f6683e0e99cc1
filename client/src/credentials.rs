//! What signs a request: a key and, usually, an access token bound to it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Error;
use crate::key::DpopKey;

/// The future of [`CredentialSource::credentials`].
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, Error>> + Send + 'a>>;

/// A key and the access token bound to it (`None` to send proofs without a token, as to a
/// token endpoint). `Debug` never shows the token.
#[derive(Clone)]
pub struct Credentials {
    key: Arc<DpopKey>,
    access_token: Option<Arc<str>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// A key and a token bound to it.
    #[must_use]
    pub fn new(key: impl Into<Arc<DpopKey>>, access_token: impl Into<Arc<str>>) -> Self {
        Self {
            key: key.into(),
            access_token: Some(access_token.into()),
        }
    }

    /// A key alone: requests carry a proof and no `Authorization`.
    #[must_use]
    pub fn key_only(key: impl Into<Arc<DpopKey>>) -> Self {
        Self {
            key: key.into(),
            access_token: None,
        }
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &Arc<DpopKey> {
        &self.key
    }

    /// The access token.
    #[must_use]
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }
}

/// Where a client takes its [`Credentials`] for each request: fixed ones
/// ([`Credentials`] itself), or a [`TokenClient`](crate::TokenClient) that obtains and
/// renews a token bound to its key. Key and token come together, so a rotated key is never
/// sent with a token bound to the old one.
pub trait CredentialSource: Send + Sync + 'static {
    /// The key and token for the next request.
    fn credentials(&self) -> CredentialsFuture<'_>;
}

impl CredentialSource for Credentials {
    fn credentials(&self) -> CredentialsFuture<'_> {
        let c = self.clone();
        Box::pin(async move { Ok(c) })
    }
}

impl<T: CredentialSource + ?Sized> CredentialSource for Arc<T> {
    fn credentials(&self) -> CredentialsFuture<'_> {
        (**self).credentials()
    }
}
