//! A JWKS fetched over HTTP: cached, refreshed when old or when a token names an unknown
//! `kid` (rate-limited), with timeouts. A fetch that fails keeps the previous keys; with no
//! keys at all the validator answers "unavailable" (503), never "valid".

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use josekit::jwk::JwkSet;

use super::KeyRing;
use crate::config::ConfigError;
use crate::token::TokenError;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// With no keys at all, how often a fetch may be retried.
const RETRY_WITHOUT_KEYS: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(super) struct RemoteOptions {
    pub(super) min_interval: Duration,
    pub(super) max_age: Duration,
    pub(super) timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    ring: Option<Arc<KeyRing>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    options: RemoteOptions,
    state: RwLock<State>,
    fetching: tokio::sync::Mutex<()>,
}

impl RemoteJwks {
    pub(super) fn new(url: String, options: RemoteOptions) -> Result<Self, ConfigError> {
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ConfigError::new(format!("JWKS URL {url:?} is invalid: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new("JWKS URL must be http or https"));
        }
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            url,
            client,
            options,
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    fn snapshot(&self) -> (Option<Arc<KeyRing>>, Option<Instant>, Option<Instant>) {
        match self.state.read() {
            Ok(s) => (s.ring.clone(), s.fetched, s.attempted),
            Err(poisoned) => {
                let s = poisoned.into_inner();
                (s.ring.clone(), s.fetched, s.attempted)
            }
        }
    }

    /// The current keys, fetched first if there are none or they are too old.
    pub(super) async fn current(&self) -> Result<Arc<KeyRing>, TokenError> {
        let (ring, fetched, _) = self.snapshot();
        if let (Some(ring), Some(at)) = (ring, fetched) {
            if at.elapsed() < self.options.max_age {
                return Ok(ring);
            }
        }
        self.refresh(false).await
    }

    /// Called when a token names a `kid` the current keys lack: fetches again unless a fetch
    /// happened less than `min_interval` ago. Returns the keys to use either way.
    pub(super) async fn refresh_for_unknown_kid(&self, current: Arc<KeyRing>) -> Arc<KeyRing> {
        self.refresh(true).await.unwrap_or(current)
    }

    async fn refresh(&self, for_unknown_kid: bool) -> Result<Arc<KeyRing>, TokenError> {
        let _one_at_a_time = self.fetching.lock().await;
        let (ring, fetched, attempted) = self.snapshot();
        // Another task may have fetched while this one waited.
        let wait = if ring.is_some() {
            self.options.min_interval
        } else {
            RETRY_WITHOUT_KEYS
        };
        let recent = attempted.is_some_and(|at| at.elapsed() < wait);
        let fresh = fetched.is_some_and(|at| at.elapsed() < self.options.max_age);
        if recent && (for_unknown_kid || fresh || ring.is_none()) {
            return ring.ok_or_else(|| TokenError::unavailable("JWKS could not be fetched"));
        }
        let result = self.fetch().await;
        let mut state = match self.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.attempted = Some(Instant::now());
        match result {
            Ok(new) => {
                let new = Arc::new(new);
                state.ring = Some(new.clone());
                state.fetched = Some(Instant::now());
                tracing::debug!(target: "tower_dpop", url = %self.url, "JWKS fetched");
                Ok(new)
            }
            Err(e) => {
                tracing::warn!(target: "tower_dpop", url = %self.url, error = %e, "JWKS fetch failed");
                state
                    .ring
                    .clone()
                    .ok_or_else(|| TokenError::unavailable("JWKS could not be fetched"))
            }
        }
    }

    async fn fetch(&self) -> Result<KeyRing, String> {
        let mut resp = self
            .client
            .get(&self.url)
            .header(
                reqwest::header::ACCEPT,
                "application/json, application/jwk-set+json",
            )
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP status {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("JWKS document is too large".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        let set = JwkSet::from_bytes(&body).map_err(|e| e.to_string())?;
        Ok(KeyRing::from_set(&set))
    }
}
