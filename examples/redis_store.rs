//! Two instances of an API sharing one replay store in Redis:
//!
//! ```text
//! redis-server --port 6379 &            # or any Redis you have
//! DPOP_REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis_store --features redis
//! ```
//!
//! `DPOP_REDIS_URL` defaults to `redis://127.0.0.1:6379`.
//!
//! A fleet behind a load balancer must refuse a proof replayed on *another* instance, so the
//! instances share their replay store: each builds a [`RedisReplayStore`] for the same Redis
//! (inside the Tokio runtime, which runs its connection) and hands it to its layer. The
//! program starts two such instances of one API (public origin `https://api.example.com`, as
//! behind one load balancer) on ephemeral ports of 127.0.0.1, sends a valid request to the
//! first (200), then the same proof to the second (401, `invalid_dpop_proof`: the `jti` was
//! already used), prints both answers, and exits with status 1 if one is not the expected one.
//!
//! When Redis cannot be reached the store cannot answer, and the layer fails closed: both
//! requests get 503 (`temporarily_unavailable`), never a pass. The store connects lazily, so
//! a Redis that is down at start does not stop the server from starting.

use std::process::ExitCode;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_dpop::replay::RedisReplayStore;
use tower_dpop::testing::{dpop_headers, unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, DpopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PUBLIC_ORIGIN: &str = "https://api.example.com";

async fn me(auth: DpopAuth) -> String {
    format!("hello {}", auth.claims["sub"])
}

/// One instance: its own layer and store, the store in the shared Redis at `redis_url`.
async fn start_instance(issuer: &TestIssuer, redis_url: &str) -> Result<String, BoxError> {
    let store = RedisReplayStore::builder(redis_url)
        .key_prefix("dpop-example:jti:")
        .timeout(Duration::from_millis(500))
        .build()?;
    let layer = DpopLayer::builder()
        .public_origin(PUBLIC_ORIGIN)
        .token_validator(issuer.validator())
        .replay_store(store)
        .build()?;
    let app = Router::new().route("/me", get(me)).route_layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/me", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("redis_store: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, BoxError> {
    let redis_url = std::env::var("DPOP_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let issuer = TestIssuer::new();
    let first = start_instance(&issuer, &redis_url).await?;
    let second = start_instance(&issuer, &redis_url).await?;
    println!("two instances sharing the replay store in {redis_url}: {first} and {second}");

    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 300);
    let proof = key
        .proof("GET", &format!("{PUBLIC_ORIGIN}/me"))
        .access_token(&token)
        .sign();
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for (name, url) in [("first", &first), ("second", &second)] {
        let response = http
            .get(url.as_str())
            .headers(dpop_headers(&token, &proof))
            .send()
            .await?;
        let status = response.status();
        println!(
            "the proof at the {name} instance: {status} {}",
            response.text().await?
        );
        statuses.push(status.as_u16());
    }
    if statuses == [503, 503] {
        eprintln!("redis_store: Redis at {redis_url} did not answer; the layer failed closed");
    }
    Ok(statuses == [200, 401])
}
