//! The `dpop_client` example as a new user runs it: against a stand-in authorization server
//! that requires its own nonce and binds tokens to the proof's key, and a resource server
//! behind `DpopLayer` with nonces required, both on 127.0.0.1.
#![cfg(feature = "reqwest")]

mod common;

#[allow(dead_code)]
#[path = "../examples/dpop_client.rs"]
mod example;

use common::*;
use example::Args;
use tower_dpop::nonce::NoncePolicy;
use tower_dpop_client::clock::ManualClock;

fn args(list: &[&str]) -> Result<Args, String> {
    Args::parse(list.iter().map(|s| (*s).to_owned()))
}

/// GET and POST with every algorithm: a token (after the endpoint's nonce), the resource
/// (after its nonce), the status and the body.
#[tokio::test]
async fn example_gets_a_token_and_calls_the_resource() {
    // The example uses the system clock; the servers' clock is set to it before each run.
    let clock = ManualClock::at_unix(tower_dpop::testing::unix_now());
    let auth = AuthServer::start(&clock).await;
    let api = ResourceServer::start(&auth, &clock, NoncePolicy::Required).await;
    for alg in ["ES256", "ES384", "EdDSA", "PS256", "RS256"] {
        clock.set(tower_dpop::testing::unix_now());
        let resource = api.url("/api/me");
        let get = args(&[
            "--token-endpoint",
            &auth.token_endpoint,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--resource",
            &resource,
            "--alg",
            alg,
        ])
        .unwrap();
        let (status, body, retried) = example::run(&get).await.unwrap();
        assert_eq!(
            (status.as_u16(), body.as_str(), retried),
            (200, "hello alice: ", true),
            "{alg}"
        );

        let post = args(&[
            "--token-endpoint",
            &auth.token_endpoint,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--resource",
            &resource,
            "--alg",
            alg,
            "--method",
            "POST",
            "--data",
            r#"{"a":1}"#,
        ])
        .unwrap();
        let (status, body, _) = example::run(&post).await.unwrap();
        assert_eq!(
            (status.as_u16(), body.as_str()),
            (200, r#"hello alice: {"a":1}"#),
            "{alg}"
        );
    }
    clock.set(tower_dpop::testing::unix_now());
    // Wrong secret: the token endpoint's refusal is the error.
    let bad = args(&[
        "--token-endpoint",
        &auth.token_endpoint,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        "nope",
        "--resource",
        &api.url("/api/me"),
    ])
    .unwrap();
    let error = example::run(&bad).await.unwrap_err();
    assert!(error.to_string().contains("invalid_client"), "{error}");
}

/// The command line: required flags, defaults, refusals.
#[test]
fn example_arguments() {
    let base = [
        "--token-endpoint",
        "https://as/t",
        "--client-id",
        "c",
        "--client-secret",
        "s",
        "--resource",
        "https://rs/r",
    ];
    let parsed = args(&base).unwrap();
    assert_eq!(parsed.method, reqwest::Method::GET);
    assert_eq!(parsed.alg, tower_dpop_client::Algorithm::ES256);
    assert_eq!(parsed.data, None);
    assert!(args(&base[..6])
        .unwrap_err()
        .contains("--resource is required"));
    let mut with = base.to_vec();
    with.extend(["--method", "DELETE"]);
    assert!(args(&with).is_err());
    let mut with = base.to_vec();
    with.extend(["--alg", "HS256"]);
    assert!(args(&with).is_err());
    let mut with = base.to_vec();
    with.push("--data");
    assert!(args(&with).unwrap_err().contains("needs a value"));
}
