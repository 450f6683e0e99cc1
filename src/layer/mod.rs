//! The Tower layer: [`DpopLayer`], the service it wraps ([`Dpop`]), its response body and
//! future, its builder and runtime configuration, and the request extensions it reads.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, Uri};
use tower_layer::Layer;

use crate::authenticated::Authenticated;
use crate::error::{ConfigError, Error, ErrorKind};
use crate::nonce::NonceSecret;

mod body;
mod builder;
pub(crate) mod config;
pub(crate) mod proxy;
pub(crate) mod response;
mod service;

pub use body::ResponseBody;
pub use builder::DpopLayerBuilder;
pub use config::DpopConfig;
pub use proxy::ForwardedHeader;
pub use service::{Dpop, ResponseFuture};

/// The URI a request was sent to before a framework rewrote it (a nested router stripping its
/// prefix): put it in the request extensions so that `htu` is checked against what the client
/// signed. With the `axum` feature, axum's own `OriginalUri` is read too; without either, the
/// request's URI is used.
#[derive(Debug, Clone)]
pub struct OriginalUri(pub Uri);

/// The address of the TCP peer, for [`trusted_proxy`](crate::DpopLayerBuilder::trusted_proxy):
/// put it in the request extensions (a hyper server knows it when it accepts the connection).
/// With the `axum` feature, axum's `ConnectInfo<SocketAddr>` is read too; without either, no
/// peer is trusted.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Put in the extensions of every request a layer lets through: the layer's configuration,
/// so that the extractors answer their rejections with this layer's challenge and body, and
/// so that the same layer applied again (on a nested router) passes the request on instead of
/// verifying it twice (the second time its proof would be a replay).
#[derive(Clone)]
pub(crate) struct Installed(pub(crate) Arc<DpopConfig>);

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Installed(..)")
    }
}

/// A Tower layer that lets a request through only when it carries a valid DPoP-bound access
/// token and a valid DPoP proof for this very request.
///
/// Cheap to clone: the configuration sits behind an `Arc`, and clones are the same layer (a
/// request one of them let through passes the others).
#[derive(Debug, Clone)]
#[must_use]
pub struct DpopLayer {
    config: Arc<DpopConfig>,
}

impl DpopLayer {
    /// Starts configuring a layer.
    pub fn builder() -> DpopLayerBuilder {
        DpopLayerBuilder::default()
    }

    pub(crate) fn from_config(config: DpopConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The configuration this layer runs with.
    #[must_use]
    pub fn config(&self) -> &DpopConfig {
        &self.config
    }

    /// The counters of this layer (shared by its clones) since it was built.
    #[must_use]
    pub fn metrics(&self) -> crate::metrics::Metrics {
        self.config.counters.snapshot()
    }

    /// Checks a request exactly as the service does, for frameworks that are not Tower: the
    /// original URI ([`OriginalUri`], or axum's), the trusted proxies' forwarded origin (with
    /// the [`PeerAddr`]), Bearer and anonymous requests as configured; it logs and counts the
    /// outcome the same way. Answer an `Err` with [`rejection`](Self::rejection).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_dpop::{DpopLayer, ErrorKind};
    /// # let issuer = tower_dpop::testing::TestIssuer::new();
    /// let layer = DpopLayer::builder()
    ///     .public_origin("https://api.example.com")
    ///     .token_validator(issuer.validator())
    ///     .build()?;
    /// let (parts, ()) = http::Request::get("https://api.example.com/me").body(())?.into_parts();
    /// let err = layer.authenticate(&parts).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::MissingCredentials);
    /// let response: http::Response<Vec<u8>> = layer.rejection(&err, &parts);
    /// assert_eq!(response.status(), 401);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The first failed check.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Authenticated, Error> {
        run(&self.config, parts).await
    }

    /// The response the layer answers `error` with for this request: status, `WWW-Authenticate`
    /// challenge, `Cache-Control: no-store`, a fresh `DPoP-Nonce` where the nonce policy asks
    /// for one, the body of [`rejection_body`](crate::DpopLayerBuilder::rejection_body) (or a
    /// small JSON document), and the error in the response extensions. A gRPC call
    /// (`content-type: application/grpc`) gets the gRPC status the rejection means instead
    /// (`UNAUTHENTICATED` for a 401, with the same headers as metadata).
    pub fn rejection<B: From<Bytes>>(&self, error: &Error, parts: &Parts) -> Response<B> {
        let answering = response::Answering::of(&self.config, parts);
        response::reject(error.clone(), &self.config, answering)
    }

