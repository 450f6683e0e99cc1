//! A DPoP-protected resource server, configured by environment variables.
//!
//! ```text
//! DPOP_ISSUER=https://as.example.com DPOP_AUDIENCE=https://api.example.com \
//!   cargo run --release --example resource_server
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `DPOP_LISTEN` | socket address to bind, e.g. `127.0.0.1:8080` (port 0: any free port) | `127.0.0.1:8080` |
//! | `DPOP_PUBLIC_URL` | origin clients use (`scheme://host[:port]`); a proof's `htu` must equal it followed by the request path | `http://<bound address>` |
//! | `DPOP_JWKS_URL` | JWKS URL of the authorization server; access tokens are JWTs verified against it, whichever of the `DPOP_ISSUER`s issued them; `https:`, or plain `http:` on a loopback address only | unset: each issuer's key set is discovered from its metadata (and never set with `DPOP_INTROSPECTION_URL`) |
//! | `DPOP_ISSUER` | expected `iss` of access tokens: one issuer, or several separated by commas; without `DPOP_JWKS_URL`, each one's key set is found from its OpenID Connect metadata (`{issuer}/.well-known/openid-configuration`, whose `issuer` must be it exactly) | not checked (`any_issuer()`) with `DPOP_JWKS_URL` or `DPOP_INTROSPECTION_URL`; required without either |
//! | `DPOP_AUDIENCE` | expected `aud` of access tokens (a token for another API of the same authorization server is refused) | required |
//! | `DPOP_NONCE` | `off` or `required`: whether proofs must carry a server nonce (`DPoP-Nonce`) | `off` |
//! | `DPOP_NONCE_SECRET` | secret (at least 32 bytes, base64url) nonces are made from; instances given the same secret accept each other's nonces | random per process |
//! | `DPOP_ALLOW_BEARER` | `1` also accepts `Authorization: Bearer` for tokens without `cnf.jkt` (a bound token under Bearer is still refused) | DPoP only |
//! | `DPOP_REDIS_URL` | `redis://host:port`: keep the replay cache in that Redis (build with `--features redis`; without the feature the server refuses to start) | in memory |
//! | `DPOP_TRUSTED_PROXY` | comma-separated addresses or CIDR networks (`10.0.0.0/8, ::1`) of the proxies whose forwarding headers are trusted; a request from one must report `DPOP_PUBLIC_URL` as its origin (else 400), and its proof must be for it. Requires `DPOP_FORWARDED_HEADER` and `DPOP_PUBLIC_URL` | none: forwarding headers ignored |
//! | `DPOP_FORWARDED_HEADER` | the headers those proxies set: `forwarded` (RFC 7239 `Forwarded`) or `x-forwarded` (`X-Forwarded-Proto` + `X-Forwarded-Host`); the other family is never read, and a request from a trusted proxy that carries it is refused. Required with `DPOP_TRUSTED_PROXY`, refused without it | none |
//! | `DPOP_REPLAY_CAPACITY` | live entries of the in-memory replay store (ignored with `DPOP_REDIS_URL`) | the library's default (1 000 000) |
//! | `DPOP_REPLAY_KEY_QUOTA` | live replay entries one proof key may hold; past it that key gets 429 with `Retry-After` | derived from the capacity (1 %, at least 100; 10 000 with Redis) |
//! | `DPOP_INTROSPECTION_URL` | the authorization server's introspection endpoint (RFC 7662): access tokens are introspected there instead of validated as JWTs (`iss` checked against `DPOP_ISSUER`, `aud` against `DPOP_AUDIENCE`, `cnf.jkt` against the proof's key); `https:`, or plain `http:` on a loopback address only. Needs a binary built with `--features introspection` (without it the server refuses to start) | unset: JWTs |
//! | `DPOP_INTROSPECTION_CLIENT_ID`, `DPOP_INTROSPECTION_CLIENT_SECRET` | this API's client credentials at the introspection endpoint, sent with HTTP Basic (`client_secret_basic`); both required with `DPOP_INTROSPECTION_URL`, refused without it | unset |
//! | `DPOP_KEY_CACHE_CAPACITY` | verified proof keys kept, so a returning client's key is not parsed and imported again; size it to the number of active clients | the library's default (10 000) |
//! | `DPOP_TOKEN_CACHE_CAPACITY` | validated access tokens kept, so a token's signature is checked once; size it to the tokens live at once (clients × tokens each within a refresh) | the library's default (10 000) |
//! | `RUST_LOG` | log filter (logs go to stderr) | `info,tower_dpop=info` |
//!
//! An empty variable counts as unset. The server is served with the TCP peer's address
//! (`into_make_service_with_connect_info`), which is what `DPOP_TRUSTED_PROXY` is checked
//! against.
//!
//! Routes:
//!
//! - `GET /health`: `200 ok`, no authentication;
//! - `GET /api/me`: `200` JSON `{"sub": ..., "jkt": ..., "client_id": ...}` from the verified
//!   token (`null` where a claim is absent; `jkt` is the verified key thumbprint; `client_id`
//!   is the token's `client_id`, else `azp`, else `cid`, the first that is a string);
//! - `POST /api/echo`: `200` with the request body (same bytes, same `Content-Type`);
//! - `GET /.well-known/oauth-protected-resource`: the RFC 9728 metadata (open): `resource` is
//!   the public origin, `dpop_signing_alg_values_supported` the algorithms of the challenges'
//!   `algs`, `dpop_bound_access_tokens_required` true unless Bearer is allowed.
//!
//! Everything under `/api` requires `Authorization: DPoP <token>` and a valid `DPoP` proof.
//!
//! Once the socket is bound and the layer is ready, one line containing `listening on` is
//! printed to stdout (`tower-dpop resource server listening on http://127.0.0.1:8080`).
//! A configuration error is printed as one line to stderr and the process exits with
//! status 2. `Ctrl-C` or `SIGTERM` stops the server gracefully.

