//! The Tower layer: [`DpopLayer`] and the service it wraps, [`Dpop`].

use std::sync::Arc;

use http::{HeaderMap, Method};
use tower_layer::Layer;

use crate::config::{DpopConfig, DpopLayerBuilder};
use crate::error::Error;
use crate::verify::VerifiedRequest;

pub(crate) mod response;
mod service;

pub use service::{Dpop, ResponseFuture};

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
/// Cheap to clone: the configuration sits behind an `Arc`.
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

    /// Runs the verification pipeline on a request's method, path and headers, without HTTP:
    /// exactly what the service does before calling the inner service.
    ///
    /// # Errors
    /// The first failed check.
    pub async fn verify(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<VerifiedRequest, Error> {
        crate::verify::verify_request(&self.config, method, path, headers).await
    }
}

impl<S> Layer<S> for DpopLayer {
    type Service = Dpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dpop::new(inner, self.config.clone())
    }
}
