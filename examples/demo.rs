//! DPoP in one process, nothing to set up: `cargo run --example demo`.
//!
//! Starts, on ephemeral ports of 127.0.0.1:
//!
//! - a stand-in authorization server ([`TestIssuer`]) publishing its JWKS at `GET /jwks`;
//! - a protected API behind [`DpopLayer`] (`GET /health` open, `GET /api/me` and
//!   `POST /api/echo` protected), validating JWT access tokens against that JWKS URL;
//!
//! - the same API under `/strict`, with a layer that requires server nonces;
//!
//! then plays a client holding an ES256 key and a token bound to it, and sends ten requests:
//! a valid one, then the attacks DPoP stops (replay, wrong method, wrong URL, stolen token,
//! downgrade to Bearer, no credentials), a valid POST, and the nonce round trip (challenge with
//! a `DPoP-Nonce`, retry with it, success). Each step prints what was sent,
//! the status, the `WWW-Authenticate` challenge and the body. The process exits with status 1
//! if any answer is not the expected one, so the demo checks itself.

use std::process::ExitCode;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{Algorithm, DpopAuth, DpopLayer};

// ---------------------------------------------------------------------------------------------
// The protected API (the same routes as examples/resource_server.rs).

fn api_router(layer: DpopLayer) -> Router {
    let api = Router::new()
        .route("/me", get(me))
        .route("/echo", post(echo))
        .layer(layer);
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/api", api)
}

async fn me(auth: DpopAuth) -> Json<Value> {
    let claim = |name: &str| auth.claims.get(name).cloned().unwrap_or(Value::Null);
    Json(json!({
        "sub": claim("sub"),
        "jkt": auth.jkt.to_string(),
        "client_id": claim("client_id"),
    }))
}

async fn echo(_auth: DpopAuth, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut out = HeaderMap::new();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        out.insert(header::CONTENT_TYPE, ct.clone());
    }
    (out, body)
}

// ---------------------------------------------------------------------------------------------
// Servers.

/// Binds an ephemeral port of 127.0.0.1; returns the listener and its `http://` origin.
async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port on 127.0.0.1");
    let addr = listener
        .local_addr()
        .expect("a bound socket has an address");
    (listener, format!("http://{addr}"))
}

/// Serves `app` until `stop` changes or is dropped.
fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<()>) -> JoinHandle<()> {
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await
            .expect("the server runs");
    })
}

// ---------------------------------------------------------------------------------------------
// Steps.

enum Credentials {
    None,
    Dpop { token: String, proof: String },
    Bearer(String),
}

