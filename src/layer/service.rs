//! The service: runs the pipeline, then calls the inner service or answers the rejection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use crate::config::DpopConfig;
use crate::error::{Error, ErrorKind};
use crate::verify::{authenticate_from, Authenticated};

/// The future returned by [`Dpop`].
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// The service made by [`DpopLayer`](crate::DpopLayer).
#[derive(Debug, Clone)]
pub struct Dpop<S> {
    inner: S,
    config: Arc<DpopConfig>,
}

impl<S> Dpop<S> {
    pub(crate) fn new(inner: S, config: Arc<DpopConfig>) -> Self {
        Self { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Dpop<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<Bytes> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let config = self.config.clone();
        // The clone that was polled ready is the one that gets called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // This very layer (a clone of it) already let the request through, further out:
        // verifying again would find its own proof a replay.
        let verified_here = req
            .extensions()
            .get::<super::Installed>()
            .is_some_and(|i| Arc::ptr_eq(&i.0, &config));
        if verified_here {
            return Box::pin(inner.call(req));
        }
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            // Behind `Router::nest` the URI is stripped of its prefix: use the original one.
            // A `Uri` clone shares its bytes (no allocation) and outlives the borrow of the
            // extensions, which get the verified request below.
            let uri = parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
            let path = uri.path();
            // The configured origin a trusted proxy reports; a trusted proxy's request that
            // does not name one is refused below, before any credential is looked at.
            let forwarded = match &config.proxy {
                None => Ok(None),
                Some(trust) => {
                    let peer = parts
                        .extensions
                        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                        .map(|c| c.0);
                    trust.forwarded_origin(peer, &parts.headers, &config.origins)
                }
            };
            // One span per request, with stable field names: `method`, `path`, `route` (axum's
            // matched route, when the layer sits inside the router as a `route_layer`).
            let span = tracing::debug_span!(
                target: "tower_dpop",
                "dpop",
                method = %parts.method,
                path = %path,
                route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map_or("", |m| m.as_str()),
            );
            let outcome = match forwarded {
                Ok(forwarded) => {
                    tracing::Instrument::instrument(
                        authenticate_from(&config, &parts.method, path, &parts.headers, forwarded),
                        span.clone(),
                    )
                    .await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(Authenticated::Bearer(bearer)) => {
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
                    parts.extensions.insert(bearer);
                    parts.extensions.insert(super::Installed(config.clone()));
                    inner.call(Request::from_parts(parts, body)).await
                }
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
                    let refresh = verified.refresh_nonce;
                    parts.extensions.insert(verified);
                    parts.extensions.insert(super::Installed(config.clone()));
                    let mut response = inner.call(Request::from_parts(parts, body)).await?;
                    if refresh {
                        super::response::add_nonce(&mut response, &config);
                    }
                    Ok(response)
                }
                Ok(Authenticated::Anonymous) => {
                    parts.extensions.insert(crate::verify::Anonymous);
                    parts.extensions.insert(super::Installed(config.clone()));
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(error) => {
                    config.counters.rejected(&error);
                    log_rejection(&error, config.rejection_level, &parts.method, path, &span);
                    let nonce_required = config
                        .nonce_required(&parts.method, path, &parts.headers)
                        .is_some();
                    Ok(super::response::reject(error, &config, nonce_required))
                }
            }
        })
    }
}
