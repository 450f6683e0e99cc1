//! A DPoP-protected API whose access tokens are opaque, validated by OAuth 2.0 token
//! introspection (RFC 7662) at the authorization server:
//!
//! ```text
//! DPOP_INTROSPECTION_URL=https://as.example.com/introspect \
//! DPOP_CLIENT_ID=api DPOP_CLIENT_SECRET=... \
//! DPOP_ISSUER=https://as.example.com DPOP_AUDIENCE=https://api.example.com \
//!   cargo run --example introspection --features introspection
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DPOP_INTROSPECTION_URL` | the introspection endpoint (`https:`; `http:` only with `DPOP_ALLOW_INSECURE_HTTP=1`) | required |
//! | `DPOP_CLIENT_ID`, `DPOP_CLIENT_SECRET` | this API's client credentials at the authorization server, sent with HTTP Basic | required |
//! | `DPOP_ISSUER` | the `iss` the introspection response must name | not checked (`any_issuer()`) |
//! | `DPOP_AUDIENCE` | an `aud` the introspection response must name | required |
//! | `DPOP_LISTEN` | socket address to bind | `127.0.0.1:8080` |
//! | `DPOP_PUBLIC_URL` | origin clients use; a proof's `htu` is it followed by the path | `http://<bound address>` |
//! | `DPOP_ALLOW_INSECURE_HTTP` | `1`: allow an `http:` endpoint, for an authorization server on loopback | off |
//!
//! It serves `GET /me`, answering `{"sub", "client_id", "jkt"}` for a request with
//! `Authorization: DPoP <token>` and a valid proof, and prints one line with `listening on`.
//!
//! For a DPoP-bound token the introspection response must be `"active": true` and carry
//! `cnf.jkt`, the thumbprint of the client's key (RFC 9449 section 6.2); the layer checks it
//! against the proof's key. The endpoint is asked only after the proof's signature verified,
//! an answer is cached until the token's `exp`, a refused token is remembered for a few
//! seconds, and an endpoint that cannot answer makes the layer answer 503, never a pass.
//!
//! Its tests (`cargo test --example introspection --features introspection`) run the API
//! against a stand-in endpoint on 127.0.0.1.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_dpop::token::introspection::IntrospectionValidator;
use tower_dpop::{DpopAuth, DpopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The configuration, from the environment.
#[derive(Debug)]
struct Settings {
    endpoint: String,
    client_id: String,
    client_secret: String,
    issuer: Option<String>,
    audience: String,
    listen: SocketAddr,
    public_url: Option<String>,
    allow_insecure_http: bool,
}

impl Settings {
    /// Reads the settings through `var` (an empty variable counts as unset); the error names
    /// the variable.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let required =
            |name: &str| var(name).ok_or_else(|| format!("{name} is required (see the docs)"));
        let listen = var("DPOP_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        Ok(Self {
            endpoint: required("DPOP_INTROSPECTION_URL")?,
            client_id: required("DPOP_CLIENT_ID")?,
            client_secret: required("DPOP_CLIENT_SECRET")?,
            issuer: var("DPOP_ISSUER"),
            audience: required("DPOP_AUDIENCE")?,
            listen: listen
                .parse()
                .map_err(|e| format!("DPOP_LISTEN: {listen:?}: {e}"))?,
            public_url: var("DPOP_PUBLIC_URL"),
            allow_insecure_http: var("DPOP_ALLOW_INSECURE_HTTP").as_deref() == Some("1"),
        })
    }
}

/// The layer: tokens introspected at the configured endpoint, proofs for `public_url`.
fn layer(settings: &Settings, public_url: &str) -> Result<DpopLayer, BoxError> {
    let mut validator = IntrospectionValidator::builder(settings.endpoint.as_str())
        .client_credentials(settings.client_id.as_str(), settings.client_secret.as_str())
        .audience(settings.audience.as_str())
        .allow_insecure_http(settings.allow_insecure_http);
    validator = match &settings.issuer {
        Some(issuer) => validator.issuer(issuer.as_str()),
        None => validator.any_issuer(),
    };
    Ok(DpopLayer::builder()
        .public_origin(public_url)
        .token_validator(validator.build()?)
        .build()?)
}

async fn me(auth: DpopAuth) -> Json<Value> {
    let claim = |name: &str| auth.claims.get(name).cloned().unwrap_or(Value::Null);
    Json(json!({
        "sub": claim("sub"),
        "client_id": claim("client_id"),
        "jkt": auth.jkt.to_string(),
    }))
}

