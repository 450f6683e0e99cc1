//! The JWT validator's remote key set, served over HTTP on 127.0.0.1 by a server whose
//! behaviour the tests switch at runtime (serve, fail with 500, hang), with time driven by a
//! `ManualClock`: one fetch at a time and one per interval, stale keys used while a refresh
//! runs, a hard limit past which the answer is 503, and recovery.
#![cfg(all(feature = "axum", feature = "jwks-fetch"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::TestIssuer;
use tower_dpop::token::jwt::{JwtValidator, JwtValidatorBuilder};
use tower_dpop::token::{TokenError, TokenValidator};

const T0: u64 = 1_700_000_000;
const AUD: &str = "https://api.example.com";
const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
/// The default `jwks_refresh_interval`.
const INTERVAL: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum Mode {
    Serve(String),
    Fail,
    Hang,
}

/// A JWKS endpoint on 127.0.0.1 that counts the requests it gets.
struct Jwks {
    mode: Arc<Mutex<Mode>>,
    fetches: Arc<AtomicUsize>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Jwks {
    async fn serve(body: String) -> Self {
        let mode = Arc::new(Mutex::new(Mode::Serve(body)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (m, f) = (mode.clone(), fetches.clone());
        let app = Router::new().route(
            "/jwks",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                let mode = m.lock().unwrap().clone();
                async move {
                    match mode {
                        Mode::Serve(body) => body.into_response(),
                        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        Mode::Hang => std::future::pending::<Response>().await,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            mode,
            fetches,
            url,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Waits (at most `bound`) until the endpoint has received `n` requests.
    async fn until_fetches(&self, n: usize, bound: Duration) {
        let reached = async {
            while self.fetches() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(bound, reached)
            .await
            .unwrap_or_else(|_| panic!("the endpoint never got request {n}"));
    }

    /// A validator of this endpoint's keys, on `clock`, for issuer `https://as.example.com`.
    fn validator(&self, clock: &ManualClock) -> JwtValidatorBuilder {
        JwtValidator::builder()
            .jwks_url(&self.url)
            .allow_insecure_http(true)
            .clock(clock.clone())
            .issuer("https://as.example.com")
            .audience(AUD)
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn token(issuer: &TestIssuer) -> String {
    issuer.token_for(JKT, T0 + 3600)
}

/// One JWKS with the keys of all these issuers.
fn set_of(issuers: &[&TestIssuer]) -> String {
    let keys: Vec<Value> = issuers
        .iter()
        .flat_map(|i| {
            let set: Value = serde_json::from_str(&i.jwks_json()).unwrap();
            set["keys"].as_array().unwrap().clone()
        })
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

fn is_unavailable(r: &Result<impl std::fmt::Debug, TokenError>) -> bool {
    matches!(r, Err(TokenError::Unavailable(_)))
}

fn is_invalid(r: &Result<impl std::fmt::Debug, TokenError>) -> bool {
    matches!(r, Err(TokenError::Invalid(_)))
}

/// Many new tokens at once, none of whose key is held: one fetch, which they all wait for.
#[tokio::test]
async fn concurrent_tokens_with_an_unknown_kid_share_one_fetch() {
    let old = TestIssuer::new();
    let jwks = Jwks::serve(old.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks.validator(&clock).build().unwrap();
    let tokens: Vec<String> = (0..16).map(|_| token(&old)).collect();
    let results = futures::future::join_all(tokens.iter().map(|t| validator.validate(t))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(jwks.fetches(), 1, "no keys yet: one fetch for all");

    // The authorization server rotates; after the interval, tokens with the new kid share
    // one fetch again.
    let new = TestIssuer::new();
    jwks.set(Mode::Serve(new.jwks_json()));
    clock.advance(INTERVAL);
    let tokens: Vec<String> = (0..16).map(|_| token(&new)).collect();
    let results = futures::future::join_all(tokens.iter().map(|t| validator.validate(t))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(jwks.fetches(), 2);
}

/// An unknown `kid` triggers a fetch only when one may start; otherwise it is refused at once,
/// already by `validate_offline`.
#[tokio::test]
async fn an_unknown_kid_fetches_at_most_once_per_interval() {
    let known = TestIssuer::new();
    let unknown = TestIssuer::new();
    let jwks = Jwks::serve(known.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks.validator(&clock).build().unwrap();
    validator.validate(&token(&known)).await.unwrap();
    assert_eq!(jwks.fetches(), 1);

    clock.advance(INTERVAL - Duration::from_millis(1));
    for _ in 0..20 {
        let t = token(&unknown);
        assert!(is_invalid(&validator.validate_offline(&t).unwrap()));
        assert!(is_invalid(&validator.validate(&t).await));
        assert!(validator.validate_offline(&token(&known)).unwrap().is_ok());
    }
    assert_eq!(jwks.fetches(), 1, "within the interval: no fetch");

    clock.advance(Duration::from_millis(1));
    let t = token(&unknown);
    assert!(
        validator.validate_offline(&t).is_none(),
        "a fetch may start"
    );
    assert!(is_invalid(&validator.validate(&t).await));
    assert_eq!(jwks.fetches(), 2);
    for _ in 0..20 {
        assert!(is_invalid(&validator.validate(&token(&unknown)).await));
    }
    assert_eq!(jwks.fetches(), 2);
    // A known kid never fetches while the keys are fresh, whatever the interval allows.
    clock.advance(INTERVAL * 10);
    validator.validate(&token(&known)).await.unwrap();
    assert_eq!(jwks.fetches(), 2);
}

/// Keys past `jwks_max_age` and an endpoint answering 500: the keys keep serving, and the
/// endpoint is asked at most once per interval, however many requests come.
#[tokio::test]
async fn stale_keys_and_a_failing_endpoint_make_no_fetch_storm() {
    let issuer = TestIssuer::new();
    let unknown = TestIssuer::new();
    let jwks = Jwks::serve(issuer.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    jwks.set(Mode::Fail);
    clock.advance(Duration::from_secs(61));

    // A burst at one instant: one background refresh.
    for _ in 0..200 {
        validator.validate(&token(&issuer)).await.unwrap();
    }
    // A token with an unknown kid waits for the fetch in flight: once it is answered, the
    // refresh has ended (failed).
    assert!(is_invalid(&validator.validate(&token(&unknown)).await));
    assert_eq!(jwks.fetches(), 2);

    // Five minutes of requests, every 3 s, each followed by one with an unknown kid.
    let step = Duration::from_secs(3);
    let steps = 100;
    for _ in 0..steps {
        clock.advance(step);
        validator.validate(&token(&issuer)).await.unwrap();
        assert!(is_invalid(&validator.validate(&token(&unknown)).await));
    }
    let elapsed = step.as_secs() * steps;
    let refreshes = jwks.fetches() - 2;
    assert!(
        refreshes as u64 <= elapsed / INTERVAL.as_secs(),
        "{refreshes} fetches in {elapsed} s"
    );
    assert!(refreshes >= 2, "the refresh is retried every interval");
}

/// A hanging endpoint: requests that have usable keys are answered from them while the
/// refresh hangs; they never wait for it.
#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_requests_that_have_keys() {
    let timeout = Duration::from_secs(2);
    let issuer = TestIssuer::new();
    let jwks = Jwks::serve(issuer.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .jwks_timeout(timeout)
        .build()
        .unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    jwks.set(Mode::Hang);
    clock.advance(Duration::from_secs(61));
    let t = token(&issuer);
    assert!(validator.validate_offline(&t).is_none(), "a refresh is due");
    // A request that waited for the hanging fetch would take the whole timeout; the one that
    // starts the refresh does not wait for it either.
    let answer = tokio::time::timeout(timeout / 2, validator.validate(&t)).await;
    assert!(matches!(answer, Ok(Ok(_))), "{answer:?}");
    // Once the endpoint holds the refresh request, hanging:
    jwks.until_fetches(2, timeout).await;
    for _ in 0..20 {
        let answer = tokio::time::timeout(timeout / 2, validator.validate(&t)).await;
        assert!(matches!(answer, Ok(Ok(_))), "{answer:?}");
        // While the refresh is in flight, the stale keys answer without I/O.
        assert!(validator.validate_offline(&t).unwrap().is_ok());
    }
    assert_eq!(jwks.fetches(), 2);
}

/// A hanging endpoint and no keys: every request waits for the one fetch, so none waits
/// longer than one timeout (not one timeout per request ahead of it).
#[tokio::test]
async fn a_hanging_endpoint_delays_requests_without_keys_by_one_timeout_at_most() {
    let timeout = Duration::from_millis(500);
    let issuer = TestIssuer::new();
    let jwks = Jwks::serve(String::new()).await;
    jwks.set(Mode::Hang);
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_timeout(timeout)
        .build()
        .unwrap();
    let tokens: Vec<String> = (0..4).map(|_| token(&issuer)).collect();
    let all = futures::future::join_all(tokens.iter().map(|t| validator.validate(t)));
    let results = tokio::time::timeout(timeout * 2, all)
        .await
        .expect("every request answered within two timeouts");
    assert!(results.iter().all(is_unavailable), "{results:?}");
    assert_eq!(jwks.fetches(), 1);
    // The interval has not passed: no fetch may start, so the answer is at once, offline.
    assert!(is_unavailable(
        &validator.validate_offline(&tokens[0]).unwrap()
    ));
}

/// A request cancelled while it waits for the fetch it started leaves nothing stuck: the fetch
/// runs in its own task and clears its mark when it ends.
#[tokio::test]
async fn a_cancelled_request_does_not_wedge_the_fetch() {
    let issuer = TestIssuer::new();
    let jwks = Jwks::serve(issuer.jwks_json()).await;
    jwks.set(Mode::Hang);
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let t = token(&issuer);
    let cancelled = tokio::time::timeout(Duration::from_millis(20), validator.validate(&t)).await;
    assert!(cancelled.is_err(), "the request was dropped mid-fetch");
    // Another request joins the fetch still in flight, and gets its outcome.
    assert!(is_unavailable(&validator.validate(&t).await));
    assert_eq!(jwks.fetches(), 1);
    jwks.set(Mode::Serve(issuer.jwks_json()));
    clock.advance(INTERVAL);
    validator.validate(&t).await.unwrap();
    assert_eq!(jwks.fetches(), 2);
}

/// Keys stay usable past `jwks_max_age` up to `jwks_max_stale` more while fetches fail; past
/// that the answer is 503 until a fetch succeeds, and then the new keys are used.
#[tokio::test]
async fn keys_past_the_hard_limit_give_503_until_a_fetch_succeeds() {
    let old = TestIssuer::new();
    let jwks = Jwks::serve(old.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .jwks_max_stale(Duration::from_secs(120))
        .build()
        .unwrap();
    validator.validate(&token(&old)).await.unwrap();
    jwks.set(Mode::Fail);

    // Just inside the limit (180 s): still served, a refresh (failing) in the background.
    clock.advance(Duration::from_millis(179_999));
    validator.validate(&token(&old)).await.unwrap();
    assert!(is_invalid(
        &validator.validate(&token(&TestIssuer::new())).await
    ));
    assert_eq!(jwks.fetches(), 2);

    // At the limit: no usable key. The last fetch started less than an interval ago, so the
    // answer is 503 at once, offline too.
    clock.advance(Duration::from_millis(1));
    let t = token(&old);
    assert!(is_unavailable(&validator.validate_offline(&t).unwrap()));
    assert!(is_unavailable(&validator.validate(&t).await));
    assert_eq!(jwks.fetches(), 2);
    // Once a fetch may start, the request waits for it; it fails: 503.
    clock.advance(INTERVAL);
    assert!(validator.validate_offline(&t).is_none());
    assert!(is_unavailable(&validator.validate(&t).await));
    assert_eq!(jwks.fetches(), 3);

    // The endpoint recovers with rotated keys: the next allowed fetch brings them.
    let new = TestIssuer::new();
    jwks.set(Mode::Serve(new.jwks_json()));
    clock.advance(INTERVAL);
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(jwks.fetches(), 4);
    assert!(validator.validate_offline(&token(&new)).unwrap().is_ok());
    assert!(
        is_invalid(&validator.validate(&token(&old)).await),
        "the withdrawn key is no longer trusted"
    );
}

/// A background refresh that succeeds replaces the keys: tokens of a rotated-in key are then
/// answered offline, with no fetch of their own.
#[tokio::test]
async fn a_background_refresh_brings_rotated_keys() {
    let old = TestIssuer::new();
    let new = TestIssuer::new();
    let jwks = Jwks::serve(old.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    validator.validate(&token(&old)).await.unwrap();
    jwks.set(Mode::Serve(set_of(&[&old, &new])));
    clock.advance(Duration::from_secs(60));
    // Due for a refresh: `validate_offline` leaves it to `validate`, and starts nothing itself
    // (asked twice, it still says a refresh is due).
    let t = token(&old);
    assert!(validator.validate_offline(&t).is_none());
    assert!(validator.validate_offline(&t).is_none());
    assert_eq!(jwks.fetches(), 1);
    validator.validate(&t).await.unwrap();
    // A token with the new kid joins the refresh in flight, if it has not ended yet.
    validator.validate(&token(&new)).await.unwrap();
    assert_eq!(jwks.fetches(), 2);
    assert!(validator.validate_offline(&token(&new)).unwrap().is_ok());
    assert!(validator.validate_offline(&token(&old)).unwrap().is_ok());
}

#[tokio::test]
async fn failed_refresh_keeps_the_old_keys_and_no_keys_fails_closed() {
    let issuer = TestIssuer::new();
    let jwks = Jwks::serve(issuer.jwks_json()).await;
    let clock = ManualClock::at_unix(T0);
    let validator = jwks
        .validator(&clock)
        .jwks_max_age(Duration::from_secs(60))
        .build()
        .unwrap();
    validator.validate(&token(&issuer)).await.unwrap();
    // The server now serves garbage: known kids keep working from the cached keys.
    jwks.set(Mode::Serve("not json".into()));
    clock.advance(Duration::from_secs(61));
    validator.validate(&token(&issuer)).await.unwrap();
    assert!(is_invalid(
        &validator.validate(&token(&TestIssuer::new())).await
    ));
    assert_eq!(jwks.fetches(), 2);
    validator.validate(&token(&issuer)).await.unwrap();

    // A validator that never got keys answers "unavailable" (503), never "valid".
    let fresh = jwks.validator(&clock).build().unwrap();
    assert!(is_unavailable(&fresh.validate(&token(&issuer)).await));
}

#[tokio::test]
async fn a_plain_http_jwks_url_is_refused_unless_allowed() {
    let base = || {
        JwtValidator::builder()
            .issuer("https://as.example.com")
            .audience(AUD)
    };
    let err = base()
        .jwks_url("http://127.0.0.1:1/jwks")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("must be https"), "{err}");
    assert!(base()
        .jwks_url("http://127.0.0.1:1/jwks")
        .allow_insecure_http(true)
        .build()
        .is_ok());
    assert!(base()
        .jwks_url("https://as.example.com/jwks")
        .build()
        .is_ok());
    for bad in ["ftp://as.example.com/jwks", "not a url"] {
        assert!(base().jwks_url(bad).build().is_err(), "{bad}");
    }
    let zero = base()
        .jwks_url("https://as.example.com/jwks")
        .jwks_refresh_interval(Duration::ZERO)
        .build();
    assert!(zero.is_err());
}

/// Outside a Tokio runtime nothing can be fetched: the answer is 503, and nothing panics.
#[test]
fn without_a_tokio_runtime_nothing_is_fetched_and_nothing_panics() {
    let issuer = TestIssuer::new();
    let validator = JwtValidator::builder()
        .jwks_url("http://127.0.0.1:9/jwks")
        .allow_insecure_http(true)
        .issuer(issuer.issuer())
        .audience(AUD)
        .build()
        .unwrap();
    let t = token(&issuer);
    assert!(is_unavailable(&validator.validate_offline(&t).unwrap()));
    assert!(is_unavailable(&futures::executor::block_on(
        validator.validate(&t)
    )));
}
