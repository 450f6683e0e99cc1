//! A gRPC service behind the layer: `cargo run --example tonic_server`.
//!
//! The server is tonic's, with the layer added by `Server::builder().layer(..)`; the service is
//! tonic-health's `grpc.health.v1.Health` (generated ahead of time, so nothing needs `protoc`).
//! The process starts it on an ephemeral port of 127.0.0.1, then calls `Health/Check` with
//! tonic's client: once with a fresh proof (answered `SERVING`), once with no credentials and
//! once with the same proof again (both refused), prints what the client saw, and exits with
//! status 1 if an answer is not the expected one.
//!
//! # What the client sends
//!
//! gRPC metadata is HTTP/2 headers, so a DPoP call carries `authorization: DPoP <token>` and
//! `dpop: <proof>` as metadata. A gRPC call is an HTTP `POST` to `/<package>.<Service>/<Method>`,
//! so the proof's `htm` is `POST` and its `htu` is the public origin followed by that path:
//! `https://grpc.example.com/grpc.health.v1.Health/Check` here.
//!
//! # What the client sees on a rejection
//!
//! The layer recognizes a gRPC call by its `content-type` (`application/grpc...`) and answers a
//! refused one as gRPC does (a "trailers-only" response: HTTP 200, `grpc-status`,
//! `grpc-message`): 401 as `UNAUTHENTICATED`, 400 as `INVALID_ARGUMENT`, 429 as
//! `RESOURCE_EXHAUSTED` and 503 as `UNAVAILABLE`, with `www-authenticate`, `dpop-nonce` and
//! `retry-after` as headers, which the client reads as metadata. tonic's client sees
//! `Code::Unauthenticated`, the error description as the message, and the challenge in
//! `status.metadata()`: what it needs to retry (with a `dpop-nonce` when the layer asks for
//! one). `tests/integration/frameworks.rs` holds this for unary and streaming calls; this example's tests
//! run with `cargo test --example tonic_server`.

use std::process::ExitCode;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The origin clients address; the proof's `htu` is this followed by the gRPC path.
const PUBLIC_ORIGIN: &str = "https://grpc.example.com";

/// The gRPC path of `Health/Check`, the URI path of its HTTP/2 request.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The layer for this server: DPoP-bound JWTs from `issuer`, for [`PUBLIC_ORIGIN`].
fn dpop_layer(issuer: &TestIssuer) -> Result<DpopLayer, BoxError> {
    Ok(DpopLayer::builder()
        .public_origin(PUBLIC_ORIGIN)
        .token_validator(issuer.validator())
        .build()?)
}

/// Serves the health service behind the layer on `listener`.
async fn serve(listener: TcpListener, layer: DpopLayer) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tonic::transport::Server::builder()
        .layer(layer)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

/// `Health/Check` with these credentials as metadata (none when `None`).
async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    credentials: Option<(&str, &str)>,
) -> Result<ServingStatus, Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some((token, proof)) = credentials {
        let authorization = format!("DPoP {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a metadata value"))?;
        let proof = proof
            .parse()
            .map_err(|_| Status::internal("proof is not a metadata value"))?;
        request
            .metadata_mut()
            .insert("authorization", authorization);
        request.metadata_mut().insert("dpop", proof);
    }
    let response = client.check(request).await?;
    Ok(response.into_inner().status())
}

fn describe(outcome: &Result<ServingStatus, Status>) -> String {
    match outcome {
        Ok(status) => format!("{status:?}"),
        Err(status) => format!(
            "{:?} \"{}\", www-authenticate: {}",
            status.code(),
            status.message(),
            status
                .metadata()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
        ),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tonic_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool, BoxError> {
    let issuer = TestIssuer::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, dpop_layer(&issuer)?));
    println!("gRPC health service on {addr}, public origin {PUBLIC_ORIGIN}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    let key = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(key.jkt(), unix_now() + 300);
    let proof = key
        .proof("POST", &format!("{PUBLIC_ORIGIN}{CHECK_PATH}"))
        .access_token(&token)
        .sign();

    let valid = check(&mut client, Some((&token, &proof))).await;
    println!("Check with a fresh proof: {}", describe(&valid));
    let anonymous = check(&mut client, None).await;
    println!("Check without credentials: {}", describe(&anonymous));
    let replay = check(&mut client, Some((&token, &proof))).await;
    println!("Check with the same proof again: {}", describe(&replay));

    let refused = |outcome: &Result<ServingStatus, Status>| {
        outcome.as_ref().is_err_and(|s| {
            s.code() == Code::Unauthenticated && s.metadata().get("www-authenticate").is_some()
        })
    };
    Ok(matches!(valid, Ok(ServingStatus::Serving)) && refused(&anonymous) && refused(&replay))
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Rule: over a real connection, tonic's client sees a refused call as `Unauthenticated`
    /// with the layer's description and challenge, and a valid call as `SERVING` (the
    /// example's own run, which also checks a replay).
    #[tokio::test]
    async fn the_client_sees_unauthenticated_and_the_challenge() {
        assert!(run().await.unwrap(), "an answer was not the expected one");

        let issuer = TestIssuer::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, dpop_layer(&issuer).unwrap()));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = HealthClient::new(channel);
        let key = ClientKey::generate(Algorithm::ES256);
        let token = issuer.token_for(key.jkt(), unix_now() + 300);
        // Signed for GET: `htm` must be POST, the method of every gRPC call.
        let proof = key
            .proof("GET", &format!("{PUBLIC_ORIGIN}{CHECK_PATH}"))
            .access_token(&token)
            .sign();
        let status = check(&mut client, Some((&token, &proof)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        let challenge = status.metadata().get("www-authenticate").unwrap();
        assert!(
            challenge
                .to_str()
                .unwrap()
                .starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{challenge:?}"
        );
    }
}