    /// Signs new nonces with `secret` from now on (by the layer's clock). The secret that signed
    /// until now is still accepted until every nonce it signed has expired (the
    /// [`nonce_lifetime`](crate::DpopLayerBuilder::nonce_lifetime) and a few seconds for
    /// instances whose clocks are ahead), then dropped; secrets given to the builder after the
    /// first stay accepted. Every clone of the layer sees the change at once. Rotating to the
    /// secret that already signs changes nothing.
    ///
    /// In a fleet, rotate in two steps so that no instance ever sees a nonce it cannot check:
    /// first [`accept_nonce_secret`](Self::accept_nonce_secret) the new secret on every instance,
    /// then `rotate_nonce_secret` to it on every instance, all within one nonce lifetime.
    ///
    /// ```
    /// # fn main() -> Result<(), tower_dpop::ConfigError> {
    /// use tower_dpop::nonce::{NoncePolicy, NonceSecret};
    /// use tower_dpop::DpopLayer;
    /// # let issuer = tower_dpop::testing::TestIssuer::new();
    /// let layer = DpopLayer::builder()
    ///     .public_origin("https://api.example.com")
    ///     .token_validator(issuer.validator())
    ///     .nonce_policy(NoncePolicy::Required)
    ///     .nonce_secret(NonceSecret::from_bytes(&[1; 32])?)
    ///     .build()?;
    /// let next = NonceSecret::from_bytes(&[2; 32])?;
    /// layer.accept_nonce_secret(next.clone())?; // on every instance, then:
    /// layer.rotate_nonce_secret(next)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// When the layer's [`nonce_policy`](crate::DpopLayerBuilder::nonce_policy) is `Off`.
    pub fn rotate_nonce_secret(&self, secret: NonceSecret) -> Result<(), ConfigError> {
        let nonces = self.nonces_in_use()?;
        nonces.rotate(secret, self.config.clock.unix_seconds());
        Ok(())
    }

    /// Accepts nonces signed with `secret` from now on without signing with it: the first
    /// step of a fleet's rotation (see [`rotate_nonce_secret`](Self::rotate_nonce_secret)).
    /// Nothing changes when the secret is already accepted.
    ///
    /// # Errors
    /// When the layer's nonce policy is `Off`, or it already holds 16 secrets (rotating drops
    /// the retired ones).
    pub fn accept_nonce_secret(&self, secret: NonceSecret) -> Result<(), ConfigError> {
        self.nonces_in_use()?
            .accept(secret, self.config.clock.unix_seconds())
    }

    fn nonces_in_use(&self) -> Result<&crate::nonce::Nonces, ConfigError> {
        self.config.nonces.as_ref().ok_or_else(|| {
            ConfigError::setting(
                "nonce_policy",
                "nonces are off: there is no nonce secret to rotate",
            )
        })
    }

    /// A fresh server nonce for `DPoP-Nonce`, when the layer's nonce policy uses nonces.
    #[must_use]
    pub fn fresh_nonce(&self) -> Option<HeaderValue> {
        let nonces = self.config.nonces.as_ref()?;
        HeaderValue::from_str(&nonces.issue(self.config.clock.unix_seconds())).ok()
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = Dpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dpop::new(inner, self.config.clone())
    }
}

/// The URI the client sent the request to (see [`OriginalUri`]). A `Uri` clone shares its
/// bytes: no allocation.
pub(crate) fn request_uri(parts: &Parts) -> Uri {
    if let Some(o) = parts.extensions.get::<OriginalUri>() {
        return o.0.clone();
    }
    #[cfg(feature = "axum")]
    if let Some(o) = parts.extensions.get::<axum::extract::OriginalUri>() {
        return o.0.clone();
    }
    parts.uri.clone()
}

