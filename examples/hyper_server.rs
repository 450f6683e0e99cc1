//! The layer in front of a plain hyper 1 server, no framework:
//! `cargo run --example hyper_server` (needs only the `jwks-fetch` feature:
//! `cargo run --example hyper_server --no-default-features --features jwks-fetch`).
//!
//! It shows the three things a server without axum does itself:
//!
//! - accept connections and serve each with hyper-util's `auto` builder (HTTP/1.1 and HTTP/2)
//!   over `TokioIo`, the handler being a `tower::service_fn` wrapped in [`DpopLayer`];
//! - put the TCP peer's address in the request extensions as [`PeerAddr`], which is what
//!   [`trusted_proxy`](tower_dpop::DpopLayerBuilder::trusted_proxy) is checked against (axum's
//!   `ConnectInfo` does this for axum servers);
//! - read what the layer proved from the request extensions: [`Authenticated`].
//!
//! The process starts, on ephemeral ports of 127.0.0.1, a stand-in authorization server
//! (a [`TestIssuer`] publishing its JWKS at `/jwks`) and the protected API, whose JWT validator
//! fetches that JWKS URL. It then sends, with hyper's client, a valid DPoP request (200 and the
//! token's subject) and the same proof again (401, a replay, with its `WWW-Authenticate: DPoP`
//! challenge), prints both, and exits with status 1 if an answer is not the expected one.
//!
//! To protect your own API, keep `serve` and the layer, and point `jwks_url`, `issuer` and
//! `audience` at your authorization server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_dpop::header::DPOP;
use tower_dpop::layer::PeerAddr;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::{Algorithm, Authenticated, DpopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The protected handler: the layer only lets a request through with [`Authenticated`] in its
/// extensions, so its absence is a server bug (the layer is missing), answered with 500.
async fn me(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(Authenticated::Dpop(verified)) = request.extensions().get::<Authenticated>() else {
        let mut response = Response::new(Full::from("the DPoP layer is not installed"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let subject = verified.token().subject().unwrap_or("(no sub)");
    Ok(Response::new(Full::from(format!(
        "hello {subject}, key {}",
        verified.jkt()
    ))))
}

/// Serves every connection accepted on `listener` with the service `make(peer)` builds for it,
/// in a task of its own.
async fn serve<S, B>(listener: TcpListener, make: impl Fn(SocketAddr) -> S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let service = TowerToHyperService::new(make(peer));
        tokio::spawn(async move {
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                eprintln!("connection from {peer}: {e}");
            }
        });
    }
}

/// The protected API for the peer at `peer`: the layer around the handler, and the peer's
/// address put in the request extensions for the layer's trusted-proxy check.
fn api(
    layer: &DpopLayer,
    peer: SocketAddr,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<tower_dpop::layer::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    ServiceBuilder::new()
        .map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            request
        })
        .layer(layer.clone())
        .service_fn(me)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hyper_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts both servers, sends the two requests, and says whether both answers were right.
async fn run() -> Result<bool, BoxError> {
    // The stand-in authorization server: its JWKS at GET /jwks, on any path in fact.
    let issuer = TestIssuer::new();
    let jwks = Bytes::from(issuer.jwks_json());
    let as_listener = TcpListener::bind("127.0.0.1:0").await?;
    let jwks_url = format!("http://{}/jwks", as_listener.local_addr()?);
    tokio::spawn(serve(as_listener, move |_peer| {
        let jwks = jwks.clone();
        tower::service_fn(move |_request: Request<Incoming>| {
            let jwks = jwks.clone();
            async move { Ok::<_, Infallible>(Response::new(Full::new(jwks))) }
        })
    }));

    // The protected API.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let origin = format!("http://{addr}");
    let layer = DpopLayer::builder()
        .public_origin(origin.as_str())
        .token_validator(
            JwtValidator::builder()
                .jwks_url(jwks_url)
                // Plain http on loopback for this demo only; a real JWKS URL is https.
                .allow_insecure_http(true)
                .issuer(issuer.issuer())
                .audience(issuer.audience())
                .build()?,
        )
        .build()?;
    tokio::spawn(serve(listener, move |peer| api(&layer, peer)));
    println!("protected API on {origin}, JWKS of the stand-in authorization server at /jwks");

    // The client: an ES256 key, a token bound to it, one proof for GET /me.
    let client = ClientKey::generate(Algorithm::ES256);
    let token = issuer.token_for(client.jkt(), unix_now() + 300);
    let proof = client
        .proof("GET", &format!("{origin}/me"))
        .access_token(&token)
        .sign();

    let (status, _, body) = get_me(addr, &token, &proof).await?;
    println!("GET /me with a fresh proof: {status} {body}");
    let first_ok = status == StatusCode::OK && body.starts_with("hello ");

    let (status, challenge, body) = get_me(addr, &token, &proof).await?;
    println!("GET /me with the same proof again: {status} {body}");
    println!("  WWW-Authenticate: {challenge}");
    let replay_refused = status == StatusCode::UNAUTHORIZED
        && challenge.starts_with("DPoP error=\"invalid_dpop_proof\"");

    Ok(first_ok && replay_refused)
}

/// `GET /me` on a connection of its own: the status, the `WWW-Authenticate` value and the body.
async fn get_me(
    addr: SocketAddr,
    token: &str,
    proof: &str,
) -> Result<(StatusCode, String, String), BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/me")
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("DPoP {token}"))
        .header(&DPOP, proof)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}
