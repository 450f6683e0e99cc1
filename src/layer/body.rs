//! The response body of [`Dpop`](super::Dpop): the inner service's body, or the layer's own
//! rejection, so the layer works with any `http_body::Body` (axum, hyper, tonic) without asking
//! the inner body to be built from bytes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

pin_project! {
    /// The body of a response from [`Dpop`](super::Dpop): the inner service's, or the layer's
    /// rejection (a small JSON document, or what
    /// [`rejection_body`](crate::DpopLayerBuilder::rejection_body) made).
    pub struct ResponseBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        Body { #[pin] body: B },
        Rejection { #[pin] body: Full<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(body: B) -> Self {
        Self {
            inner: Inner::Body { body },
        }
    }

    pub(crate) fn rejection(body: Full<Bytes>) -> Self {
        Self {
            inner: Inner::Rejection { body },
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Body { .. } => "ResponseBody::Body",
            Inner::Rejection { .. } => "ResponseBody::Rejection",
        })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.project() {
            InnerProj::Body { body } => body.poll_frame(cx),
            InnerProj::Rejection { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Body { body } => body.is_end_stream(),
            Inner::Rejection { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Body { body } => body.size_hint(),
            Inner::Rejection { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn both_kinds_stream_their_bytes() {
        let inner: ResponseBody<Full<Bytes>> = ResponseBody::new(Full::from("handler"));
        assert_eq!(inner.size_hint().exact(), Some(7));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "handler");
        let rejected: ResponseBody<Full<Bytes>> =
            ResponseBody::rejection(Full::from(r#"{"error":"x"}"#));
        assert!(!rejected.is_end_stream());
        assert_eq!(
            rejected.collect().await.unwrap().to_bytes(),
            r#"{"error":"x"}"#
        );
    }
}