/// The challenge a step expects.
enum Challenge {
    /// No `WWW-Authenticate` (a success).
    Absent,
    /// `DPoP algs="..."` without an error code.
    Bare,
    /// `DPoP error="<code>", ...`.
    Error(&'static str),
}

struct Step {
    title: &'static str,
    method: Method,
    path: &'static str,
    credentials: Credentials,
    body: Option<&'static str>,
    /// How the request is shown in the transcript.
    sent: String,
    status: u16,
    challenge: Challenge,
    /// For successes: the expected body (compared as JSON when it parses).
    expected_body: Option<String>,
}

struct Answer {
    status: reqwest::StatusCode,
    challenge: Option<String>,
    nonce: Option<String>,
    body: String,
}

async fn send(client: &reqwest::Client, base: &str, step: &Step) -> Answer {
    let mut req = client.request(step.method.clone(), format!("{base}{}", step.path));
    match &step.credentials {
        Credentials::None => {}
        Credentials::Dpop { token, proof } => {
            req = req
                .header(header::AUTHORIZATION, format!("DPoP {token}"))
                .header("DPoP", proof);
        }
        Credentials::Bearer(token) => {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
    }
    if let Some(body) = step.body {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let resp = req.send().await.expect("the protected API answers");
    let status = resp.status();
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let nonce = resp
        .headers()
        .get("dpop-nonce")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = resp.text().await.expect("the response body can be read");
    Answer {
        status,
        challenge,
        nonce,
        body,
    }
}

/// The `error` parameter of a `DPoP` challenge.
fn error_code(challenge: &str) -> Option<&str> {
    let rest = challenge.split_once("error=\"")?.1;
    rest.split_once('"').map(|(code, _)| code)
}

fn same_body(expected: &str, actual: &str) -> bool {
    match (
        serde_json::from_str::<Value>(expected),
        serde_json::from_str::<Value>(actual),
    ) {
        (Ok(e), Ok(a)) => e == a,
        _ => expected == actual,
    }
}

/// `None` when the answer is the expected one, else what was expected.
fn check(step: &Step, answer: &Answer) -> Option<String> {
    let challenge_ok = match (&step.challenge, answer.challenge.as_deref()) {
        (Challenge::Absent, None) => true,
        (Challenge::Bare, Some(c)) => c.starts_with("DPoP") && error_code(c).is_none(),
        (Challenge::Error(code), Some(c)) => c.starts_with("DPoP") && error_code(c) == Some(code),
        _ => false,
    };
    let body_ok = match step.expected_body.as_deref() {
        Some(b) => same_body(b, &answer.body),
        None => true,
    };
    if answer.status.as_u16() == step.status && challenge_ok && body_ok {
        return None;
    }
    let wanted = match &step.challenge {
        Challenge::Absent => String::new(),
        Challenge::Bare => " with a bare DPoP challenge".to_owned(),
        Challenge::Error(code) => format!(" {code}"),
    };
    let body = match &step.expected_body {
        Some(b) if !body_ok => format!(" and body {b}"),
        _ => String::new(),
    };
    Some(format!("{}{wanted}{body}", step.status))
}

/// Sends one step, prints it, and records it when the answer is not the expected one.
async fn run(
    http: &reqwest::Client,
    api: &str,
    n: usize,
    step: &Step,
    unexpected: &mut Vec<usize>,
) -> Answer {
    let answer = send(http, api, step).await;
    let verdict = check(step, &answer);
    println!("{n}. {}", step.title);
    println!("   > {} {}  {}", step.method, step.path, step.sent);
    match &verdict {
        None => println!("   < {}  (as expected)", answer.status),
        Some(wanted) => println!("   < {}  UNEXPECTED, wanted {wanted}", answer.status),
    }
    if let Some(challenge) = &answer.challenge {
        println!("     WWW-Authenticate: {challenge}");
    }
    if let Some(nonce) = &answer.nonce {
        println!("     DPoP-Nonce: {nonce}");
    }
    println!("     {}", answer.body);
    if verdict.is_some() {
        unexpected.push(n);
    }
    answer
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> ExitCode {
    let (stop, stop_rx) = watch::channel(());

    // (a) The authorization server stand-in: signs tokens, publishes its JWKS.
    let issuer = TestIssuer::new();
    let jwks = issuer.jwks_json();
    let as_app = Router::new().route(
        "/jwks",
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], jwks) }),
    );
    let (as_listener, as_base) = bind().await;
    let as_task = serve(as_listener, as_app, stop_rx.clone());
    let jwks_url = format!("{as_base}/jwks");

    // (b) The protected API. Its public origin is only known once the port is bound.
    let (api_listener, api) = bind().await;
    let validator = JwtValidator::builder()
        .jwks_url(&jwks_url)
        // The demo's authorization server listens on 127.0.0.1, over plain HTTP.
        .allow_insecure_http(true)
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .build()
        .expect("a valid token validator configuration");
    let layer = DpopLayer::builder()
        .public_origin(&api)
        .token_validator(validator.clone())
        .build()
        .expect("a valid layer configuration");
    let strict = DpopLayer::builder()
        .public_origin(&api)
        .token_validator(validator)
        .nonce_policy(NoncePolicy::Required)
        .build()
        .expect("a valid layer configuration");
    let app = api_router(layer).nest("/strict", Router::new().route("/me", get(me)).layer(strict));
    let api_task = serve(api_listener, app, stop_rx);

    // (c) The client: a key pair and a token bound to it.
    let client_key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(client_key.jkt(), unix_now() + 3600);
    let attacker = ClientKey::generate(Algorithm::ES256);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");

    println!("tower-dpop demo: DPoP (RFC 9449) proof-of-possession");
    println!(
        "  authorization server  {jwks_url}  (iss {})",
        issuer.issuer()
    );
    println!(
        "  protected API         {api}  (/health open, /api/* needs DPoP, /strict/* nonces too)"
    );
    println!("  client key            ES256, jkt {}", client_key.jkt());
    println!("  access token          sub alice, client_id demo-client, bound to that jkt, 1 h");
    println!();

    let url = |path: &str| format!("{api}{path}");
    let proof = |key: &ClientKey, method: &str, path: &str| {
        key.proof(method, &url(path)).access_token(&token).sign()
    };
    let dpop = |proof: &str| Credentials::Dpop {
        token: token.clone(),
        proof: proof.to_owned(),
    };
    let first_proof = proof(&client_key, "GET", "/api/me");
    let echo_body = r#"{"message":"hello, DPoP"}"#;