/// Binds the listener and builds the app, ready to serve.
async fn bind(settings: &Settings) -> Result<(TcpListener, Router, String), BoxError> {
    let listener = TcpListener::bind(settings.listen).await?;
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", listener.local_addr()?),
    };
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(layer(settings, &public_url)?);
    Ok((listener, app, public_url))
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_vars(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("introspection: {e}");
            return ExitCode::from(2);
        }
    };
    let (listener, app, public_url) = match bind(&settings).await {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("introspection: {e}");
            return ExitCode::from(2);
        }
    };
    println!("tower-dpop introspection example listening on {public_url}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("introspection: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use std::collections::HashMap;
    use tower_dpop::testing::{dpop_headers, unix_now, ClientKey};
    use tower_dpop::Algorithm;

    const ISSUER: &str = "https://as.example.com";
    const AUDIENCE: &str = "https://api.example.com";

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 4] = [
        (
            "DPOP_INTROSPECTION_URL",
            "https://as.example.com/introspect",
        ),
        ("DPOP_CLIENT_ID", "api"),
        ("DPOP_CLIENT_SECRET", "secret"),
        ("DPOP_AUDIENCE", AUDIENCE),
    ];

    /// Rule: the endpoint, the credentials and the audience are required (an empty variable
    /// is unset), and the error names the missing variable.
    #[test]
    fn required_settings_are_named() {
        assert!(settings(&REQUIRED).is_ok());
        for (missing, _) in REQUIRED {
            let others: Vec<_> = REQUIRED
                .into_iter()
                .filter(|(n, _)| *n != missing)
                .collect();
            let err = settings(&others).unwrap_err();
            assert!(err.starts_with(missing), "{missing}: {err}");
            let mut empty = others.clone();
            empty.push((missing, ""));
            assert_eq!(settings(&empty).unwrap_err(), err);
        }
    }

    /// A stand-in introspection endpoint on 127.0.0.1: for the client `api:secret` only
    /// (else 401), `active` and bound to `jkt` for the token `good`, inactive for any other.
    async fn endpoint(jkt: String) -> String {
        let answer = move |headers: axum::http::HeaderMap, body: String| {
            let jkt = jkt.clone();
            async move {
                let basic = headers.get("authorization").and_then(|v| v.to_str().ok());
                if basic != Some("Basic YXBpOnNlY3JldA==") {
                    return Err(axum::http::StatusCode::UNAUTHORIZED);
                }
                Ok(Json(if body.starts_with("token=good&") {
                    json!({
                        "active": true, "sub": "alice", "client_id": "app", "iss": ISSUER,
                        "aud": AUDIENCE, "exp": unix_now() + 300, "cnf": { "jkt": jkt },
                    })
                } else {
                    json!({ "active": false })
                }))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let app = Router::new().route("/introspect", post(answer));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Rule: over real sockets, an active token bound to the proof's key is served (200 with
    /// its claims), an inactive one is refused with 401 `invalid_token`.
    #[tokio::test]
    async fn tokens_are_introspected() {
        let key = ClientKey::generate(Algorithm::ES256);
        let url = endpoint(key.jkt().to_owned()).await;
        let settings = settings(&[
            ("DPOP_INTROSPECTION_URL", &url),
            ("DPOP_CLIENT_ID", "api"),
            ("DPOP_CLIENT_SECRET", "secret"),
            ("DPOP_ALLOW_INSECURE_HTTP", "1"),
            ("DPOP_ISSUER", ISSUER),
            ("DPOP_AUDIENCE", AUDIENCE),
            ("DPOP_LISTEN", "127.0.0.1:0"),
        ])
        .unwrap();
        let (listener, app, public_url) = bind(&settings).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        let call = |token: &'static str| {
            let proof = key
                .proof("GET", &format!("{public_url}/me"))
                .access_token(token)
                .sign();
            http.get(format!("{public_url}/me"))
                .headers(dpop_headers(token, &proof))
                .send()
        };

        let response = call("good").await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sub"], "alice");
        assert_eq!(body["client_id"], "app");
        assert_eq!(body["jkt"], key.jkt());

        let response = call("revoked").await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("DPoP error=\"invalid_token\""),
            "{challenge}"
        );
    }
}
