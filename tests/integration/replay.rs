//! Replay protection at the edges: a used proof stays refused at every instant up to where its
//! `iat` is refused, on one layer and on layers sharing a store whose clocks are apart (within
//! the clock skew allowance); one key cannot fill the store for the others.
//!
//! Clocks are injected [`ManualClock`]s of millisecond resolution; the replay store measures
//! entry lifetimes on a clock of its own, as a shared store (Redis) does.
#![cfg(feature = "axum")]

use std::time::Duration;

use http::{Method, StatusCode};
use tower::ServiceExt as _;
use tower_dpop::clock::ManualClock;
use tower_dpop::replay::MemoryReplayStore;
use tower_dpop::testing::{dpop_headers, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopLayer, DpopLayerBuilder, Error, ErrorKind};

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/r";

struct Client {
    key: ClientKey,
    token: String,
}

impl Client {
    fn new(issuer: &TestIssuer) -> Self {
        let key = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(key.jkt(), T0 + 3600);
        Self { key, token }
    }

    fn proof(&self, iat: u64) -> String {
        self.key
            .proof("GET", URL)
            .access_token(&self.token)
            .iat(iat)
            .sign()
    }

    async fn send(&self, layer: &DpopLayer, proof: &str) -> Result<(), Error> {
        layer
            .authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/r",
                &dpop_headers(&self.token, proof),
            ))
            .await
            .map(|_| ())
    }
}

fn layer(
    issuer: &TestIssuer,
    clock: &ManualClock,
    configure: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder,
) -> DpopLayer {
    let builder = DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(issuer.validator())
        .clock(clock.clone());
    configure(builder).build().unwrap()
}

fn replay() -> Result<(), Error> {
    Err(Error::new(
        ErrorKind::ProofReplayed,
        "proof jti was already used",
    ))
}
fn too_old() -> Result<(), Error> {
    Err(Error::new(ErrorKind::ProofTooOld, "proof iat is too old"))
}

/// Sets `clock` to `at_ms` (milliseconds since the epoch).
fn set_ms(clock: &ManualClock, at_ms: u64) {
    clock.set_unix(at_ms / 1000);
    clock.advance(Duration::from_millis(at_ms % 1000));
}

/// Replays `proof` on `layer` at every step from `from_ms` until the layer refuses its `iat`,
/// asserting that every earlier step sees a replay; returns the instant of the first refusal.
async fn replay_until_too_old(
    client: &Client,
    layer: &DpopLayer,
    proof: &str,
    clocks: &[&ManualClock],
    from_ms: u64,
    step_ms: u64,
) -> u64 {
    let mut at = from_ms;
    loop {
        for clock in clocks {
            set_ms(clock, at);
        }
        match client.send(layer, proof).await {
            r if r == replay() => {}
            r if r == too_old() => return at,
            other => panic!("replay at {} ms after T0: {other:?}", at - T0 * 1000),
        }
        at += step_ms;
    }
}

/// One layer, its default store on its own clock: whatever the proof's `iat` in the window,
/// a replay is refused up to the very millisecond its `iat` is, which is `iat + max_age`.
#[tokio::test]
async fn a_used_proof_is_refused_at_every_instant_until_its_iat_is() {
    let issuer = TestIssuer::new();
    let client = Client::new(&issuer);
    let clock = ManualClock::at_unix(T0);
    let layer = layer(&issuer, &clock, |b| b);
    // Oldest, current, and furthest in the future an `iat` may be when first used at T0.
    for iat in [T0 - 60, T0 - 30, T0, T0 + 5] {
        set_ms(&clock, T0 * 1000);
        let proof = client.proof(iat);
        assert_eq!(client.send(&layer, &proof).await, Ok(()), "iat {iat}");
        let refused_at =
            replay_until_too_old(&client, &layer, &proof, &[&clock], T0 * 1000, 250).await;
        // From 250 ms before the edge, millisecond by millisecond.
        let edge = (iat + 60) * 1000;
        assert!(refused_at > edge, "refused as too old before {edge}");
        let refused_at =
            replay_until_too_old(&client, &layer, &proof, &[&clock], edge - 250, 1).await;
        assert_eq!(
            refused_at,
            edge + 1,
            "iat {iat}: too old 1 ms after the edge"
        );
    }
}