use std::fmt;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::body::Bytes;
use axum::http::{header::CONTENT_TYPE, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tokio::net::TcpListener;
use tower_dpop::layer::ForwardedHeader;
use tower_dpop::metadata::{ProtectedResourceMetadata, WELL_KNOWN_PATH};
use tower_dpop::nonce::{NoncePolicy, NonceSecret};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::TokenValidator;
use tower_dpop::{ConfigError, DpopLayer, TokenAuth};
use tracing_subscriber::EnvFilter;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_LOG_FILTER: &str = "info,tower_dpop=info";

/// `true` for a plain-http URL on a loopback address (a local test authorization server, as
/// the `load` example runs): the only plain-http JWKS URL this server accepts.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The configuration read from the environment.
#[derive(Debug, Clone)]
struct Settings {
    /// `DPOP_LISTEN`.
    listen: SocketAddr,
    /// `DPOP_PUBLIC_URL`; `None` means `http://<bound address>`.
    public_url: Option<String>,
    /// `DPOP_JWKS_URL`; `None`: each issuer's key set is discovered, or tokens are introspected.
    jwks_url: Option<String>,
    /// `DPOP_ISSUER`, split at commas; never empty without `jwks_url`.
    issuers: Vec<String>,
    /// `DPOP_AUDIENCE` (required).
    audience: String,
    /// `DPOP_REPLAY_CAPACITY`.
    replay_capacity: Option<u64>,
    /// `DPOP_REPLAY_KEY_QUOTA`.
    replay_key_quota: Option<u64>,
    /// `DPOP_KEY_CACHE_CAPACITY`.
    key_cache_capacity: Option<u64>,
    /// `DPOP_TOKEN_CACHE_CAPACITY`.
    token_cache_capacity: Option<u64>,
    /// `DPOP_NONCE=required`.
    nonce_required: bool,
    /// `DPOP_NONCE_SECRET`.
    nonce_secret: Option<NonceSecret>,
    /// `DPOP_REDIS_URL`.
    redis_url: Option<String>,
    /// `DPOP_ALLOW_BEARER=1`.
    allow_bearer: bool,
    /// `DPOP_TRUSTED_PROXY`, each entry checked to be an address or network.
    trusted_proxies: Vec<String>,
    /// `DPOP_FORWARDED_HEADER`; `Some` exactly when `trusted_proxies` is not empty.
    forwarded_header: Option<ForwardedHeader>,
    /// `DPOP_INTROSPECTION_*`: opaque tokens introspected instead of JWTs.
    introspection: Option<IntrospectionSettings>,
}

/// Why the server could not start.
#[derive(Debug)]
enum StartError {
    /// A variable is missing or malformed.
    Env { var: &'static str, reason: String },
    /// The library rejected the configuration.
    Config(ConfigError),
    /// The socket could not be bound.
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The server failed while running.
    Serve(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { var, reason } => write!(f, "{var}: {reason}"),
            Self::Config(e) => write!(f, "{e}"),
            Self::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Self::Serve(e) => write!(f, "server error: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl Settings {
    /// Reads the settings from the process environment.
    fn from_env() -> Result<Self, StartError> {
        Self::from_lookup(std::env::var_os)
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    fn from_lookup(
        lookup: impl Fn(&'static str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, StartError> {
        let var = |name: &'static str| -> Result<Option<String>, StartError> {
            match lookup(name) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) => v.into_string().map(Some).map_err(|_| StartError::Env {
                    var: name,
                    reason: "not valid UTF-8".into(),
                }),
            }
        };

        let listen_raw = var("DPOP_LISTEN")?.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw
            .trim()
            .parse::<SocketAddr>()
            .map_err(|e| StartError::Env {
                var: "DPOP_LISTEN",
                reason: format!(
                    "{listen_raw:?} is not a socket address such as {DEFAULT_LISTEN} ({e})"
                ),
            })?;
        let introspection = IntrospectionSettings::from_vars(&var)?;
        let jwks_url = var("DPOP_JWKS_URL")?;
        let issuers = match var("DPOP_ISSUER")? {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|entry| match entry.trim() {
                    "" => Err(StartError::Env {
                        var: "DPOP_ISSUER",
                        reason: "an entry is empty".into(),
                    }),
                    entry => Ok(entry.to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if jwks_url.is_some() && introspection.is_some() {
            return Err(StartError::Env {
                var: "DPOP_JWKS_URL",
                reason: "set with DPOP_INTROSPECTION_URL: tokens are either JWTs verified \
                         against a key set or introspected, keep one"
                    .into(),
            });
        }
        if jwks_url.is_none() && introspection.is_none() && issuers.is_empty() {
            return Err(StartError::Env {
                var: "DPOP_ISSUER",
                reason: "required without DPOP_JWKS_URL: set it to the authorization server's \
                         issuer (the `iss` of its tokens; several separated by commas), whose \
                         key set is then discovered, or set DPOP_JWKS_URL (or \
                         DPOP_INTROSPECTION_URL for opaque tokens)"
                    .into(),
            });
        }
        let audience = var("DPOP_AUDIENCE")?.ok_or_else(|| StartError::Env {
            var: "DPOP_AUDIENCE",
            reason: "required: set it to this API's identifier, the `aud` its access tokens \
                     carry (without it, a token the authorization server minted for another API \
                     would be accepted here)"
                .into(),
        })?;
        let count = |name: &'static str| -> Result<Option<u64>, StartError> {
            var(name)?
                .map(|v| match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(StartError::Env {
                        var: name,
                        reason: format!("{v:?} is not a positive whole number"),
                    }),
                })
                .transpose()
        };
        let replay_capacity = count("DPOP_REPLAY_CAPACITY")?;
        let replay_key_quota = count("DPOP_REPLAY_KEY_QUOTA")?;
        let key_cache_capacity = count("DPOP_KEY_CACHE_CAPACITY")?;
        let token_cache_capacity = count("DPOP_TOKEN_CACHE_CAPACITY")?;

        let nonce_required = match var("DPOP_NONCE")?.as_deref().map(str::trim) {
            None | Some("off") => false,
            Some("required") => true,
            Some(other) => {
                return Err(StartError::Env {
                    var: "DPOP_NONCE",
                    reason: format!("{other:?} is neither \"off\" nor \"required\""),
                })
            }
        };
        let nonce_secret = var("DPOP_NONCE_SECRET")?
            .map(|s| NonceSecret::from_base64url(&s))
            .transpose()
            .map_err(|e| StartError::Env {
                var: "DPOP_NONCE_SECRET",
                reason: e.to_string(),
            })?;
        let redis_url = var("DPOP_REDIS_URL")?;
        if redis_url.is_some() && !cfg!(feature = "redis") {
            return Err(StartError::Env {
                var: "DPOP_REDIS_URL",
                reason: "this binary was built without Redis support; rebuild with \
                         `cargo build --release --features redis --example resource_server` \
                         (refusing to fall back to an in-memory replay cache)"
                    .into(),
            });
        }

        let allow_bearer = match var("DPOP_ALLOW_BEARER")?.as_deref().map(str::trim) {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(StartError::Env {
                    var: "DPOP_ALLOW_BEARER",
                    reason: format!("{other:?} is neither 1 nor 0"),
                })
            }
        };

        let public_url = var("DPOP_PUBLIC_URL")?;
        let trusted_proxies = match var("DPOP_TRUSTED_PROXY")? {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|entry| match entry.trim() {
                    // Each entry is checked by the layer's builder (see `Settings::layer`).
                    "" => Err(StartError::Env {
                        var: "DPOP_TRUSTED_PROXY",
                        reason: "an entry is empty".into(),
                    }),
                    entry => Ok(entry.to_owned()),
                })
                .collect::<Result<_, _>>()?,
        };
        let forwarded_header = match var("DPOP_FORWARDED_HEADER")?.as_deref().map(str::trim) {
            None => None,
            Some("forwarded") => Some(ForwardedHeader::Forwarded),
            Some("x-forwarded") => Some(ForwardedHeader::XForwarded),
            Some(other) => {
                return Err(StartError::Env {
                    var: "DPOP_FORWARDED_HEADER",
                    reason: format!("{other:?} is neither \"forwarded\" nor \"x-forwarded\""),
                })
            }
        };
        match (trusted_proxies.is_empty(), forwarded_header.is_some()) {
            (false, false) => {
                return Err(StartError::Env {
                    var: "DPOP_FORWARDED_HEADER",
                    reason: "required with DPOP_TRUSTED_PROXY: \"forwarded\" (RFC 7239) or \
                             \"x-forwarded\" (X-Forwarded-Proto + X-Forwarded-Host), whichever \
                             your proxy sets"
                        .into(),
                })
            }
            (true, true) => {
                return Err(StartError::Env {
                    var: "DPOP_FORWARDED_HEADER",
                    reason: "set without DPOP_TRUSTED_PROXY, where it would do nothing".into(),
                })
            }
            _ => {}
        }
        if !trusted_proxies.is_empty() && public_url.is_none() {
            return Err(StartError::Env {
                var: "DPOP_PUBLIC_URL",
                reason: "required with DPOP_TRUSTED_PROXY: a forwarded origin is accepted only \
                         if it equals DPOP_PUBLIC_URL"
                    .into(),
            });
        }

        Ok(Self {
            allow_bearer,
            listen,
            public_url,
            jwks_url,
            issuers,
            audience,
            replay_capacity,
            replay_key_quota,
            key_cache_capacity,
            token_cache_capacity,
            nonce_required,
            nonce_secret,
            redis_url,
            trusted_proxies,
            forwarded_header,
            introspection,
        })
    }

    /// The public origin, defaulting to the address actually bound (so port 0 works).
    fn public_origin(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
    }

    /// Builds the DPoP layer for this configuration.
    /// A configuration mistake the library finds is reported under the variable it came from.
    fn layer(&self, public_origin: &str) -> Result<DpopLayer, StartError> {
        self.build_layer(public_origin).map_err(|e| {
            let var = match e.setting_name() {
                Some("trusted_proxy") => "DPOP_TRUSTED_PROXY",
                Some("forwarded_header") => "DPOP_FORWARDED_HEADER",
                Some("public_origin") => "DPOP_PUBLIC_URL",
                Some("replay_key_quota") => "DPOP_REPLAY_KEY_QUOTA",
                _ => return StartError::Config(e),
            };
            StartError::Env {
                var,
                reason: e.message().to_owned(),
            }
        })
    }

    /// The access-token validator: introspection when configured, else JWTs against one key
    /// set for every issuer (`DPOP_JWKS_URL`), or each issuer's own, discovered.
    fn token_validator(&self) -> Result<std::sync::Arc<dyn TokenValidator>, ConfigError> {
        #[cfg(feature = "introspection")]
        if let Some(introspection) = &self.introspection {
            return introspection.validator(&self.issuers, &self.audience);
        }
        if let Some(url) = &self.jwks_url {
            let mut validator = JwtValidator::builder()
                .jwks_url(url)
                .allow_insecure_http(is_loopback_http(url))
                .audience(&self.audience);
            if self.issuers.is_empty() {
                validator = validator.any_issuer();
            }
            for issuer in &self.issuers {
                validator = validator.issuer(issuer);
            }
            return Ok(std::sync::Arc::new(validator.build()?));
        }
        let discovered = self
            .issuers
            .iter()
            .map(|issuer| {
                JwtValidator::builder()
                    .discover(issuer)
                    .allow_insecure_http(is_loopback_http(issuer))
                    .audience(&self.audience)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(std::sync::Arc::new(JwtValidator::for_issuers(discovered)?))
    }

    fn build_layer(&self, public_origin: &str) -> Result<DpopLayer, ConfigError> {
        let mut builder = DpopLayer::builder()
            .public_origin(public_origin)
            .token_validator(self.token_validator()?)
            .allow_bearer(self.allow_bearer)
            .resource_metadata(format!(
                "{}{WELL_KNOWN_PATH}",
                public_origin.trim_end_matches('/')
            ));
        if self.nonce_required {
            builder = builder.nonce_policy(NoncePolicy::Required);
        }
        if let Some(secret) = &self.nonce_secret {
            builder = builder.nonce_secret(secret.clone());
        }
        for proxy in &self.trusted_proxies {
            builder = builder.trusted_proxy(proxy);
        }
        if let Some(header) = self.forwarded_header {
            builder = builder.forwarded_header(header);
        }
        if let Some(quota) = self.replay_key_quota {
            builder = builder.replay_key_quota(quota);
        }
        if let Some(keys) = self.key_cache_capacity {
            builder = builder.key_cache_capacity(keys);
        }
        if let Some(tokens) = self.token_cache_capacity {
            builder = builder.token_cache_capacity(tokens);
        }
        #[cfg(feature = "redis")]
        if let Some(url) = &self.redis_url {
            builder = builder
                .replay_store(tower_dpop::replay::RedisReplayStore::builder(url.clone()).build()?);
            return builder.build();
        }
        if let Some(capacity) = self.replay_capacity {
            builder = builder.replay_store(tower_dpop::replay::MemoryReplayStore::new(capacity));
        }
        builder.build()
    }
}

/// `DPOP_INTROSPECTION_URL`, `DPOP_INTROSPECTION_CLIENT_ID`, `DPOP_INTROSPECTION_CLIENT_SECRET`.
#[derive(Clone)]
struct IntrospectionSettings {
    url: String,
    client_id: String,
    // Read only by `validator`, which needs the `introspection` feature.
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    client_secret: String,
}

impl fmt::Debug for IntrospectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionSettings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl IntrospectionSettings {
    /// The introspection settings, `None` when `DPOP_INTROSPECTION_URL` is unset; the error
    /// names the variable at fault.
    fn from_vars(
        var: &impl Fn(&'static str) -> Result<Option<String>, StartError>,
    ) -> Result<Option<Self>, StartError> {
        let env = |var: &'static str, reason: &str| StartError::Env {
            var,
            reason: reason.to_owned(),
        };
        let id = var("DPOP_INTROSPECTION_CLIENT_ID")?;
        let secret = var("DPOP_INTROSPECTION_CLIENT_SECRET")?;
        let Some(url) = var("DPOP_INTROSPECTION_URL")? else {
            return match (id, secret) {
                (Some(_), _) => Err(env(
                    "DPOP_INTROSPECTION_CLIENT_ID",
                    "set without DPOP_INTROSPECTION_URL, where it would do nothing",
                )),
                (_, Some(_)) => Err(env(
                    "DPOP_INTROSPECTION_CLIENT_SECRET",
                    "set without DPOP_INTROSPECTION_URL, where it would do nothing",
                )),
                (None, None) => Ok(None),
            };
        };
        if !cfg!(feature = "introspection") {
            return Err(env(
                "DPOP_INTROSPECTION_URL",
                "this binary was built without introspection support; rebuild with \
                 `cargo build --release --features introspection --example resource_server` \
                 (refusing to validate the tokens as JWTs instead)",
            ));
        }
        if !url.starts_with("https://") && !is_loopback_http(&url) {
            return Err(env(
                "DPOP_INTROSPECTION_URL",
                "must be https: (plain http: only on a loopback address): the token and the \
                 client secret are sent to it",
            ));
        }
        let client_id = id.ok_or_else(|| {
            env(
                "DPOP_INTROSPECTION_CLIENT_ID",
                "required with DPOP_INTROSPECTION_URL: this API's client id at the \
                 authorization server",
            )
        })?;
        let client_secret = secret.ok_or_else(|| {
            env(
                "DPOP_INTROSPECTION_CLIENT_SECRET",
                "required with DPOP_INTROSPECTION_URL: this API's client secret, sent with \
                 HTTP Basic (client_secret_basic)",
            )
        })?;
        Ok(Some(Self {
            url,
            client_id,
            client_secret,
        }))
    }

    /// The introspection validator: `iss` one of `DPOP_ISSUER` (any when unset, as for JWTs),
    /// `aud` as `DPOP_AUDIENCE`.
    #[cfg(feature = "introspection")]
    fn validator(
        &self,
        issuers: &[String],
        audience: &str,
    ) -> Result<std::sync::Arc<dyn TokenValidator>, ConfigError> {
        use tower_dpop::token::introspection::IntrospectionValidator;
        let mut validator = IntrospectionValidator::builder(self.url.as_str())
            .client_credentials(self.client_id.as_str(), self.client_secret.as_str())
            .audience(audience)
            .allow_insecure_http(is_loopback_http(&self.url));
        if issuers.is_empty() {
            validator = validator.any_issuer();
        }
        for issuer in issuers {
            validator = validator.issuer(issuer);
        }
        Ok(std::sync::Arc::new(validator.build()?))
    }
}

/// The application: `/health` and the metadata open, `/api/*` behind `layer`.
fn router(layer: DpopLayer, issuers: &[String]) -> Router {
    let mut metadata = ProtectedResourceMetadata::from_layer(&layer);
    for iss in issuers {
        metadata = metadata.authorization_server(iss);
    }
    let api = Router::new()
        .route("/me", get(me))
        .route("/echo", post(echo))
        .layer(layer);
    Router::new()
        .route("/health", get(health))
        .merge(metadata.router())
        .nest("/api", api)
}

async fn health() -> &'static str {
    "ok"
}

/// The claims `/api/me` reports: only these are copied out of the token (a
/// `TokenAuth<Value>` would deep-copy every claim on every request).
#[derive(serde::Deserialize)]
struct MeClaims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    client_id: Option<Value>,
    #[serde(default)]
    azp: Option<Value>,
    #[serde(default)]
    cid: Option<Value>,
}

impl MeClaims {
    /// The client, as `AccessToken::client_id` reads it: `client_id`, else `azp`, else `cid`,
    /// the first that is a string.
    fn client_id(self) -> Option<Value> {
        [self.client_id, self.azp, self.cid]
            .into_iter()
            .flatten()
            .find(Value::is_string)
    }
}

#[derive(serde::Serialize)]
struct Me {
    sub: Option<Value>,
    jkt: Option<String>,
    client_id: Option<Value>,
}

async fn me(auth: TokenAuth<MeClaims>) -> Json<Me> {
    let jkt = auth.jkt.map(|jkt| jkt.to_string());
    let sub = auth.claims.sub.clone();
    Json(Me {
        sub,
        jkt,
        client_id: auth.claims.client_id(),
    })
}

async fn echo(_auth: TokenAuth, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut out = HeaderMap::new();
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        out.insert(CONTENT_TYPE, ct.clone());
    }
    (out, body)
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn run(settings: Settings) -> Result<(), StartError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(StartError::Serve)?;
    let public_origin = settings.public_origin(bound);
    let layer = settings.layer(&public_origin)?;
    let replay_key_quota = layer.config().replay_key_quota();
    let key_cache_capacity = layer.config().key_cache_capacity();
    let token_cache_capacity = layer.config().token_cache_capacity();
    let app = router(layer, &settings.issuers);

    tracing::info!(
        %bound,
        public_origin,
        jwks_url = settings.jwks_url.as_deref().unwrap_or(if settings.introspection.is_some() {
            "(none)"
        } else {
            "(discovered)"
        }),
        introspection_url = settings
            .introspection
            .as_ref()
            .map_or("(none)", |i| i.url.as_str()),
        issuer = if settings.issuers.is_empty() {
            "(not checked)".to_owned()
        } else {
            settings.issuers.join(", ")
        },
        audience = settings.audience,
        replay_key_quota,
        key_cache_capacity,
        token_cache_capacity,
        nonce = if settings.nonce_required { "required" } else { "off" },
        nonce_secret = if settings.nonce_secret.is_some() { "configured" } else { "random" },
        replay_store = if settings.redis_url.is_some() { "redis" } else { "memory" },
        bearer = settings.allow_bearer,
        trusted_proxy = if settings.trusted_proxies.is_empty() {
            "(none)".to_owned()
        } else {
            settings.trusted_proxies.join(", ")
        },
        forwarded_header = match settings.forwarded_header {
            Some(ForwardedHeader::Forwarded) => "forwarded",
            Some(ForwardedHeader::XForwarded) => "x-forwarded",
            _ => "(none)",
        },
        "configuration"
    );
    println!("tower-dpop resource server listening on http://{bound}");
    // A failed flush (stdout closed) must not stop the server.
    let _ = std::io::stdout().flush();

    serve(listener, app, shutdown_signal())
        .await
        .map_err(StartError::Serve)
}

/// Serves `app` until `shutdown` resolves, with each connection's peer address as
/// `ConnectInfo<SocketAddr>`: without it no request would come from a trusted proxy.
async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let result = match Settings::from_env() {
        Ok(settings) => run(settings).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tower-dpop resource server: {e}");
            match e {
                StartError::Serve(_) => ExitCode::FAILURE,
                _ => ExitCode::from(2),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::*;

    const JWKS: (&str, &str) = ("DPOP_JWKS_URL", "http://127.0.0.1:9/jwks");
    const PUBLIC: (&str, &str) = ("DPOP_PUBLIC_URL", "https://api.example.com");
    const AUD: (&str, &str) = ("DPOP_AUDIENCE", "https://api.example.com");

    fn settings(vars: &[(&'static str, &str)]) -> Result<Settings, StartError> {
        let map: HashMap<&str, OsString> =
            vars.iter().map(|(k, v)| (*k, OsString::from(v))).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    /// What the proxy variables give: the trusted proxies and the header family, or the name of
    /// the variable the one-line error names.
    type Expected = Result<(&'static [&'static str], Option<ForwardedHeader>), &'static str>;

    struct Case {
        name: &'static str,
        vars: &'static [(&'static str, &'static str)],
        expected: Expected,
    }

    const XF: Option<ForwardedHeader> = Some(ForwardedHeader::XForwarded);
    const F: Option<ForwardedHeader> = Some(ForwardedHeader::Forwarded);

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { name: "none", vars: &[], expected: Ok((&[], None)) },
        Case { name: "empty counts as unset", vars: &[("DPOP_TRUSTED_PROXY", ""), ("DPOP_FORWARDED_HEADER", "")], expected: Ok((&[], None)) },
        Case { name: "x-forwarded", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.0/8, ::1"), ("DPOP_FORWARDED_HEADER", "x-forwarded")], expected: Ok((&["10.0.0.0/8", "::1"], XF)) },
        Case { name: "forwarded", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "192.168.1.7"), ("DPOP_FORWARDED_HEADER", " forwarded ")], expected: Ok((&["192.168.1.7"], F)) },
        Case { name: "proxy without header", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.0/8")], expected: Err("DPOP_FORWARDED_HEADER") },
        Case { name: "proxy without public url", vars: &[("DPOP_TRUSTED_PROXY", "10.0.0.0/8"), ("DPOP_FORWARDED_HEADER", "forwarded")], expected: Err("DPOP_PUBLIC_URL") },
        Case { name: "header without proxy", vars: &[PUBLIC, ("DPOP_FORWARDED_HEADER", "forwarded")], expected: Err("DPOP_FORWARDED_HEADER") },
        Case { name: "header with an empty proxy list", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", ""), ("DPOP_FORWARDED_HEADER", "x-forwarded")], expected: Err("DPOP_FORWARDED_HEADER") },
        Case { name: "unknown header", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.0/8"), ("DPOP_FORWARDED_HEADER", "x-forwarded-for")], expected: Err("DPOP_FORWARDED_HEADER") },
        Case { name: "header name spelled as a header", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.0/8"), ("DPOP_FORWARDED_HEADER", "X-Forwarded-Host")], expected: Err("DPOP_FORWARDED_HEADER") },
        Case { name: "host name as proxy", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "proxy.internal"), ("DPOP_FORWARDED_HEADER", "forwarded")], expected: Err("DPOP_TRUSTED_PROXY") },
        Case { name: "bad prefix", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.0/33"), ("DPOP_FORWARDED_HEADER", "forwarded")], expected: Err("DPOP_TRUSTED_PROXY") },
        Case { name: "empty entry", vars: &[PUBLIC, ("DPOP_TRUSTED_PROXY", "10.0.0.1,,10.0.0.2"), ("DPOP_FORWARDED_HEADER", "forwarded")], expected: Err("DPOP_TRUSTED_PROXY") },
    ];

    #[test]
    fn proxy_variables() {
        for case in CASES {
            let mut vars = vec![JWKS, AUD];
            vars.extend_from_slice(case.vars);
            // Read, then built into a layer: the library checks the values themselves.
            let started = settings(&vars).and_then(|s| {
                let origin = s.public_origin("127.0.0.1:8080".parse().unwrap());
                s.layer(&origin).map(|_| s)
            });
            let got = match started {
                Ok(s) => Ok((s.trusted_proxies.clone(), s.forwarded_header)),
                Err(StartError::Env { var, reason }) => {
                    let line = StartError::Env { var, reason }.to_string();
                    assert!(line.starts_with(var) && !line.contains('\n'), "{line}");
                    Err(var)
                }
                Err(other) => panic!("{}: {other}", case.name),
            };
            let expected = case.expected.map(|(proxies, header)| {
                (proxies.iter().map(|p| (*p).to_owned()).collect(), header)
            });
            assert_eq!(got, expected, "{}", case.name);
        }
    }

    #[test]
    fn the_proxy_settings_build_a_layer() {
        let s = settings(&[
            JWKS,
            AUD,
            PUBLIC,
            ("DPOP_TRUSTED_PROXY", "10.0.0.0/8,::1"),
            ("DPOP_FORWARDED_HEADER", "forwarded"),
        ])
        .unwrap();
        let origin = s.public_origin("127.0.0.1:8080".parse().unwrap());
        assert_eq!(origin, "https://api.example.com");
        assert!(s.layer(&origin).is_ok());
    }

    /// `DPOP_AUDIENCE` is required: without it the server does not start, and the one-line
    /// error names the variable.
    #[test]
    fn the_audience_is_required() {
        match settings(&[JWKS]) {
            Err(StartError::Env { var, reason }) => {
                assert_eq!(var, "DPOP_AUDIENCE");
                assert!(reason.contains("another API"), "{reason}");
            }
            other => panic!("started without an audience: {:?}", other.map(|_| ())),
        }
        assert_eq!(settings(&[JWKS, AUD]).unwrap().audience, AUD.1);
    }

    /// `DPOP_REPLAY_CAPACITY` and `DPOP_REPLAY_KEY_QUOTA`: positive whole numbers, given to the
    /// layer; the quota's default follows the capacity.
    #[test]
    fn replay_capacity_and_key_quota() {
        let quota = |vars: &[(&'static str, &str)]| {
            let mut all = vec![JWKS, AUD];
            all.extend_from_slice(vars);
            let s = settings(&all).unwrap();
            s.layer("https://api.example.com")
                .unwrap()
                .config()
                .replay_key_quota()
        };
        assert_eq!(quota(&[]), 10_000);
        assert_eq!(quota(&[("DPOP_REPLAY_CAPACITY", "50000")]), 500);
        assert_eq!(
            quota(&[
                ("DPOP_REPLAY_CAPACITY", "50000"),
                ("DPOP_REPLAY_KEY_QUOTA", "42")
            ]),
            42
        );
        for (var, value) in [
            ("DPOP_REPLAY_CAPACITY", "0"),
            ("DPOP_REPLAY_CAPACITY", "lots"),
            ("DPOP_REPLAY_KEY_QUOTA", "-1"),
        ] {
            match settings(&[JWKS, AUD, (var, value)]) {
                Err(StartError::Env { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}={value}: {:?}", other.map(|_| ())),
            }
        }
    }

    /// `DPOP_JWKS_URL` and `DPOP_ISSUER`: one key set for the listed issuers (or any issuer),
    /// or, without a JWKS URL, each issuer discovered; the layer is built from them.
    #[test]
    fn issuer_and_key_set_variables() {
        const A: &str = "https://a.example.com";
        const B: &str = "https://b.example.com/";
        type Expected = Result<(bool, &'static [&'static str]), &'static str>;
        type Vars = Vec<(&'static str, &'static str)>;
        #[rustfmt::skip]
        let cases: [(&str, Vars, Expected); 9] = [
            ("a key set, any issuer", vec![JWKS], Ok((true, &[]))),
            ("a key set, two issuers", vec![JWKS, ("DPOP_ISSUER", "https://a.example.com, https://b.example.com/")], Ok((true, &[A, B]))),
            ("one issuer discovered", vec![("DPOP_ISSUER", A)], Ok((false, &[A]))),
            ("two issuers discovered", vec![("DPOP_ISSUER", "https://a.example.com,https://b.example.com/")], Ok((false, &[A, B]))),
            ("a loopback issuer over http", vec![("DPOP_ISSUER", "http://127.0.0.1:9")], Ok((false, &["http://127.0.0.1:9"]))),
            ("neither", vec![], Err("DPOP_ISSUER")),
            ("an empty entry", vec![("DPOP_ISSUER", "https://a.example.com,,https://b.example.com/")], Err("DPOP_ISSUER")),
            ("a plain-http issuer", vec![("DPOP_ISSUER", "http://a.example.com")], Err("config")),
            ("one issuer twice", vec![("DPOP_ISSUER", "https://a.example.com,https://a.example.com")], Err("config")),
        ];
        for (name, mut vars, expected) in cases {
            vars.push(AUD);
            let got = settings(&vars).and_then(|s| {
                let _layer = s.layer("https://api.example.com")?;
                Ok((s.jwks_url.is_some(), s.issuers))
            });
            let got = match got {
                Ok((jwks, issuers)) => Ok((jwks, issuers)),
                Err(StartError::Env { var, .. }) => Err(var),
                Err(StartError::Config(_)) => Err("config"),
                Err(other) => panic!("{name}: {other}"),
            };
            let expected = expected
                .map(|(jwks, issuers)| (jwks, issuers.iter().map(|i| (*i).to_owned()).collect()));
            assert_eq!(got, expected, "{name}");
        }
    }

    /// `/api/me`'s `client_id`: `client_id`, else `azp`, else `cid`, the first that is a
    /// string; `null` where none is.
    #[test]
    fn me_reports_the_client_as_the_identity_providers_name_it() {
        let cases = [
            (
                serde_json::json!({"client_id": "rfc9068", "azp": "b", "cid": "c"}),
                Some("rfc9068"),
            ),
            (
                serde_json::json!({"azp": "auth0-or-keycloak", "cid": "c"}),
                Some("auth0-or-keycloak"),
            ),
            (serde_json::json!({"cid": "okta"}), Some("okta")),
            (
                serde_json::json!({"client_id": 7, "cid": "okta"}),
                Some("okta"),
            ),
            (serde_json::json!({"appid": "entra-v1"}), None),
            (serde_json::json!({}), None),
        ];
        for (claims, expected) in cases {
            let me: MeClaims = serde_json::from_value(claims.clone()).unwrap();
            assert_eq!(
                me.client_id(),
                expected.map(|c| Value::String(c.to_owned())),
                "{claims}"
            );
        }
    }

    /// `DPOP_KEY_CACHE_CAPACITY` and `DPOP_TOKEN_CACHE_CAPACITY`: positive whole numbers, given
    /// to the layer; unset, the library's defaults.
    #[test]
    fn key_and_token_cache_capacities() {
        let caches = |vars: &[(&'static str, &str)]| {
            let mut all = vec![JWKS, AUD];
            all.extend_from_slice(vars);
            let layer = settings(&all)
                .unwrap()
                .layer("https://api.example.com")
                .unwrap();
            let config = layer.config();
            (config.key_cache_capacity(), config.token_cache_capacity())
        };
        assert_eq!(caches(&[]), (10_000, 10_000));
        assert_eq!(
            caches(&[
                ("DPOP_KEY_CACHE_CAPACITY", "20000"),
                ("DPOP_TOKEN_CACHE_CAPACITY", "40000")
            ]),
            (20_000, 40_000)
        );
        for (var, value) in [
            ("DPOP_KEY_CACHE_CAPACITY", "0"),
            ("DPOP_TOKEN_CACHE_CAPACITY", "many"),
        ] {
            match settings(&[JWKS, AUD, (var, value)]) {
                Err(StartError::Env { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}={value}: {:?}", other.map(|_| ())),
            }
        }
    }

    async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = reqwest::Client::new().get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// `serve` hands the layer the peer address: a request from the trusted proxy (this test,
    /// on 127.0.0.1) that reports another origin than `DPOP_PUBLIC_URL` is refused before its
    /// missing credentials are.
    #[tokio::test]
    async fn served_with_the_peer_address_so_the_trusted_proxy_applies() {
        let s = settings(&[
            JWKS,
            AUD,
            PUBLIC,
            ("DPOP_TRUSTED_PROXY", "127.0.0.1"),
            ("DPOP_FORWARDED_HEADER", "x-forwarded"),
        ])
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bound = listener.local_addr().unwrap();
        let app = router(s.layer(&s.public_origin(bound)).unwrap(), &[]);
        let server = tokio::spawn(serve(listener, app, std::future::pending()));
        let url = format!("http://{bound}/api/me");

        let evil = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ];
        let (status, body) = get(&url, &evil).await;
        assert_eq!(status, 400);
        assert!(
            body.contains("forwarded origin is not a configured public origin"),
            "{body}"
        );
        let public = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
        ];
        assert_eq!(get(&url, &public).await.0, 401);
        server.abort();
    }

    const INTRO_URL: (&str, &str) = ("DPOP_INTROSPECTION_URL", "http://127.0.0.1:9/introspect");
    const INTRO_ID: (&str, &str) = ("DPOP_INTROSPECTION_CLIENT_ID", "api:rs");
    const INTRO_SECRET: (&str, &str) = ("DPOP_INTROSPECTION_CLIENT_SECRET", "s3cret word");

    /// What the introspection variables give: the endpoint, or the variable the error names.
    fn introspection(vars: &[(&'static str, &str)]) -> Result<Option<String>, &'static str> {
        let mut all = vec![AUD];
        all.extend_from_slice(vars);
        match settings(&all) {
            Ok(s) => Ok(s.introspection.map(|i| i.url)),
            Err(StartError::Env { var, reason }) => {
                assert!(!reason.contains("s3cret"), "{reason}");
                Err(var)
            }
            Err(other) => panic!("{other}"),
        }
    }

    /// `DPOP_INTROSPECTION_*`: all three together (and without `DPOP_JWKS_URL`), or none;
    /// each error names its variable.
    #[cfg(feature = "introspection")]
    #[test]
    fn introspection_variables() {
        let url = Ok(Some(INTRO_URL.1.to_owned()));
        for (name, vars, expected) in [
            ("none: JWTs", &[JWKS][..], Ok(None)),
            ("all three", &[INTRO_URL, INTRO_ID, INTRO_SECRET][..], url),
            (
                "neither JWKS, issuer to discover, nor introspection",
                &[][..],
                Err("DPOP_ISSUER"),
            ),
            (
                "both JWKS and introspection",
                &[JWKS, INTRO_URL, INTRO_ID, INTRO_SECRET][..],
                Err("DPOP_JWKS_URL"),
            ),
            (
                "no client id",
                &[INTRO_URL, INTRO_SECRET][..],
                Err("DPOP_INTROSPECTION_CLIENT_ID"),
            ),
            (
                "no client secret",
                &[INTRO_URL, INTRO_ID][..],
                Err("DPOP_INTROSPECTION_CLIENT_SECRET"),
            ),
            (
                "client id without the URL",
                &[JWKS, INTRO_ID][..],
                Err("DPOP_INTROSPECTION_CLIENT_ID"),
            ),
            (
                "client secret without the URL",
                &[JWKS, INTRO_SECRET][..],
                Err("DPOP_INTROSPECTION_CLIENT_SECRET"),
            ),
            (
                "plain http off loopback",
                &[
                    ("DPOP_INTROSPECTION_URL", "http://as.example.com/introspect"),
                    INTRO_ID,
                    INTRO_SECRET,
                ][..],
                Err("DPOP_INTROSPECTION_URL"),
            ),
            (
                "https",
                &[
                    (
                        "DPOP_INTROSPECTION_URL",
                        "https://as.example.com/introspect",
                    ),
                    INTRO_ID,
                    INTRO_SECRET,
                ][..],
                Ok(Some("https://as.example.com/introspect".to_owned())),
            ),
        ] {
            assert_eq!(introspection(vars), expected, "{name}");
        }
        let s = settings(&[AUD, INTRO_URL, INTRO_ID, INTRO_SECRET]).unwrap();
        let dbg = format!("{s:?}");
        assert!(dbg.contains("api:rs") && !dbg.contains("s3cret"), "{dbg}");
        assert!(s.layer("https://api.example.com").is_ok());
    }

    /// Without the `introspection` feature, `DPOP_INTROSPECTION_URL` stops the server rather
    /// than letting it validate the tokens as JWTs.
    #[cfg(not(feature = "introspection"))]
    #[test]
    fn introspection_needs_the_feature() {
        let err = settings(&[AUD, INTRO_URL, INTRO_ID, INTRO_SECRET]).unwrap_err();
        let line = err.to_string();
        assert!(
            line.starts_with("DPOP_INTROSPECTION_URL") && line.contains("--features introspection"),
            "{line}"
        );
        assert_eq!(introspection(&[JWKS]), Ok(None));
    }

    /// With `DPOP_INTROSPECTION_URL`, `/api/me` answers from the introspection response of a
    /// stand-in endpoint on 127.0.0.1 that checks the client credentials (`client_secret_basic`).
    #[cfg(feature = "introspection")]
    #[tokio::test]
    async fn tokens_are_introspected_when_the_url_is_set() {
        use base64::Engine as _;
        use serde_json::json;
        use tower_dpop::testing::{unix_now, ClientKey};
        use tower_dpop::Algorithm;

        let client = ClientKey::generate(Algorithm::ES256);
        let jkt = client.jkt().to_owned();
        // RFC 6749 section 2.3.1: each part form-urlencoded, then Basic.
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("api%3Ars:s3cret+word")
        );
        let endpoint = Router::new().route(
            "/introspect",
            post(move |headers: HeaderMap, body: String| {
                let (basic, jkt) = (basic.clone(), jkt.clone());
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&basic) {
                        return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({}))).into_response();
                    }
                    let active = body.starts_with("token=opaque-1&");
                    Json(if active {
                        json!({"active": true, "sub": "alice", "client_id": "web", "iss": "https://as.example.com",
                               "aud": "https://api.example.com", "exp": unix_now() + 60,
                               "token_type": "DPoP", "cnf": {"jkt": jkt}})
                    } else {
                        json!({"active": false})
                    })
                    .into_response()
                }
            }),
        );
        let as_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let as_addr = as_listener.local_addr().unwrap();
        let as_server = tokio::spawn(serve(as_listener, endpoint, std::future::pending()));
        let url = format!("http://{as_addr}/introspect");
        let s = settings(&[
            AUD,
            PUBLIC,
            ("DPOP_ISSUER", "https://as.example.com"),
            ("DPOP_INTROSPECTION_URL", &url),
            INTRO_ID,
            INTRO_SECRET,
        ])
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bound = listener.local_addr().unwrap();
        let app = router(s.layer(&s.public_origin(bound)).unwrap(), &[]);
        let server = tokio::spawn(serve(listener, app, std::future::pending()));

        let call = |token: &'static str| {
            let proof = client
                .proof("GET", "https://api.example.com/api/me")
                .access_token(token)
                .sign();
            let auth = format!("DPoP {token}");
            async move {
                get(
                    &format!("http://{bound}/api/me"),
                    &[
                        ("authorization", &auth),
                        ("dpop", &proof),
                        ("host", "api.example.com"),
                    ],
                )
                .await
            }
        };
        let (status, body) = call("opaque-1").await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"sub": "alice", "jkt": client.jkt(), "client_id": "web"})
        );
        assert_eq!(call("opaque-2").await.0, 401);
        server.abort();
        as_server.abort();
    }
}
