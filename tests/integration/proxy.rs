//! The origin a trusted proxy reports (`Forwarded` or `X-Forwarded-*`, the one family the
//! operator named), through a real server on 127.0.0.1 whose peer address comes from axum's
//! `ConnectInfo`. The client here plays both the proxy (the headers a proxy adds) and the
//! attacker behind it (the headers a client adds and the proxy passes through).
#![cfg(feature = "axum")]

use crate::common::{builder_for, listen, spawn_app_with_connect_info};
use axum::routing::get;
use axum::Router;
use tower_dpop::layer::ForwardedHeader;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopAuth, DpopLayer, DpopLayerBuilder};

const API: &str = "https://api.example.com";
const OTHER: &str = "https://other.example.com:8443";

const MIXED: &str = "invalid_request: request from a trusted proxy carries both Forwarded and X-Forwarded-Proto or X-Forwarded-Host";
const NO_FORWARDED: &str =
    "invalid_request: request from a trusted proxy has no Forwarded proto and host";
const NO_X_FORWARDED: &str =
    "invalid_request: request from a trusted proxy has no X-Forwarded-Proto and X-Forwarded-Host";
const NOT_CONFIGURED: &str = "invalid_request: forwarded origin is not a configured public origin";
const HTU: &str = "invalid_dpop_proof: htu does not match the request URI";

struct Server {
    local: String,
    issuer: TestIssuer,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server for [`API`] and [`OTHER`] that trusts `trusted` to set `family`.
async fn start(trusted: &str, family: ForwardedHeader) -> Server {
    start_with(trusted, family, |b| b).await
}

/// [`start`], with more settings from `f`.
async fn start_with(
    trusted: &str,
    family: ForwardedHeader,
    f: impl FnOnce(DpopLayerBuilder) -> DpopLayerBuilder,
) -> Server {
    let issuer = TestIssuer::new();
    let (listener, local) = listen().await;
    let builder = builder_for(API, &issuer)
        .public_origin(OTHER)
        .trusted_proxy(trusted)
        .forwarded_header(family);
    let layer = f(builder).build().unwrap();
    let app =
        Router::new()
            .route(
                "/me",
                get(|a: Option<DpopAuth>| async move {
                    a.map(|a| a.jkt.to_string()).unwrap_or_default()
                }),
            )
            .layer(layer);
    let task = spawn_app_with_connect_info(listener, app);
    Server {
        local,
        issuer,
        task,
    }
}

impl Server {
    /// `GET /me` with a proof for `htu` (no credentials at all when `None`) and `headers`:
    /// the status and, for a rejection, `error: description`.
    async fn get(&self, htu: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = reqwest::Client::new().get(format!("{}/me", self.local));
        if let Some(htu) = htu {
            let key = ClientKey::generate(Algorithm::ES256);
            let token = self.issuer.token_for(key.jkt(), unix_now() + 600);
            req = req
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", key.proof("GET", htu).access_token(&token).sign());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if status == 200 {
            return (200, String::new());
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let reason = match (body["error"].as_str(), body["error_description"].as_str()) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            _ => String::new(),
        };
        (status, reason)
    }
}

fn refused(reason: &str) -> (u16, String) {
    let status = if reason.starts_with("invalid_request") {
        400
    } else {
        401
    };
    (status, reason.to_owned())
}

const OK: (u16, String) = (200, String::new());

/// The attack behind a proxy that sets `X-Forwarded-*` and passes the rest through: the client
/// adds its own `Forwarded` naming the host its proof was made for.
#[tokio::test]
async fn a_client_added_forwarded_header_is_refused_behind_an_x_forwarded_proxy() {
    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    let evil = [("forwarded", "proto=https;host=evil.example")];
    let proxy_sets = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    let both: Vec<_> = proxy_sets.iter().chain(&evil).copied().collect();
    let evil_htu = Some("https://evil.example/me");
    assert_eq!(s.get(evil_htu, &both).await, refused(MIXED));
    // Refused whatever the proof, and before credentials are looked at.
    assert_eq!(
        s.get(Some("https://api.example.com/me"), &both).await,
        refused(MIXED)
    );
    assert_eq!(s.get(None, &both).await, refused(MIXED));
    // A proxy that sets only X-Forwarded-Proto and passes the client's Host: no host of the
    // configured family, so nothing is taken from Host or from the client's Forwarded.
    let host_passed = [("x-forwarded-proto", "https"), ("host", "evil.example")];
    assert_eq!(s.get(evil_htu, &host_passed).await, refused(NO_X_FORWARDED));
    let with_forwarded: Vec<_> = host_passed.iter().chain(&evil).copied().collect();
    assert_eq!(s.get(evil_htu, &with_forwarded).await, refused(MIXED));
}

/// The forwarded origin is checked before credentials, so an anonymous request from a trusted
/// proxy must name a configured origin too.
#[tokio::test]
async fn anonymous_requests_from_a_trusted_proxy_must_name_a_configured_origin() {
    let s = start_with("127.0.0.0/8", ForwardedHeader::XForwarded, |b| {
        b.allow_anonymous(true)
    })
    .await;
    let api = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    assert_eq!(s.get(None, &api).await, OK);
    let evil = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    assert_eq!(s.get(None, &evil).await, refused(NOT_CONFIGURED));
    let mixed: Vec<_> = api
        .iter()
        .copied()
        .chain([("forwarded", "proto=https;host=api.example.com")])
        .collect();
    assert_eq!(s.get(None, &mixed).await, refused(MIXED));
}

/// The same attack behind a proxy that sets `Forwarded`: the client adds `X-Forwarded-Host`.
#[tokio::test]
async fn a_client_added_x_forwarded_host_is_refused_behind_a_forwarded_proxy() {
    let s = start("127.0.0.0/8", ForwardedHeader::Forwarded).await;
    let headers = [
        ("x-forwarded-host", "evil.example"),
        (
            "forwarded",
            "for=203.0.113.9;proto=https;host=api.example.com",
        ),
    ];
    assert_eq!(
        s.get(Some("https://evil.example/me"), &headers).await,
        refused(MIXED)
    );
    let proto_too = [
        ("x-forwarded-proto", "https"),
        (
            "forwarded",
            "for=203.0.113.9;proto=https;host=api.example.com",
        ),
    ];
    assert_eq!(
        s.get(Some("https://api.example.com/me"), &proto_too).await,
        refused(MIXED)
    );
}

/// Only the named family is read: the other one alone gives no origin, and a trusted proxy's
/// request without an origin is refused rather than checked against the configured origins.
#[tokio::test]
async fn only_the_named_header_family_is_read() {
    let xf = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "api.example.com"),
    ];
    let fwd = [("forwarded", "proto=https;host=api.example.com")];
    let htu = Some("https://api.example.com/me");

    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    assert_eq!(s.get(htu, &xf).await, OK);
    assert_eq!(s.get(htu, &fwd).await, refused(NO_X_FORWARDED));
    assert_eq!(s.get(htu, &[]).await, refused(NO_X_FORWARDED));

    let s = start("127.0.0.0/8", ForwardedHeader::Forwarded).await;
    assert_eq!(s.get(htu, &fwd).await, OK);
    assert_eq!(s.get(htu, &xf).await, refused(NO_FORWARDED));
    assert_eq!(s.get(htu, &[]).await, refused(NO_FORWARDED));
}

