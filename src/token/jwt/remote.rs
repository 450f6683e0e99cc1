//! A JWKS fetched over HTTP, with these rules:
//!
//! - **One fetch at a time, one per interval.** At most one fetch is in flight, and at most one
//!   starts per `jwks_refresh_interval`, whatever started it (first use, old keys, an unknown
//!   `kid`) and however the last one ended. Requests that need keys share the fetch in flight.
//! - **Stale while revalidate.** Keys older than `jwks_max_age` are still used, at once, while
//!   a refresh runs in the background; no request that has a usable key waits for a fetch.
//! - **A hard limit.** Keys stay usable while fetches fail until `jwks_max_age +
//!   jwks_max_stale`; past that, or with no keys yet, the answer is "unavailable" (503) until a
//!   fetch succeeds, never "valid".
//! - **Fetches outlive requests.** A fetch runs in a task of its own on the current Tokio
//!   runtime, so a request cancelled while it waits changes nothing; with no runtime at hand
//!   nothing is fetched and the answer is "unavailable".
//!
//! Ages and intervals are read from the validator's [`Clock`]. The fetch itself (connection,
//! redirects, body) is bounded by `jwks_timeout`, so a hanging endpoint delays only requests
//! that have no usable key, each by at most one timeout.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use reqwest::Url;
use tokio::sync::watch;

use super::discovery::{Discovered, MetadataDocument};
use super::keys::KeyRing;
use crate::clock::Clock;
use crate::error::ConfigError;
use crate::http_fetch::HttpFetch;
use crate::proof::algorithm::Algorithm;

/// Largest JWKS document accepted.
pub(crate) const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Redirects followed when fetching a JWKS (each under the same `https:` rule).
const MAX_REDIRECTS: usize = 3;
const ACCEPT: &str = "application/jwk-set+json, application/json";

/// The fetch settings, from the builder.
#[derive(Debug, Clone)]
pub(crate) struct RemoteOptions {
    pub(crate) refresh_interval: Duration,
    pub(crate) max_age: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) timeout: Duration,
    pub(crate) allow_insecure_http: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            max_stale: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
            allow_insecure_http: false,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct Flight {
    id: u64,
    done: watch::Receiver<bool>,
}

#[derive(Debug, Default)]
struct State {
    keys: Option<Arc<KeyRing>>,
    /// When `keys` were fetched, in milliseconds since the Unix epoch.
    fetched_at: u64,
    /// When the last fetch started.
    last_start: Option<u64>,
    in_flight: Option<Flight>,
    flights: u64,
}

/// What the key set can do for a request right now, read without I/O.
#[derive(Debug)]
pub(crate) struct View {
    /// Keys that may be used now (fresh, or stale within the hard limit).
    pub(crate) keys: Option<Arc<KeyRing>>,
    /// The keys are older than `jwks_max_age` and a refresh may start now.
    pub(crate) refresh_due: bool,
    /// A request without a usable key may wait for a fetch: one is in flight or may start.
    pub(crate) can_fetch: bool,
}

/// Where the key set is: a configured JWKS URL, or the `jwks_uri` of an issuer's metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Jwks(&'a str),
    Discover(&'a str, MetadataDocument),
}

#[derive(Debug)]
enum Location {
    Jwks(Url),
    Discovered(Discovered),
}