/// Two layers share one store; the second layer's clock is behind the first's by less than
/// the clock skew allowance (5 s by default), and the store's clock is the first layer's. A
/// proof used on the first is refused on the second for as long as the second would accept its
/// `iat`, including an `iat` as far ahead as the future leeway allows.
#[tokio::test]
async fn layers_sharing_a_store_with_clocks_apart_refuse_the_replay() {
    let issuer = TestIssuer::new();
    let client = Client::new(&issuer);
    let ahead = ManualClock::at_unix(T0);
    let behind = ManualClock::at_unix(T0);
    let store = MemoryReplayStore::new(10_000).clock(ahead.clone());
    let first = layer(&issuer, &ahead, |b| b.replay_store(store.clone()));
    let second = layer(&issuer, &behind, |b| b.replay_store(store.clone()));
    let skew_ms = 4_900;
    for iat in [T0, T0 + 5] {
        set_ms(&ahead, T0 * 1000);
        set_ms(&behind, T0 * 1000 - skew_ms);
        let proof = client.proof(iat);
        assert_eq!(client.send(&first, &proof).await, Ok(()));
        // Step both clocks together: `behind` stays `skew_ms` behind `ahead`.
        let mut at = T0 * 1000;
        loop {
            set_ms(&ahead, at);
            set_ms(&behind, at - skew_ms);
            match client.send(&second, &proof).await {
                r if r == replay() => {}
                r if r == too_old() => break,
                // Before the second layer's clock reaches `iat - future_leeway`.
                Err(e)
                    if e.kind() == ErrorKind::ProofFromTheFuture
                        && at - skew_ms < (iat - 5) * 1000 => {}
                other => panic!(
                    "iat {iat}, {} ms after first use: {other:?}",
                    at - T0 * 1000
                ),
            }
            at += 100;
        }
        // The second layer held out until its own clock passed `iat + max_age`.
        assert!(at - skew_ms > (iat + 60) * 1000, "iat {iat}");
    }
}

/// Every entry lives the whole replay window, `max_age + future_leeway +
/// clock_skew_allowance`, whatever the proof's `iat`.
#[test]
fn the_replay_window_is_max_age_plus_leeway_plus_skew() {
    let issuer = TestIssuer::new();
    let clock = ManualClock::at_unix(T0);
    let default = layer(&issuer, &clock, |b| b);
    assert_eq!(default.config().replay_window(), Duration::from_secs(70));
    let custom = layer(&issuer, &clock, |b| {
        b.max_proof_age(Duration::from_secs(30))
            .future_leeway(Duration::from_secs(2))
            .clock_skew_allowance(Duration::from_millis(1500))
    });
    assert_eq!(
        custom.config().replay_window(),
        Duration::from_millis(33_500)
    );
    let err = DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(issuer.validator())
        .clock_skew_allowance(Duration::from_secs(301))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("clock_skew_allowance"), "{err}");
}

