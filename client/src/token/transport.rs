//! How the token client sends its requests: reqwest (feature `reqwest`), any Tower service, or
//! your own [`TokenTransport`].

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};

use crate::error::{BoxError, Error, ErrorKind};

/// The largest token endpoint response read, in bytes.
pub const MAX_RESPONSE_LEN: usize = 64 * 1024;

/// The future of [`TokenTransport::send`].
pub type TransportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Bytes>, Error>> + Send + 'a>>;

/// Sends one request to the token endpoint and reads the whole response, at most
/// [`MAX_RESPONSE_LEN`] bytes of body ([`ErrorKind::Transport`] past it).
pub trait TokenTransport: Send + Sync + 'static {
    /// Sends `request`.
    fn send(&self, request: Request<Bytes>) -> TransportFuture<'_>;
}

fn transport(e: impl Into<BoxError>) -> Error {
    Error::new(ErrorKind::Transport, "the token request failed").with_source(e)
}

/// A Tower service (for example hyper-util's client) as a [`TokenTransport`]; each request
/// goes to a clone of it.
#[derive(Debug, Clone)]
pub struct ServiceTransport<S>(pub S);

impl<S, RB> TokenTransport for ServiceTransport<S>
where
    S: tower_service::Service<Request<Full<Bytes>>, Response = Response<RB>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    fn send(&self, request: Request<Bytes>) -> TransportFuture<'_> {
        let mut service = self.0.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(transport)?;
            let response = service
                .call(request.map(Full::new))
                .await
                .map_err(transport)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_LEN)
                .collect()
                .await
                .map_err(transport)?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

#[cfg(feature = "reqwest")]
impl TokenTransport for reqwest::Client {
    fn send(&self, request: Request<Bytes>) -> TransportFuture<'_> {
        Box::pin(async move {
            let request =
                reqwest::Request::try_from(request.map(reqwest::Body::from)).map_err(transport)?;
            let mut response = self.execute(request).await.map_err(transport)?;
            let mut head = Response::builder().status(response.status());
            if let Some(headers) = head.headers_mut() {
                for (name, value) in response.headers() {
                    headers.append(name, value.clone());
                }
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                if body.len() + chunk.len() > MAX_RESPONSE_LEN {
                    return Err(Error::new(
                        ErrorKind::Transport,
                        "the token endpoint's response is too large",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            head.body(Bytes::from(body)).map_err(transport)
        })
    }
}
