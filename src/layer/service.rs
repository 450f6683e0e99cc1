//! The service: runs the pipeline, then calls the inner service or answers the rejection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::body::ResponseBody;
use super::Installed;
use crate::authenticated::Authenticated;
use crate::layer::DpopConfig;

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

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// The future returned by [`Dpop`]: the check (which may wait for a token validator or a
/// replay store), then the inner service's response or the rejection.
pub struct ResponseFuture<B, E> {
    inner: Boxed<B, E>,
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Dpop<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

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
            .get::<Installed>()
            .is_some_and(|i| Arc::ptr_eq(&i.0, &config));
        let inner_call =
            |fut: S::Future| async move { fut.await.map(|resp| resp.map(ResponseBody::new)) };
        if verified_here {
            return ResponseFuture {
                inner: Box::pin(inner_call(inner.call(req))),
            };
        }
        let fut = async move {
            let (mut parts, body) = req.into_parts();
            match super::run(&config, &parts).await {
                Ok(authenticated) => {
                    let refresh =
                        matches!(&authenticated, Authenticated::Dpop(v) if v.refresh_nonce);
                    parts.extensions.insert(authenticated);
                    parts.extensions.insert(Installed(config.clone()));
                    let mut response =
                        inner_call(inner.call(Request::from_parts(parts, body))).await?;
                    if refresh {
                        super::response::add_nonce(&mut response, &config);
                    }
                    Ok(response)
                }
                Err(error) => {
                    let answering = super::response::Answering::of(&config, &parts);
                    let response: Response<Full<bytes::Bytes>> =
                        super::response::reject(error, &config, answering);
                    Ok(response.map(ResponseBody::rejection))
                }
            }
        };
        ResponseFuture {
            inner: Box::pin(fut),
        }
    }
}
