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