/// The TCP peer's address (see [`PeerAddr`]).
fn peer_addr(parts: &Parts) -> Option<SocketAddr> {
    if let Some(p) = parts.extensions.get::<PeerAddr>() {
        return Some(p.0);
    }
    #[cfg(feature = "axum")]
    if let Some(c) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(c.0);
    }
    None
}

/// The route axum matched, for the span (empty without axum).
fn route(parts: &Parts) -> &str {
    #[cfg(feature = "axum")]
    if let Some(m) = parts.extensions.get::<axum::extract::MatchedPath>() {
        return m.as_str();
    }
    let _ = parts;
    ""
}

/// What the service and [`DpopLayer::authenticate`] run: the request's origin and path, the
/// pipeline, and the outcome logged and counted.
pub(crate) async fn run(config: &DpopConfig, parts: &Parts) -> Result<Authenticated, Error> {
    let uri = request_uri(parts);
    let path = uri.path();
    // One span per request, with stable field names: `method`, `path`, `route` (axum's matched
    // route, when the layer sits inside the router as a `route_layer`).
    let span = tracing::debug_span!(
        target: "tower_dpop",
        "dpop",
        method = %parts.method,
        path = %path,
        route = route(parts),
    );
    // The configured origin a trusted proxy reports; a trusted proxy's request that does not
    // name one is refused before any credential is looked at.
    let forwarded = match &config.proxy {
        None => Ok(None),
        Some(trust) => trust.forwarded_origin(peer_addr(parts), &parts.headers, &config.origins),
    };
    let outcome = match forwarded {
        Ok(forwarded) => {
            let pipeline =
                crate::verify::authenticate(config, &parts.method, path, &parts.headers, forwarded);
            tracing::Instrument::instrument(pipeline, span.clone()).await
        }
        Err(error) => Err(error),
    };
    match &outcome {
        Ok(Authenticated::Dpop(verified)) => {
            tracing::debug!(
                target: "tower_dpop",
                parent: &span,
                outcome = "accepted",
                alg = verified.algorithm().as_str(),
                jkt = %verified.jkt().short(),
                method = %parts.method,
                path = %path,
                "DPoP request accepted"
            );
            config.counters.accepted(false);
        }
        Ok(Authenticated::Bearer(_)) => {
            tracing::debug!(
                target: "tower_dpop",
                parent: &span,
                outcome = "accepted",
                scheme = "bearer",
                method = %parts.method,
                path = %path,
                "Bearer request accepted"
            );
            config.counters.accepted(true);
        }
        Ok(Authenticated::Anonymous) => {}
        Err(error) => {
            config.counters.rejected(error);
            log_rejection(error, config.rejection_level, &parts.method, path, &span);
        }
    }
    outcome
}

/// Logs a rejection: 503s at WARN, requests without credentials at DEBUG, every other
/// rejection at the layer's [`rejection_log_level`](crate::DpopLayerBuilder::rejection_log_level).
fn log_rejection(
    error: &Error,
    level: tracing::Level,
    method: &http::Method,
    path: &str,
    span: &tracing::Span,
) {
    let status = error.status().as_u16();
    let code = error.error_code().unwrap_or("none");
    let reason = error.description();
    let level = match error.kind() {
        ErrorKind::Unavailable => {
            tracing::warn!(target: "tower_dpop", parent: span, outcome = "unavailable", status, reason, %method, path = %path, "DPoP request refused");
            return;
        }
        ErrorKind::MissingCredentials => tracing::Level::DEBUG,
        _ => level,
    };
    // The level of an event is fixed at its call site: one call site per level.
    macro_rules! rejected {
        ($lvl:expr) => {
            tracing::event!(target: "tower_dpop", parent: span, $lvl, outcome = "rejected", status, error = code, reason, %method, path = %path, "DPoP request rejected")
        };
    }
    match level {
        tracing::Level::TRACE => rejected!(tracing::Level::TRACE),
        tracing::Level::DEBUG => rejected!(tracing::Level::DEBUG),
        tracing::Level::INFO => rejected!(tracing::Level::INFO),
        tracing::Level::WARN => rejected!(tracing::Level::WARN),
        tracing::Level::ERROR => rejected!(tracing::Level::ERROR),
    }
}
