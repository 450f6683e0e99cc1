//! The Tower client layer: a fresh proof on every request, nonces remembered per origin, one
//! retry on `use_dpop_nonce`.

mod body;
mod service;

pub use body::{NoReplay, ReplayableBody};
pub use service::{DpopClient, ResponseFuture};

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::clock::Clock;
use crate::credentials::CredentialSource;
use crate::nonce::NonceCache;
use crate::sign::Signer;

/// Signs every request of the service it wraps with DPoP.
///
/// For each request it takes [`Credentials`](crate::Credentials) from its source, sets
/// `Authorization: DPoP <token>` and a `DPoP` proof for the request's method and URI (which
/// must be absolute, as a client's request URI is), with the nonce last given by the request's
/// origin. It remembers the `DPoP-Nonce` of every response, and when the response is `401`
/// with `WWW-Authenticate: DPoP error="use_dpop_nonce"` it sends the request once more, with a
/// new proof carrying the new nonce, if the body can be replayed ([`ReplayableBody`]). It
/// never retries twice, and never retries a streamed body. Every response carries a
/// [`DpopOutcome`](crate::DpopOutcome) extension.
///
/// The wrapped service must be `Clone` (hyper-util's client and tonic channels are): the
/// request goes to the service that was polled ready, and a retry to it again after waiting
/// for it to be ready once more. Its error becomes a [`BoxError`](crate::BoxError); the
/// layer's own failures (a relative URI, the credential source, signing) are a boxed
/// [`Error`](crate::Error), and nothing is sent then.
#[derive(Clone)]
#[must_use]
pub struct DpopClientLayer {
    pub(crate) source: Arc<dyn CredentialSource>,
    pub(crate) signer: Signer,
}

impl fmt::Debug for DpopClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopClientLayer")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl DpopClientLayer {
    /// A layer signing with the credentials from `source` (a [`Credentials`](crate::Credentials)
    /// or a [`TokenClient`](crate::TokenClient)), the system clock and a new nonce cache.
    pub fn new(source: impl CredentialSource) -> Self {
        Self {
            source: Arc::new(source),
            signer: Signer::default(),
        }
    }

    /// The clock of the proofs' `iat`.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.signer.clock = Arc::new(clock);
        self
    }

    /// Remembers nonces in this cache (share one between clients).
    pub fn nonce_cache(mut self, cache: NonceCache) -> Self {
        self.signer.nonces = cache;
        self
    }

    /// The nonces this layer remembers.
    #[must_use]
    pub fn nonces(&self) -> &NonceCache {
        &self.signer.nonces
    }
}

impl<S> Layer<S> for DpopClientLayer {
    type Service = DpopClient<S>;

    fn layer(&self, inner: S) -> DpopClient<S> {
        DpopClient {
            inner,
            layer: self.clone(),
        }
    }
}
