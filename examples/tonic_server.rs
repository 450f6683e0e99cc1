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
//! The layer answers a refused request with an HTTP response (401 and
//! `WWW-Authenticate: DPoP ..`, a JSON body), not with a gRPC status. tonic's client reads that
//! body as gRPC frames, and the first byte of the JSON (`{`) as a compression flag, so a unary
//! call fails with **`Code::Internal`**, message "protocol error: received message with
//! invalid compression flag: 123 (valid flags are 0 and 1) while receiving response with
//! status: 401 Unauthorized", not with the `Unauthenticated` tonic infers from a bare 401.
//! The response headers are merged into that status's metadata, so
//! `status.metadata().get("www-authenticate")` is the challenge (with `content-type:
//! application/json` and `cache-control: no-store`). A server-streaming call opens as a
//! response whose metadata holds the challenge, and its first message is that `Internal`
//! error. `tests/frameworks.rs` holds all of this.
//!
//! This example puts [`grpc_rejection`] around the layer: it turns the layer's rejections
//! (they carry the [`tower_dpop::Error`] in their extensions) into gRPC statuses (a
//! "trailers-only" response: HTTP 200, `grpc-status`, `grpc-message`), mapping 401 to
//! `Unauthenticated`, 400 to `InvalidArgument`, 429 to `ResourceExhausted` and 503 to
//! `Unavailable`, and keeps `www-authenticate`, `dpop-nonce` and `retry-after` as the status's
//! metadata. tonic's client then sees `Code::Unauthenticated`, the error description as the
//! message, and the challenge in the metadata: what it needs to retry (with a `dpop-nonce`
//! when the layer asks for one). Its tests run with `cargo test --example tonic_server`.

use std::process::ExitCode;

use bytes::Bytes;
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, Response, StatusCode};
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::ServiceBuilder;
use tower_dpop::header::DPOP_NONCE;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The origin clients address; the proof's `htu` is this followed by the gRPC path.
const PUBLIC_ORIGIN: &str = "https://grpc.example.com";

/// The gRPC path of `Health/Check`, the URI path of its HTTP/2 request.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Turns a rejection of the DPoP layer into a gRPC status with the challenge as metadata; lets
/// every other response through (re-boxed as a tonic body).
pub fn grpc_rejection<B>(response: Response<B>) -> Response<tonic::body::Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(error) = response.extensions().get::<tower_dpop::Error>() else {
        return response.map(tonic::body::Body::new);
    };
    let code = match error.status() {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Unknown,
    };
    let mut metadata = HeaderMap::new();
    for name in [&WWW_AUTHENTICATE, &DPOP_NONCE, &RETRY_AFTER] {
        if let Some(value) = response.headers().get(name) {
            metadata.insert(name.clone(), value.clone());
        }
    }
    Status::with_metadata(
        code,
        error.description(),
        MetadataMap::from_headers(metadata),
    )
    .into_http()
}

/// The layer for this server: DPoP-bound JWTs from `issuer`, for [`PUBLIC_ORIGIN`].
fn dpop_layer(issuer: &TestIssuer) -> Result<DpopLayer, BoxError> {
    Ok(DpopLayer::builder()
        .public_origin(PUBLIC_ORIGIN)
        .token_validator(issuer.validator())
        .build()?)
}

/// Serves the health service behind the layer (and [`grpc_rejection`]) on `listener`.
async fn serve(listener: TcpListener, layer: DpopLayer) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tonic::transport::Server::builder()
        .layer(
            ServiceBuilder::new()
                .map_response(grpc_rejection)
                .layer(layer),
        )
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
    use tower_dpop::{Error, ErrorKind};

    /// The layer's rejection for `kind`, as `grpc_rejection` receives it: the HTTP status, a
    /// challenge, a JSON body, and the error in the extensions.
    fn rejection(kind: ErrorKind) -> Response<http_body_util::Full<Bytes>> {
        let error = Error::new(kind, "what went wrong");
        let mut response = Response::new(http_body_util::Full::from(r#"{"error":"x"}"#));
        *response.status_mut() = error.status();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, "DPoP algs=\"ES256\"".parse().unwrap());
        response.extensions_mut().insert(error);
        response
    }

    /// Rule: each rejection of the layer becomes a trailers-only gRPC status (HTTP 200,
    /// `application/grpc`, `grpc-status`, the description in `grpc-message`) with the code of
    /// its HTTP status, the challenge kept.
    #[test]
    fn rejections_become_grpc_statuses_with_the_challenge() {
        struct Case {
            kind: ErrorKind,
            code: Code,
        }
        let cases = [
            Case {
                kind: ErrorKind::MissingCredentials,
                code: Code::Unauthenticated,
            },
            Case {
                kind: ErrorKind::ProofReplayed,
                code: Code::Unauthenticated,
            },
            Case {
                kind: ErrorKind::MalformedRequest,
                code: Code::InvalidArgument,
            },
            Case {
                kind: ErrorKind::KeyQuotaExceeded,
                code: Code::ResourceExhausted,
            },
            Case {
                kind: ErrorKind::Unavailable,
                code: Code::Unavailable,
            },
        ];
        for case in cases {
            let response = grpc_rejection(rejection(case.kind));
            assert_eq!(response.status(), StatusCode::OK, "{:?}", case.kind);
            assert_eq!(response.headers()["content-type"], "application/grpc");
            let status = Status::from_header_map(response.headers()).expect("a grpc-status");
            assert_eq!(status.code(), case.code, "{:?}", case.kind);
            assert_eq!(status.message(), "what went wrong", "{:?}", case.kind);
            assert_eq!(
                status.metadata().get("www-authenticate").unwrap(),
                "DPoP algs=\"ES256\"",
                "{:?}",
                case.kind
            );
        }
    }

    /// Rule: a response that is not the layer's rejection passes through unchanged.
    #[tokio::test]
    async fn other_responses_pass_through() {
        use http_body_util::BodyExt as _;
        let mut inner = Response::new(http_body_util::Full::from("payload"));
        inner
            .headers_mut()
            .insert("grpc-status", "0".parse().unwrap());
        let response = grpc_rejection(inner);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "0");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "payload");
    }

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
