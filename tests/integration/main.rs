//! The integration tests, one binary (one link, one process): each module is one concern of the
//! layer, run through `ServiceExt::oneshot`, `DpopLayer::authenticate`, or a real server on
//! 127.0.0.1 where the socket matters (the peer address, HTTP framing, a remote JWKS or
//! introspection endpoint). `tests/redis.rs` is its own binary: it needs a Redis and installs a
//! process-wide log subscriber.

#[cfg(feature = "axum")]
mod common;

mod anonymous;
mod bearer;
mod cors;
mod discovery;
mod extractor;
mod frameworks;
mod http;
mod idp;
mod introspection;
mod introspection_deployed;
mod jwks;
mod jwt;
mod layer_order;
mod logging;
mod nonce;
mod observability;
mod outbound;
mod panic;
mod properties;
mod proxy;
mod replay;
mod rules;
mod vectors;