    let steps = [
        Step {
            title: "a valid call",
            method: Method::GET,
            path: "/api/me",
            credentials: dpop(&first_proof),
            body: None,
            sent: "token + proof (GET /api/me)".into(),
            status: 200,
            challenge: Challenge::Absent,
            expected_body: Some(
                json!({ "sub": "alice", "jkt": client_key.jkt(), "client_id": "demo-client" })
                    .to_string(),
            ),
        },
        Step {
            title: "the same proof replayed",
            method: Method::GET,
            path: "/api/me",
            credentials: dpop(&first_proof),
            body: None,
            sent: "token + the proof of step 1 again".into(),
            status: 401,
            challenge: Challenge::Error("invalid_dpop_proof"),
            expected_body: None,
        },
        Step {
            title: "a proof made for another method",
            method: Method::GET,
            path: "/api/me",
            credentials: dpop(&proof(&client_key, "POST", "/api/me")),
            body: None,
            sent: "token + proof (POST /api/me)".into(),
            status: 401,
            challenge: Challenge::Error("invalid_dpop_proof"),
            expected_body: None,
        },
        Step {
            title: "a proof made for another URL",
            method: Method::GET,
            path: "/api/me",
            credentials: dpop(&proof(&client_key, "GET", "/api/other")),
            body: None,
            sent: "token + proof (GET /api/other)".into(),
            status: 401,
            challenge: Challenge::Error("invalid_dpop_proof"),
            expected_body: None,
        },
        Step {
            title: "a stolen token used with another key",
            method: Method::GET,
            path: "/api/me",
            credentials: dpop(&proof(&attacker, "GET", "/api/me")),
            body: None,
            sent: "victim's token + valid proof signed by the attacker's key".into(),
            status: 401,
            challenge: Challenge::Error("invalid_token"),
            expected_body: None,
        },
        Step {
            title: "the token sent as a Bearer token",
            method: Method::GET,
            path: "/api/me",
            credentials: Credentials::Bearer(token.clone()),
            body: None,
            sent: "Authorization: Bearer <token>, no proof".into(),
            status: 401,
            challenge: Challenge::Bare,
            expected_body: None,
        },
        Step {
            title: "no credentials",
            method: Method::GET,
            path: "/api/me",
            credentials: Credentials::None,
            body: None,
            sent: "no Authorization, no DPoP header".into(),
            status: 401,
            challenge: Challenge::Bare,
            expected_body: None,
        },
        Step {
            title: "a POST with a fresh proof",
            method: Method::POST,
            path: "/api/echo",
            credentials: dpop(&proof(&client_key, "POST", "/api/echo")),
            body: Some(echo_body),
            sent: format!("token + proof (POST /api/echo), body {echo_body}"),
            status: 200,
            challenge: Challenge::Absent,
            expected_body: Some(echo_body.to_owned()),
        },
    ];

    let mut unexpected = Vec::new();
    let mut count = 0;
    for step in &steps {
        count += 1;
        run(&http, &api, count, step, &mut unexpected).await;
    }

    // The nonce round trip: the server asks for a nonce, the client retries with it.
    count += 1;
    let challenge = Step {
        title: "a server that requires nonces, asked without one",
        method: Method::GET,
        path: "/strict/me",
        credentials: dpop(&proof(&client_key, "GET", "/strict/me")),
        body: None,
        sent: "token + proof without a nonce".into(),
        status: 401,
        challenge: Challenge::Error("use_dpop_nonce"),
        expected_body: None,
    };
    let nonce = run(&http, &api, count, &challenge, &mut unexpected)
        .await
        .nonce
        .unwrap_or_default();
    count += 1;
    let with_nonce = client_key
        .proof("GET", &url("/strict/me"))
        .access_token(&token)
        .nonce(&nonce)
        .sign();
    let retry = Step {
        title: "the retry with the server's nonce",
        method: Method::GET,
        path: "/strict/me",
        credentials: dpop(&with_nonce),
        body: None,
        sent: "token + proof carrying the DPoP-Nonce of step 9".into(),
        status: 200,
        challenge: Challenge::Absent,
        expected_body: Some(
            json!({ "sub": "alice", "jkt": client_key.jkt(), "client_id": "demo-client" })
                .to_string(),
        ),
    };
    run(&http, &api, count, &retry, &mut unexpected).await;

    // Shut both servers down (dropping the client closes its idle connections first).
    drop(http);
    drop(stop);
    for task in [as_task, api_task] {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }

    println!();
    if unexpected.is_empty() {
        println!("demo: {count} steps, all answered as expected");
        ExitCode::SUCCESS
    } else {
        let list: Vec<String> = unexpected.iter().map(ToString::to_string).collect();
        println!(
            "demo: {count} steps, {} answered unexpectedly (step {})",
            unexpected.len(),
            list.join(", ")
        );
        ExitCode::FAILURE
    }
}