/// Protocol and host come from the same element, the last one (which the trusted proxy added),
/// or from the last values of the same family; an incomplete origin is refused.
#[tokio::test]
async fn proto_and_host_come_from_the_proxys_own_element() {
    let other_htu = Some("https://other.example.com:8443/me");
    let s = start("127.0.0.0/8", ForwardedHeader::Forwarded).await;
    // The host is in an earlier (client-written) element only.
    let split = [(
        "forwarded",
        "proto=https;host=\"other.example.com:8443\", for=198.51.100.1;proto=https",
    )];
    assert_eq!(s.get(other_htu, &split).await, refused(NO_FORWARDED));
    // A client-written element before the proxy's changes nothing.
    let prefixed = [(
        "forwarded",
        "proto=https;host=evil.example, for=198.51.100.1;proto=https;host=api.example.com",
    )];
    assert_eq!(
        s.get(Some("https://api.example.com/me"), &prefixed).await,
        OK
    );
    assert_eq!(
        s.get(Some("https://evil.example/me"), &prefixed).await,
        refused(HTU)
    );

    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    let no_host = [
        ("x-forwarded-proto", "https"),
        ("host", "other.example.com:8443"),
    ];
    assert_eq!(s.get(other_htu, &no_host).await, refused(NO_X_FORWARDED));
    // Values the client sent first and the proxy appended to: the last one counts.
    let appended = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example, other.example.com:8443"),
    ];
    assert_eq!(s.get(other_htu, &appended).await, OK);
    assert_eq!(
        s.get(Some("https://evil.example/me"), &appended).await,
        refused(HTU)
    );
}

