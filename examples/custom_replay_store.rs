//! A replay store of your own: `cargo run --example custom_replay_store`, and its tests:
//! `cargo test --example custom_replay_store`.
//!
//! [`MapReplayStore`] keeps each proof's [`ReplayKey`] in a `Mutex<HashMap>` with its expiry,
//! measured on a [`Clock`] (so tests move time instead of sleeping). What makes it a correct
//! [`ReplayStore`]:
//!
//! - `check_and_insert` is atomic: the lookup and the insert happen under one lock, so of any
//!   number of concurrent calls with one key exactly one gets [`Seen::First`];
//! - an entry lives at least the `ttl` it was given (the layer passes its whole replay window);
//! - it is bounded, and fails closed: when it is full of live entries it answers
//!   [`ReplayError::Full`] (the layer answers 503) rather than forget a live entry, which would
//!   let that proof be replayed. A poisoned lock is a [`ReplayError::Backend`], also 503.
//!
//! The program hands the store to a layer, then checks one request twice with
//! [`DpopLayer::authenticate`] (no server needed): the first passes, the second is a replay.
//! It exits with status 1 if an answer is not the expected one.
//!
//! The tests at the bottom run the crate's conformance suite on the store
//! ([`tower_dpop::testing::check_replay_store`]: first use, replay, independent keys, 64
//! concurrent inserts of one key with one winner, an entry living its `ttl`), then what the suite
//! cannot know (expiry at exactly `ttl` on an injected clock, the full store) and the store
//! behind the layer. Do the same for your own store.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_dpop::clock::{Clock, SystemClock};
use tower_dpop::replay::{ReplayError, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{dpop_headers, request_parts, unix_now, ClientKey, TestIssuer};
use tower_dpop::{async_trait, Algorithm, DpopLayer, ErrorKind};

/// A bounded in-process replay store over a `HashMap`, entries expiring on a [`Clock`].
#[derive(Debug)]
pub struct MapReplayStore<C = SystemClock> {
    /// Each live key and the Unix time in milliseconds at which it expires.
    entries: Mutex<HashMap<ReplayKey, u64>>,
    capacity: usize,
    clock: C,
}

impl MapReplayStore {
    /// A store of at most `capacity` live entries, on the system clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, SystemClock)
    }
}

impl<C: Clock> MapReplayStore<C> {
    /// A store of at most `capacity` live entries, on `clock`.
    pub fn with_clock(capacity: usize, clock: C) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            clock,
        }
    }

    /// The check and the insert, under one lock.
    fn check(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        let now = self.clock.unix_millis();
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| ReplayError::Backend("replay map lock poisoned".into()))?;
        if entries.get(&key).is_some_and(|&expires| expires > now) {
            return Ok(Seen::Replay);
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, expires| *expires > now);
            // Only live entries are left: forgetting one would let its proof be replayed.
            if entries.len() >= self.capacity {
                return Err(ReplayError::Full);
            }
        }
        entries.insert(key, now.saturating_add(ttl));
        Ok(Seen::First)
    }
}