/// One key over its quota is refused (429 with `Retry-After`) while another key is served; a
/// replay does not use up the quota.
#[tokio::test]
async fn a_key_over_its_quota_is_refused_while_another_key_is_served() {
    let issuer = TestIssuer::new();
    let greedy = Client::new(&issuer);
    let other = Client::new(&issuer);
    let clock = ManualClock::at_unix(T0);
    let layer = layer(&issuer, &clock, |b| b.replay_key_quota(3));
    let first = greedy.proof(T0);
    assert_eq!(greedy.send(&layer, &first).await, Ok(()));
    for _ in 0..5 {
        assert_eq!(
            greedy.send(&layer, &first).await,
            replay(),
            "replays are free"
        );
    }
    assert_eq!(greedy.send(&layer, &greedy.proof(T0)).await, Ok(()));
    assert_eq!(greedy.send(&layer, &greedy.proof(T0)).await, Ok(()));
    let over = greedy.send(&layer, &greedy.proof(T0)).await;
    assert!(
        matches!(&over, Err(e) if e.kind() == ErrorKind::KeyQuotaExceeded
            && e.retry_after().is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(80))),
        "{over:?}"
    );
    assert_eq!(other.send(&layer, &other.proof(T0)).await, Ok(()));

    // Through the service: 429, Retry-After in whole seconds, no challenge.
    let app = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service_fn(|_req: http::Request<axum::body::Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
        });
    let mut req = http::Request::get(URL)
        .body(axum::body::Body::empty())
        .unwrap();
    *req.headers_mut() = dpop_headers(&greedy.token, &greedy.proof(T0));
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=80).contains(&retry), "{retry}");
    assert!(!resp.headers().contains_key("www-authenticate"));

    // Once the window has passed, the key is served again.
    clock.advance(Duration::from_secs(81));
    assert_eq!(greedy.send(&layer, &greedy.proof(T0 + 81)).await, Ok(()));
}

/// A full store refuses every new proof (503) and keeps its live entries: nothing is evicted
/// to make room, so replays of what it holds are still caught.
#[tokio::test]
async fn a_full_store_refuses_without_evicting() {
    let issuer = TestIssuer::new();
    let a = Client::new(&issuer);
    let b = Client::new(&issuer);
    let clock = ManualClock::at_unix(T0);
    let store = MemoryReplayStore::new(2).clock(clock.clone());
    let layer = layer(&issuer, &clock, |x| x.replay_store(store.clone()));
    let (pa, pb) = (a.proof(T0), b.proof(T0));
    assert_eq!(a.send(&layer, &pa).await, Ok(()));
    assert_eq!(b.send(&layer, &pb).await, Ok(()));
    let full = Err(Error::new(ErrorKind::Unavailable, "replay cache is full"));
    assert_eq!(a.send(&layer, &a.proof(T0)).await, full);
    assert_eq!(b.send(&layer, &b.proof(T0)).await, full);
    assert_eq!(a.send(&layer, &pa).await, replay());
    assert_eq!(b.send(&layer, &pb).await, replay());
}

/// The default quota: 1 % of a bounded store's capacity, at least 100 (or the capacity when
/// smaller), 10 000 for a store that does not report its capacity.
#[test]
fn the_default_quota_follows_the_store_capacity() {
    #[derive(Debug)]
    struct Unbounded;
    #[async_trait::async_trait]
    impl tower_dpop::replay::ReplayStore for Unbounded {
        async fn check_and_insert(
            &self,
            _: tower_dpop::replay::ReplayKey,
            _: Duration,
        ) -> Result<tower_dpop::replay::Seen, tower_dpop::replay::ReplayError> {
            Ok(tower_dpop::replay::Seen::First)
        }
    }
    let issuer = TestIssuer::new();
    let clock = ManualClock::at_unix(T0);
    let quota = |b: fn(DpopLayerBuilder) -> DpopLayerBuilder| {
        layer(&issuer, &clock, b).config().replay_key_quota()
    };
    assert_eq!(quota(|b| b), 10_000);
    assert_eq!(quota(|b| b.replay_store(MemoryReplayStore::new(50))), 50);
    assert_eq!(
        quota(|b| b.replay_store(MemoryReplayStore::new(5_000))),
        100
    );
    assert_eq!(
        quota(|b| b.replay_store(MemoryReplayStore::new(300_000))),
        3_000
    );
    assert_eq!(quota(|b| b.replay_store(Unbounded)), 10_000);
    assert_eq!(quota(|b| b.replay_key_quota(7)), 7);
    let err = DpopLayer::builder()
        .public_origin(ORIGIN)
        .token_validator(issuer.validator())
        .replay_key_quota(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("replay_key_quota"), "{err}");
}