#[tokio::test]
async fn an_unconfigured_forwarded_origin_is_refused() {
    let evil_htu = Some("https://evil.example/me");
    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    let xf = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    assert_eq!(s.get(evil_htu, &xf).await, refused(NOT_CONFIGURED));
    // The configured host under another scheme or port is another origin.
    let http = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "api.example.com"),
    ];
    assert_eq!(
        s.get(Some("http://api.example.com/me"), &http).await,
        refused(NOT_CONFIGURED)
    );
    let s = start("127.0.0.0/8", ForwardedHeader::Forwarded).await;
    let fwd = [("forwarded", "proto=https;host=evil.example")];
    assert_eq!(s.get(evil_htu, &fwd).await, refused(NOT_CONFIGURED));
}

/// When a trusted proxy says which configured origin the request came in on, a proof for
/// another configured origin is refused.
#[tokio::test]
async fn the_proof_must_be_for_the_forwarded_origin() {
    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    let other = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "other.example.com:8443"),
    ];
    assert_eq!(
        s.get(Some("https://api.example.com/me"), &other).await,
        refused(HTU)
    );
    assert_eq!(
        s.get(Some("https://other.example.com:8443/me"), &other)
            .await,
        OK
    );
}

#[tokio::test]
async fn a_forwarded_origin_equal_to_a_configured_one_is_accepted() {
    let s = start("127.0.0.0/8", ForwardedHeader::XForwarded).await;
    let spelled = [
        ("x-forwarded-proto", "HTTPS"),
        ("x-forwarded-host", "API.Example.com:443"),
    ];
    assert_eq!(
        s.get(Some("https://api.example.com/me"), &spelled).await,
        OK
    );
    let s = start("127.0.0.0/8", ForwardedHeader::Forwarded).await;
    let quoted = [(
        "forwarded",
        "for=\"[2001:db8::1]:4711\";proto=https;host=\"other.example.com:8443\"",
    )];
    assert_eq!(
        s.get(Some("https://other.example.com:8443/me"), &quoted)
            .await,
        OK
    );
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let s = start("10.0.0.0/8", ForwardedHeader::XForwarded).await;
    let mixed = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "proto=https;host=evil.example"),
    ];
    // Neither refused for the headers nor taking an origin from them: htu is checked
    // against the configured origins, any of them.
    assert_eq!(s.get(Some("https://api.example.com/me"), &mixed).await, OK);
    assert_eq!(
        s.get(Some("https://other.example.com:8443/me"), &mixed)
            .await,
        OK
    );
    assert_eq!(
        s.get(Some("https://evil.example/me"), &mixed).await,
        refused(HTU)
    );
    assert_eq!(
        s.get(Some("http://evil.example/me"), &[("host", "evil.example")])
            .await,
        refused(HTU)
    );
}

fn builder(issuer: &TestIssuer) -> tower_dpop::DpopLayerBuilder {
    DpopLayer::builder().token_validator(issuer.validator())
}

#[test]
fn a_trusted_proxy_needs_a_public_origin() {
    let issuer = TestIssuer::new();
    let err = builder(&issuer)
        .trusted_proxy("10.0.0.0/8")
        .forwarded_header(ForwardedHeader::XForwarded)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("trusted_proxy needs public_origin"),
        "{err}"
    );
}

#[test]
fn a_trusted_proxy_needs_a_forwarded_header_family() {
    let issuer = TestIssuer::new();
    let err = builder(&issuer)
        .public_origin(API)
        .trusted_proxy("10.0.0.0/8")
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("trusted_proxy needs forwarded_header"),
        "{msg}"
    );
    assert!(msg.contains("ForwardedHeader::Forwarded"), "{msg}");
    assert!(msg.contains("ForwardedHeader::XForwarded"), "{msg}");
}

#[test]
fn a_forwarded_header_family_without_a_trusted_proxy_is_refused() {
    let issuer = TestIssuer::new();
    let err = builder(&issuer)
        .public_origin(API)
        .forwarded_header(ForwardedHeader::Forwarded)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("forwarded_header is set but no trusted_proxy"),
        "{err}"
    );
    // With both, and an origin, it builds.
    assert!(builder(&issuer)
        .public_origin(API)
        .trusted_proxy("10.0.0.0/8")
        .forwarded_header(ForwardedHeader::Forwarded)
        .build()
        .is_ok());
}
