//! Request bodies that can be sent a second time.

use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{Either, Empty, Full, StreamBody};

/// A request body the client can send again when the server asks for a nonce.
///
/// A body held in memory answers with a copy; a streamed body answers `None`, and its request
/// is never retried (the `use_dpop_nonce` answer is handed back, and the nonce kept for the
/// next request). Implement it for your own body type the same way.
pub trait ReplayableBody: Sized {
    /// A copy to send again, or `None` when the body cannot be replayed.
    fn try_replay(&self) -> Option<Self>;
}

impl<D: Clone> ReplayableBody for Full<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayableBody for Empty<D> {
    fn try_replay(&self) -> Option<Self> {
        Some(Empty::new())
    }
}

impl ReplayableBody for Bytes {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayableBody for String {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayableBody for Vec<u8> {
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl ReplayableBody for () {
    fn try_replay(&self) -> Option<Self> {
        Some(())
    }
}

impl<L: ReplayableBody, R: ReplayableBody> ReplayableBody for Either<L, R> {
    fn try_replay(&self) -> Option<Self> {
        match self {
            Either::Left(l) => l.try_replay().map(Either::Left),
            Either::Right(r) => r.try_replay().map(Either::Right),
        }
    }
}

/// Streamed: never replayed.
impl<S> ReplayableBody for StreamBody<S> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// Boxed bodies may be streams: never replayed.
impl<D, E> ReplayableBody for BoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// Boxed bodies may be streams: never replayed.
impl<D, E> ReplayableBody for UnsyncBoxBody<D, E> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// Any body, marked as never replayed: for a body type of another crate that does not
/// implement [`ReplayableBody`] (tonic's `Body`, say). Map the request into it before the
/// layer and out of it after:
///
/// ```
/// use http::Request;
/// use tower_dpop_client::layer::NoReplay;
///
/// let request = Request::new(String::from("a body of another type"));
/// let marked: Request<NoReplay<String>> = request.map(NoReplay);
/// let inner: Request<String> = marked.map(NoReplay::into_inner);
/// # let _ = inner;
/// ```
///
/// It is also an [`http_body::Body`] (for an `Unpin` body), so the inner service can take it
/// as is.
#[derive(Debug, Clone, Default)]
pub struct NoReplay<B>(pub B);

impl<B> NoReplay<B> {
    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.0
    }
}

impl<B> ReplayableBody for NoReplay<B> {
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for NoReplay<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}
