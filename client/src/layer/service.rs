//! The service of [`DpopClientLayer`](super::DpopClientLayer) and its future.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::{DpopClientLayer, ReplayableBody};
use crate::error::BoxError;
use crate::sign::DpopOutcome;

/// A service that signs its requests with DPoP; made by
/// [`DpopClientLayer`](super::DpopClientLayer).
#[derive(Clone)]
pub struct DpopClient<S> {
    pub(super) inner: S,
    pub(super) layer: DpopClientLayer,
}

impl<S: fmt::Debug> fmt::Debug for DpopClient<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopClient")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S> DpopClient<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The response future of [`DpopClient`].
pub struct ResponseFuture<RB> {
    inner: Pin<Box<dyn Future<Output = Result<Response<RB>, BoxError>> + Send>>,
}

impl<RB> fmt::Debug for ResponseFuture<RB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<RB> Future for ResponseFuture<RB> {
    type Output = Result<Response<RB>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, B, RB> Service<Request<B>> for DpopClient<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayableBody + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture<RB> {
        // The ready service answers this request; the clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        ResponseFuture {
            inner: Box::pin(async move {
                let credentials = layer.source.credentials().await?;
                let (mut parts, body) = request.into_parts();
                let replay = body.try_replay().map(|b| (parts.clone(), b));
                let origin = layer.signer.sign(
                    &credentials,
                    &parts.method,
                    &parts.uri,
                    &mut parts.headers,
                )?;
                let response = inner
                    .call(Request::from_parts(parts, body))
                    .await
                    .map_err(Into::into)?;
                let challenged =
                    layer
                        .signer
                        .observe(&origin, response.status(), response.headers());
                let (mut response, retried) = match (challenged, replay) {
                    (true, Some((mut parts, body))) => {
                        drop(response);
                        layer.signer.sign(
                            &credentials,
                            &parts.method,
                            &parts.uri,
                            &mut parts.headers,
                        )?;
                        poll_fn(|cx| inner.poll_ready(cx))
                            .await
                            .map_err(Into::into)?;
                        let response = inner
                            .call(Request::from_parts(parts, body))
                            .await
                            .map_err(Into::into)?;
                        // Remember its nonce too, but never a second retry.
                        layer
                            .signer
                            .observe(&origin, response.status(), response.headers());
                        (response, true)
                    }
                    (_, _) => (response, false),
                };
                let nonce_challenge =
                    crate::nonce::is_use_dpop_nonce(response.status(), response.headers());
                response.extensions_mut().insert(DpopOutcome {
                    retried,
                    nonce_challenge,
                });
                Ok(response)
            }),
        }
    }
}
