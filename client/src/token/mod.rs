//! DPoP-bound access tokens from a token endpoint (RFC 9449 section 5): client credentials
//! with `client_secret_basic`, refresh tokens, the authorization server's nonce, and a cache.

mod grant;
mod transport;

pub use grant::TokenResponse;
pub use transport::{ServiceTransport, TokenTransport, TransportFuture, MAX_RESPONSE_LEN};

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use http::Uri;

use crate::clock::Clock;
use crate::credentials::{CredentialSource, Credentials, CredentialsFuture};
use crate::error::{Error, ErrorKind};
use crate::key::DpopKey;
use crate::nonce::NonceCache;
use crate::sign::Signer;

/// How long before its `expires_in` runs out a cached token is replaced, by default.
pub const DEFAULT_REFRESH_MARGIN_SECS: u64 = 30;

/// The `dpop_jkt` parameter of an authorization request (RFC 9449 section 10): the
/// thumbprint of the key the authorization code will be bound to.
///
/// ```
/// use tower_dpop_client::{token::with_dpop_jkt, Algorithm, DpopKey};
///
/// let key = DpopKey::generate(Algorithm::ES256)?;
/// let url = with_dpop_jkt("https://as.example.com/authorize?response_type=code", &key);
/// assert_eq!(url, format!("https://as.example.com/authorize?response_type=code&dpop_jkt={}", key.thumbprint()));
/// # Ok::<(), tower_dpop_client::Error>(())
/// ```
#[must_use]
pub fn with_dpop_jkt(authorization_url: &str, key: &DpopKey) -> String {
    let (base, fragment) = match authorization_url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (authorization_url, None),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(i) if i + 1 == base.len() || base.ends_with('&') => "",
        Some(_) => "&",
    };
    // A thumbprint is base64url: nothing to escape.
    let mut out = format!("{base}{separator}dpop_jkt={}", key.thumbprint());
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[derive(Clone)]
struct Cached {
    jkt: String,
    access_token: Arc<str>,
    expires_at: Option<u64>,
    refresh_token: Option<String>,
}