#[async_trait]
impl<C: Clock> ReplayStore for MapReplayStore<C> {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        self.check(key, ttl)
    }

    fn capacity(&self) -> Option<u64> {
        u64::try_from(self.capacity).ok()
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let issuer = TestIssuer::new();
    let store = Arc::new(MapReplayStore::new(100_000));
    let layer = match DpopLayer::builder()
        .public_origin("https://api.example.com")
        .token_validator(issuer.validator())
        .replay_store(store.clone())
        .build()
    {
        Ok(layer) => layer,
        Err(e) => {
            eprintln!("custom_replay_store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(client.jkt(), unix_now() + 300);
    let proof = client
        .proof("GET", "https://api.example.com/me")
        .access_token(&token)
        .sign();
    let parts = request_parts(&http::Method::GET, "/me", &dpop_headers(&token, &proof));

    let first = layer.authenticate(&parts).await;
    println!(
        "first use: {}",
        if first.is_ok() { "accepted" } else { "refused" }
    );
    let again = layer.authenticate(&parts).await;
    match &again {
        Ok(_) => println!("the same proof again: accepted"),
        Err(e) => println!("the same proof again: {} {}", e.status(), e.description()),
    }
    let replay_refused = again.is_err_and(|e| e.kind() == ErrorKind::ProofReplayed);
    if first.is_ok() && replay_refused {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_dpop::clock::ManualClock;
    use tower_dpop::{Authenticated, Error};

    const TTL: Duration = Duration::from_secs(70);

    /// A layer over `store`, and the issuer of its tokens.
    struct Setup {
        layer: DpopLayer,
        issuer: TestIssuer,
    }

    /// A client key and a token bound to it.
    struct Client {
        key: ClientKey,
        token: String,
    }

    impl Setup {
        fn new(store: impl ReplayStore) -> Self {
            let issuer = TestIssuer::new();
            let layer = DpopLayer::builder()
                .public_origin("https://api.example.com")
                .token_validator(issuer.validator())
                .replay_store(store)
                .build()
                .unwrap();
            Self { layer, issuer }
        }

        fn client(&self) -> Client {
            let key = ClientKey::generate(Algorithm::ES256);
            let token = self.issuer.token_for(key.jkt(), unix_now() + 300);
            Client { key, token }
        }
    }

    impl Client {
        /// A request for `GET /me` with a fresh proof.
        fn request(&self) -> http::request::Parts {
            let proof = self
                .key
                .proof("GET", "https://api.example.com/me")
                .access_token(&self.token)
                .sign();
            request_parts(
                &http::Method::GET,
                "/me",
                &dpop_headers(&self.token, &proof),
            )
        }
    }

    /// `n` distinct replay keys, made as the layer makes them: from the thumbprint of a
    /// verified proof's key and a `jti`.
    async fn keys(n: usize) -> Vec<ReplayKey> {
        let setup = Setup::new(MapReplayStore::new(10));
        let request = setup.client().request();
        let Ok(Authenticated::Dpop(verified)) = setup.layer.authenticate(&request).await else {
            panic!("the request is valid");
        };
        (0..n)
            .map(|i| ReplayKey::new(verified.jkt(), &format!("jti-{i}")))
            .collect()
    }

    /// The crate's conformance suite, which every store of the crate runs too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conforms() {
        tower_dpop::testing::check_replay_store(MapReplayStore::new(1000)).await;
    }

    /// Rule: an entry lives exactly its `ttl`: a replay up to the last millisecond of it, a
    /// first use from then on.
    #[tokio::test]
    async fn an_entry_lives_its_ttl_then_expires() {
        let keys = keys(1).await;
        let clock = ManualClock::at_unix(1_700_000_000);
        let store = MapReplayStore::with_clock(10, clock.clone());
        assert_eq!(store.check_and_insert(keys[0], TTL).await, Ok(Seen::First));
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(store.check_and_insert(keys[0], TTL).await, Ok(Seen::Replay));
        clock.advance(Duration::from_millis(1));
        assert_eq!(store.check_and_insert(keys[0], TTL).await, Ok(Seen::First));
    }

    /// Rule: a store full of live entries refuses (`Full`) instead of forgetting one; once
    /// entries expire there is room again.
    #[tokio::test]
    async fn a_full_store_fails_closed_until_entries_expire() {
        let keys = keys(3).await;
        let clock = ManualClock::at_unix(1_700_000_000);
        let store = MapReplayStore::with_clock(2, clock.clone());
        assert_eq!(store.check_and_insert(keys[0], TTL).await, Ok(Seen::First));
        assert_eq!(store.check_and_insert(keys[1], TTL).await, Ok(Seen::First));
        assert_eq!(
            store.check_and_insert(keys[2], TTL).await,
            Err(ReplayError::Full)
        );
        // The live entries are still there.
        assert_eq!(store.check_and_insert(keys[0], TTL).await, Ok(Seen::Replay));
        clock.advance(TTL);
        assert_eq!(store.check_and_insert(keys[2], TTL).await, Ok(Seen::First));
    }

    /// Rule: behind the layer, the store refuses a replayed proof (401), and a full store
    /// makes the layer answer 503 rather than let a request through.
    #[tokio::test]
    async fn behind_the_layer() {
        let setup = Setup::new(MapReplayStore::new(100));
        let request = setup.client().request();
        assert!(setup.layer.authenticate(&request).await.is_ok());
        let replay: Error = setup.layer.authenticate(&request).await.unwrap_err();
        assert_eq!(replay.kind(), ErrorKind::ProofReplayed);
        assert_eq!(replay.status(), 401);

        // Room for one entry: a second client's first proof finds the store full.
        let setup = Setup::new(MapReplayStore::new(1));
        let first = setup.client().request();
        assert!(setup.layer.authenticate(&first).await.is_ok());
        let full: Error = setup
            .layer
            .authenticate(&setup.client().request())
            .await
            .unwrap_err();
        assert_eq!(full.kind(), ErrorKind::Unavailable);
        assert_eq!(full.status(), 503);
    }
}