#[derive(Debug)]
pub(crate) struct RemoteJwks {
    location: Location,
    http: HttpFetch,
    algorithms: Vec<Algorithm>,
    refresh_interval: u64,
    max_age: u64,
    usable_for: u64,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl RemoteJwks {
    pub(crate) fn new(
        target: Target<'_>,
        options: &RemoteOptions,
        algorithms: Vec<Algorithm>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        if options.refresh_interval.is_zero() {
            return Err(ConfigError::new(
                "jwks_refresh_interval must not be zero (it bounds how often the JWKS is fetched)",
            ));
        }
        let http = HttpFetch::new(options.timeout, MAX_REDIRECTS, options.allow_insecure_http)?;
        let location = match target {
            Target::Jwks(url) => Location::Jwks(http.check_url("JWKS URL", url)?),
            Target::Discover(issuer, document) => {
                Location::Discovered(Discovered::new(issuer, document, &http)?)
            }
        };
        Ok(Self {
            location,
            http,
            algorithms,
            refresh_interval: millis(options.refresh_interval),
            max_age: millis(options.max_age),
            usable_for: millis(options.max_age).saturating_add(millis(options.max_stale)),
            clock,
            state: Mutex::new(State::default()),
        })
    }

    fn now(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `true` when no fetch is in flight, none started within the interval (a clock that went
    /// back counts as elapsed) and a Tokio runtime can run one.
    fn may_start(&self, state: &State, now: u64) -> bool {
        state.in_flight.is_none()
            && state
                .last_start
                .is_none_or(|at| now < at || now.saturating_sub(at) >= self.refresh_interval)
            && tokio::runtime::Handle::try_current().is_ok()
    }

    pub(crate) fn view(&self) -> View {
        let now = self.now();
        let state = self.lock();
        // Keys from a clock that has since gone back are of unknown age: due for a refresh.
        let age = now.checked_sub(state.fetched_at).unwrap_or(self.max_age);
        let keys = state.keys.clone().filter(|_| age < self.usable_for);
        let may_start = self.may_start(&state, now);
        View {
            refresh_due: keys.is_some() && age >= self.max_age && may_start,
            keys,
            can_fetch: may_start || state.in_flight.is_some(),
        }
    }

    /// Starts a fetch if the rules allow one now; it runs in its own task.
    pub(crate) fn refresh_in_background(self: &Arc<Self>) {
        let _ = self.start();
    }

    /// Waits for a fetch: the one in flight, or one started now if allowed. Returns at once
    /// when neither; otherwise when the fetch ends, at most one `jwks_timeout` later.
    pub(crate) async fn fetch_and_wait(self: &Arc<Self>) {
        let in_flight = self.lock().in_flight.as_ref().map(|f| f.done.clone());
        if let Some(mut done) = in_flight.or_else(|| self.start()) {
            // An error means the fetch task ended without a word (runtime shut down): done too.
            let _ = done.wait_for(|done| *done).await;
        }
    }

    fn start(self: &Arc<Self>) -> Option<watch::Receiver<bool>> {
        let now = self.now();
        let (guard, handle, done) = {
            let mut state = self.lock();
            if !self.may_start(&state, now) {
                return None;
            }
            let handle = tokio::runtime::Handle::try_current().ok()?;
            state.flights = state.flights.wrapping_add(1);
            let (tx, done) = watch::channel(false);
            let id = state.flights;
            state.in_flight = Some(Flight {
                id,
                done: done.clone(),
            });
            state.last_start = Some(now);
            let guard = FlightGuard {
                remote: Arc::clone(self),
                id,
                tx,
            };
            (guard, handle, done)
        };
        handle.spawn(guard.run());
        Some(done)
    }

    /// What the logs call this key set: its URL, or the issuer it is discovered from.
    fn name(&self) -> &str {
        match &self.location {
            Location::Jwks(url) => url.as_str(),
            Location::Discovered(d) => d.issuer(),
        }
    }

    async fn fetch(&self) -> Result<KeyRing, String> {
        let url = match &self.location {
            Location::Jwks(url) => url.clone(),
            Location::Discovered(d) => self.jwks_uri(d).await?,
        };
        let body = self
            .http
            .get(&url, ACCEPT, MAX_JWKS_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        KeyRing::parse(&body, &self.algorithms)
    }

    /// The `jwks_uri` to fetch: the one learnt, while younger than `jwks_max_age`; else the
    /// metadata's, fetched now; when that fails, the one learnt while it is within the hard
    /// limit (`jwks_max_age + jwks_max_stale`), like the keys themselves.
    async fn jwks_uri(&self, discovered: &Discovered) -> Result<Url, String> {
        let now = self.now();
        let age = |at: u64| now.checked_sub(at).unwrap_or(self.max_age);
        let learnt = discovered.learnt();
        if let Some((url, at)) = &learnt {
            if age(*at) < self.max_age {
                return Ok(url.clone());
            }
        }
        match discovered.fetch(&self.http, now).await {
            Ok(url) => Ok(url),
            Err(error) => match learnt {
                Some((url, at)) if age(at) < self.usable_for => {
                    tracing::warn!(target: "tower_dpop", issuer = discovered.issuer(), error = %error, "metadata fetch failed; using the jwks_uri learnt before");
                    Ok(url)
                }
                _ => Err(error),
            },
        }
    }
}

/// Owns one fetch: whether the fetch ends, fails, panics or is dropped with its task, the
/// guard clears the in-flight mark and wakes the requests waiting for it.
struct FlightGuard {
    remote: Arc<RemoteJwks>,
    id: u64,
    tx: watch::Sender<bool>,
}

impl FlightGuard {
    async fn run(self) {
        let result = self.remote.fetch().await;
        let url = self.remote.name();
        match result {
            Ok(ring) => {
                if ring.len() == 0 {
                    tracing::warn!(target: "tower_dpop", url, "JWKS fetched but has no usable signing key");
                } else {
                    tracing::debug!(target: "tower_dpop", url, keys = ring.len(), "JWKS fetched");
                }
                let now = self.remote.now();
                let mut state = self.remote.lock();
                state.keys = Some(Arc::new(ring));
                state.fetched_at = now;
            }
            Err(error) => {
                tracing::warn!(target: "tower_dpop", url, error = %error, "JWKS fetch failed; keeping the keys held");
            }
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        {
            let mut state = self.remote.lock();
            if state.in_flight.as_ref().is_some_and(|f| f.id == self.id) {
                state.in_flight = None;
            }
        }
        self.tx.send_replace(true);
    }
}
