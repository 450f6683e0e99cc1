//! The same signing, nonce memory and single retry around a `reqwest::Client`.

use std::fmt;
use std::sync::Arc;

use http::Uri;

use crate::clock::Clock;
use crate::credentials::CredentialSource;
use crate::error::{Error, ErrorKind};
use crate::nonce::{is_use_dpop_nonce, NonceCache};
use crate::sign::{DpopOutcome, Signer};

/// A `reqwest::Client` that signs every request with DPoP, as
/// [`DpopClientLayer`](crate::DpopClientLayer) does for Tower services: a fresh proof and
/// `Authorization: DPoP`, the nonce of each origin remembered, and one retry on
/// `use_dpop_nonce` when the request can be cloned (`reqwest::Request::try_clone`: never a
/// streamed body). Responses carry a [`DpopOutcome`] extension.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_dpop_client::{Algorithm, Credentials, DpopKey, DpopReqwest};
///
/// let key = DpopKey::generate(Algorithm::ES256)?;
/// let client = DpopReqwest::new(reqwest::Client::new(), Credentials::new(key, "token"));
/// let request = client.inner().get("https://api.example.com/me").build()?;
/// let response = client.execute(request).await?;
/// println!("{}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DpopReqwest {
    client: reqwest::Client,
    source: Arc<dyn CredentialSource>,
    signer: Signer,
}

impl fmt::Debug for DpopReqwest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopReqwest")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl DpopReqwest {
    /// Signs the requests of `client` with the credentials from `source`.
    pub fn new(client: reqwest::Client, source: impl CredentialSource) -> Self {
        Self {
            client,
            source: Arc::new(source),
            signer: Signer::default(),
        }
    }

    /// The clock of the proofs' `iat`.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.signer.clock = Arc::new(clock);
        self
    }

    /// Remembers nonces in this cache.
    #[must_use]
    pub fn nonce_cache(mut self, cache: NonceCache) -> Self {
        self.signer.nonces = cache;
        self
    }

    /// The nonces this client remembers.
    #[must_use]
    pub fn nonces(&self) -> &NonceCache {
        &self.signer.nonces
    }

    /// The wrapped client, to build requests with.
    #[must_use]
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Signs and sends `request`, retrying once on `use_dpop_nonce` if it can be cloned.
    ///
    /// # Errors
    /// [`ErrorKind::Uri`] for a URL that is not `http(s)`, [`ErrorKind::Transport`] when
    /// reqwest fails, and the errors of the credential source.
    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, Error> {
        let credentials = self.source.credentials().await?;
        let uri: Uri = request
            .url()
            .as_str()
            .parse()
            .map_err(|_| Error::new(ErrorKind::Uri, "the request URL is not a URI"))?;
        let replay = request.try_clone();
        let send = |mut request: reqwest::Request| {
            let credentials = &credentials;
            let uri = &uri;
            async move {
                let method = request.method().clone();
                let origin = self
                    .signer
                    .sign(credentials, &method, uri, request.headers_mut())?;
                let response = self.client.execute(request).await.map_err(|e| {
                    Error::new(ErrorKind::Transport, "the request failed").with_source(e)
                })?;
                let challenged =
                    self.signer
                        .observe(&origin, response.status(), response.headers());
                Ok::<_, Error>((response, challenged))
            }
        };
        let (response, challenged) = send(request).await?;
        let (mut response, retried) = match (challenged, replay) {
            (true, Some(again)) => {
                drop(response);
                (send(again).await?.0, true)
            }
            _ => (response, false),
        };
        let nonce_challenge = is_use_dpop_nonce(response.status(), response.headers());
        response.extensions_mut().insert(DpopOutcome {
            retried,
            nonce_challenge,
        });
        Ok(response)
    }
}