/// Obtains DPoP-bound access tokens from a token endpoint and keeps the current one.
///
/// Every token request carries a proof (`htm` `POST`, `htu` the endpoint) and
/// `client_secret_basic` authentication (RFC 6749 section 2.3.1: id and secret
/// form-urlencoded, then base64). A `400` with `{"error":"use_dpop_nonce"}` and a
/// `DPoP-Nonce` is answered with one retry carrying the nonce. A token whose `token_type` is
/// not `DPoP` is refused: it would be a bearer token.
///
/// As a [`CredentialSource`] it hands out the cached token until
/// [`refresh_margin`](TokenClientBuilder::refresh_margin) seconds before its `expires_in`,
/// then renews it with its refresh token (or client credentials when there is none, or the
/// refresh is refused). Concurrent requests at renewal time may each fetch a token; the last
/// one is kept.
pub struct TokenClient {
    endpoint: Uri,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    key: RwLock<Arc<DpopKey>>,
    transport: Box<dyn TokenTransport>,
    signer: Signer,
    refresh_margin: u64,
    cache: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("key", &self.key())
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenClient`].
#[must_use]
pub struct TokenClientBuilder {
    endpoint: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    key: Arc<DpopKey>,
    signer: Signer,
    refresh_margin: u64,
}

impl fmt::Debug for TokenClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenClientBuilder {
    /// The `scope` to ask for.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The clock of proofs and of the token cache.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.signer.clock = Arc::new(clock);
        self
    }

    /// Remembers the authorization server's nonces in this cache.
    pub fn nonce_cache(mut self, cache: NonceCache) -> Self {
        self.signer.nonces = cache;
        self
    }

    /// How many seconds before expiry a cached token is renewed (default
    /// [`DEFAULT_REFRESH_MARGIN_SECS`]).
    pub fn refresh_margin(mut self, secs: u64) -> Self {
        self.refresh_margin = secs;
        self
    }

    /// The client, sending its requests through `transport` (a `reqwest::Client` with the
    /// `reqwest` feature, or a [`ServiceTransport`]).
    ///
    /// # Errors
    /// [`ErrorKind::Uri`] when the endpoint is not an absolute `http` or `https` URI.
    pub fn build(self, transport: impl TokenTransport) -> Result<TokenClient, Error> {
        let endpoint: Uri = self
            .endpoint
            .parse()
            .map_err(|_| Error::new(ErrorKind::Uri, "the token endpoint is not a URI"))?;
        crate::proof::origin(&endpoint)?;
        Ok(TokenClient {
            endpoint,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scope: self.scope,
            key: RwLock::new(self.key),
            transport: Box::new(transport),
            signer: self.signer,
            refresh_margin: self.refresh_margin,
            cache: Mutex::new(None),
        })
    }
}

impl TokenClient {
    /// A client of the token endpoint at `endpoint`, authenticating with
    /// `client_secret_basic` and binding tokens to `key`.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        key: impl Into<Arc<DpopKey>>,
    ) -> TokenClientBuilder {
        TokenClientBuilder {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            key: key.into(),
            signer: Signer::default(),
            refresh_margin: DEFAULT_REFRESH_MARGIN_SECS,
        }
    }

    /// The key tokens are bound to.
    #[must_use]
    pub fn key(&self) -> Arc<DpopKey> {
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Signs from now on with `key`; the cached token (bound to the old key) is dropped, so
    /// the next request obtains one bound to the new key.
    pub fn rotate_key(&self, key: impl Into<Arc<DpopKey>>) {
        *self.key.write().unwrap_or_else(PoisonError::into_inner) = key.into();
        self.forget_token();
    }

    /// Drops the cached token (for example after a resource server refused it).
    pub fn forget_token(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The authorization server's nonces this client remembers.
    #[must_use]
    pub fn nonces(&self) -> &NonceCache {
        &self.signer.nonces
    }

    /// Asks for a token with the client credentials grant (not cached).
    ///
    /// # Errors
    /// [`ErrorKind::TokenEndpoint`] when the endpoint refuses, [`ErrorKind::TokenType`] for a
    /// token that is not `DPoP`, [`ErrorKind::InvalidTokenResponse`] for an answer that is not
    /// a token response, [`ErrorKind::Transport`] when the exchange fails.
    pub async fn client_credentials(&self) -> Result<TokenResponse, Error> {
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        self.request(&self.key(), form).await
    }

    /// Asks for a new token with a refresh token (not cached).
    ///
    /// # Errors
    /// As [`client_credentials`](Self::client_credentials).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, Error> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token)
            .finish();
        self.request(&self.key(), form).await
    }

    async fn request(&self, key: &Arc<DpopKey>, form: String) -> Result<TokenResponse, Error> {
        grant::request(
            &*self.transport,
            &self.signer,
            &Credentials::key_only(key.clone()),
            &self.endpoint,
            &grant::basic_auth(&self.client_id, &self.client_secret),
            form,
        )
        .await
    }

    /// The current access token bound to the current key: the cached one while it has more
    /// than the refresh margin left, else a renewed one.
    ///
    /// # Errors
    /// As [`client_credentials`](Self::client_credentials).
    pub async fn access_token(&self) -> Result<Credentials, Error> {
        let key = self.key();
        let now = self.signer.clock.unix_seconds();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .filter(|c| c.jkt == key.thumbprint());
        if let Some(c) = &cached {
            let fresh = c
                .expires_at
                .is_none_or(|at| now.saturating_add(self.refresh_margin) < at);
            if fresh {
                return Ok(Credentials::new(key, c.access_token.clone()));
            }
        }
        let old_refresh = cached.and_then(|c| c.refresh_token);
        let refreshed = match &old_refresh {
            Some(refresh_token) => match self.refresh(refresh_token).await {
                // Without a new refresh token, the old one stays valid (RFC 6749 section 6).
                Ok(response) => Some((response, old_refresh.clone())),
                // A refused refresh token (expired, revoked): start over.
                Err(e) if e.kind() == ErrorKind::TokenEndpoint => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let (response, old_refresh) = match refreshed {
            Some(r) => r,
            None => (self.client_credentials().await?, None),
        };
        let access_token: Arc<str> = response.access_token().into();
        let cached = Cached {
            jkt: key.thumbprint().to_owned(),
            access_token: access_token.clone(),
            expires_at: response.expires_in().map(|s| now.saturating_add(s)),
            refresh_token: response.refresh_token().map(str::to_owned).or(old_refresh),
        };
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(cached);
        Ok(Credentials::new(key, access_token))
    }
}

impl CredentialSource for TokenClient {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.access_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    /// `dpop_jkt` is appended with the right separator, before any fragment.
    #[test]
    fn dpop_jkt_parameter() {
        let key = DpopKey::generate(Algorithm::ES256).unwrap();
        let jkt = key.thumbprint();
        let cases = [
            (
                "https://as/authorize",
                format!("https://as/authorize?dpop_jkt={jkt}"),
            ),
            (
                "https://as/authorize?",
                format!("https://as/authorize?dpop_jkt={jkt}"),
            ),
            (
                "https://as/authorize?a=1",
                format!("https://as/authorize?a=1&dpop_jkt={jkt}"),
            ),
            (
                "https://as/authorize?a=1&",
                format!("https://as/authorize?a=1&dpop_jkt={jkt}"),
            ),
            (
                "https://as/authorize#f",
                format!("https://as/authorize?dpop_jkt={jkt}#f"),
            ),
        ];
        for (given, expected) in cases {
            assert_eq!(with_dpop_jkt(given, &key), expected, "{given}");
        }
    }
}
