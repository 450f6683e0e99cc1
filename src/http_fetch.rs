//! One bounded HTTP GET for the documents the crate fetches itself (a JWKS): a timeout over the
//! whole exchange, a size bound on the body, `https:` only (plain `http:` only when a loopback
//! test allows it), and a bounded number of redirects under the same scheme rule.
//!
//! Every outbound request of the crate should go through here, so that the policy is written
//! once: a validator that reaches its authorization server over plain HTTP, or lets a redirect
//! downgrade it to plain HTTP, trusts whoever sits on the network path.

use std::time::Duration;

use reqwest::Url;

use crate::error::ConfigError;

/// Why a fetch failed, for the logs (it names no secret: URLs here are public endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchError(String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HTTP client with the crate's outbound policy.
#[derive(Clone)]
pub(crate) struct HttpFetch {
    client: reqwest::Client,
    allow_http: bool,
}

impl std::fmt::Debug for HttpFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFetch")
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

/// `true` when a request may go to `url`: `https:`, or `http:` when allowed.
fn scheme_allowed(url: &Url, allow_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => allow_http,
        _ => false,
    }
}

/// The verdict on a redirect to `url` after `redirects` redirects already followed.
fn redirect_verdict(
    url: &Url,
    redirects: usize,
    max_redirects: usize,
    allow_http: bool,
) -> Result<(), &'static str> {
    if redirects >= max_redirects {
        return Err("too many redirects");
    }
    if !scheme_allowed(url, allow_http) {
        return Err("redirect to a URL that is not https");
    }
    Ok(())
}

impl HttpFetch {
    /// A client whose requests (connection, redirects and body included) take at most
    /// `timeout`, following at most `max_redirects` redirects.
    pub(crate) fn new(
        timeout: Duration,
        max_redirects: usize,
        allow_http: bool,
    ) -> Result<Self, ConfigError> {
        Self::with_builder(
            reqwest::Client::builder(),
            timeout,
            max_redirects,
            allow_http,
        )
    }

    fn with_builder(
        builder: reqwest::ClientBuilder,
        timeout: Duration,
        max_redirects: usize,
        allow_http: bool,
    ) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::new("an HTTP timeout must not be zero"));
        }
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the first URL and every redirect target followed so far.
            let followed = attempt.previous().len().saturating_sub(1);
            match redirect_verdict(attempt.url(), followed, max_redirects, allow_http) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        });
        let client = builder
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .build()
            .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, allow_http })
    }

    /// Parses `url` and checks it against the scheme policy; `what` names it in the error.
    pub(crate) fn check_url(&self, what: &str, url: &str) -> Result<Url, ConfigError> {
        let parsed = Url::parse(url)
            .map_err(|e| ConfigError::new(format!("{what} {url:?} is invalid: {e}")))?;
        if !scheme_allowed(&parsed, self.allow_http) {
            return Err(ConfigError::new(format!(
                "{what} {url:?} must be https (plain http is allowed only with \
                 allow_insecure_http(true), for loopback tests)"
            )));
        }
        Ok(parsed)
    }

    /// GETs `url`, asking for `accept`; the body of a 2xx answer, at most `max_bytes` long.
    #[cfg(feature = "jwks-fetch")]
    pub(crate) async fn get(
        &self,
        url: &Url,
        accept: &'static str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| FetchError(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(FetchError(format!("HTTP status {}", resp.status())));
        }
        read_body(resp, max_bytes).await
    }
}

#[cfg(feature = "introspection")]
impl HttpFetch {
    /// POSTs a form to `url` with these extra headers (marked sensitive by the caller where
    /// they carry credentials); the status and the body (at most `max_bytes`) of the answer.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        headers: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
        form: String,
        accept: &'static str,
        max_bytes: usize,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), FetchError> {
        let mut request = self
            .client
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, accept)
            .body(form);
        for (name, value) in headers {
            request = request.header(name, value.clone());
        }
        let resp = request
            .send()
            .await
            .map_err(|e| FetchError(error_chain(&e.without_url())))?;
        let status = resp.status();
        Ok((status, read_body(resp, max_bytes).await?))
    }
}

/// Reads a response body of at most `max_bytes`, refusing a longer one as soon as it shows
/// (from `Content-Length`, or while reading), and one that is not UTF-8: every document the
/// crate fetches is JSON (RFC 8259 §8.1) or a compact JWS, and serde would skip the bytes of a
/// member its reader ignores without looking at them.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError(format!("response body is larger than {max_bytes} bytes"));
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max_bytes))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FetchError(error_chain(&e)))?
    {
        if body.len().saturating_add(chunk.len()) > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    if std::str::from_utf8(&body).is_err() {
        return Err(FetchError("response body is not UTF-8".to_owned()));
    }
    Ok(body)
}

/// An error and its causes on one line (reqwest puts the reason a redirect was refused, or a
/// timeout, in the source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn scheme_and_redirect_rules() {
        let https = url("https://as.example.com/jwks");
        let http = url("http://127.0.0.1:1/jwks");
        assert!(scheme_allowed(&https, false));
        assert!(!scheme_allowed(&http, false));
        assert!(scheme_allowed(&http, true));
        assert!(!scheme_allowed(&url("ftp://as.example.com/jwks"), true));
        assert_eq!(redirect_verdict(&https, 0, 3, false), Ok(()));
        assert_eq!(redirect_verdict(&https, 2, 3, false), Ok(()));
        assert_eq!(
            redirect_verdict(&https, 3, 3, false),
            Err("too many redirects")
        );
        assert_eq!(
            redirect_verdict(&http, 0, 3, false),
            Err("redirect to a URL that is not https")
        );
        assert_eq!(redirect_verdict(&http, 0, 3, true), Ok(()));
        assert_eq!(
            redirect_verdict(&https, 0, 0, true),
            Err("too many redirects")
        );
    }

    #[test]
    fn plain_http_urls_need_the_explicit_allowance() {
        let strict = HttpFetch::new(Duration::from_secs(1), 3, false).unwrap();
        let err = strict.check_url("JWKS URL", "http://127.0.0.1:1/jwks");
        assert!(
            err.unwrap_err().to_string().contains("allow_insecure_http"),
            "the error says how to allow it"
        );
        assert!(strict
            .check_url("JWKS URL", "https://as.example.com/jwks")
            .is_ok());
        assert!(strict.check_url("JWKS URL", "file:///etc/passwd").is_err());
        let lax = HttpFetch::new(Duration::from_secs(1), 3, true).unwrap();
        assert!(lax.check_url("JWKS URL", "http://127.0.0.1:1/jwks").is_ok());
        assert!(HttpFetch::new(Duration::ZERO, 3, false).is_err());
    }

    /// A self-signed certificate for 127.0.0.1 and its acceptor.
    fn tls_acceptor() -> (openssl::ssl::SslAcceptor, reqwest::Certificate) {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::ssl::{SslAcceptor, SslMethod};
        use openssl::x509::extension::SubjectAlternativeName;
        use openssl::x509::{X509NameBuilder, X509};

        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "127.0.0.1").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .build(&cert.x509v3_context(None, None))
            .unwrap();
        cert.append_extension(san).unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = cert.build();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        acceptor.set_private_key(&key).unwrap();
        acceptor.set_certificate(&cert).unwrap();
        let root = reqwest::Certificate::from_pem(&cert.to_pem().unwrap()).unwrap();
        (acceptor.build(), root)
    }

    /// Reads one request head from `stream` and writes `response`.
    fn answer(mut stream: impl std::io::Read + std::io::Write, response: impl AsRef<[u8]>) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = stream.write_all(response.as_ref());
        let _ = stream.flush();
    }

    /// An https server on 127.0.0.1 that redirects to a plain-http server, which counts the
    /// requests it gets: the redirect is followed only when plain http is allowed.
    #[tokio::test]
    async fn a_redirect_from_https_to_http_is_refused_unless_allowed() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let plain_url = format!("http://{}/jwks", plain.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in plain.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                answer(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        let (acceptor, root) = tls_acceptor();
        let tls = TcpListener::bind("127.0.0.1:0").unwrap();
        let tls_url = url(&format!("https://{}/jwks", tls.local_addr().unwrap()));
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nLocation: {plain_url}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        std::thread::spawn(move || {
            for stream in tls.incoming().flatten() {
                if let Ok(stream) = acceptor.accept(stream) {
                    answer(stream, &redirect);
                }
            }
        });
        let client = |allow_http: bool| {
            let builder = reqwest::Client::builder().add_root_certificate(root.clone());
            HttpFetch::with_builder(builder, Duration::from_secs(5), 3, allow_http).unwrap()
        };

        let err = client(false)
            .get(&tls_url, "application/json", 1024)
            .await
            .unwrap_err();
        assert!(err.0.contains("not https"), "{err}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the http URL was never asked"
        );

        let body = client(true)
            .get(&tls_url, "application/json", 1024)
            .await
            .unwrap();
        assert_eq!(body, b"ok");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    /// A plain-http server (loopback, allowed) that answers each request with a redirect to
    /// itself, counting them: at most `max_redirects` are followed.
    #[tokio::test]
    async fn redirects_are_limited_and_bodies_are_bounded() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in server.incoming().flatten() {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let response = if n < 100 {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://{addr}/r{n}\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .into_bytes()
                } else if n >= 200 {
                    // A JSON document whose ignored member holds a byte that is not UTF-8.
                    let mut r =
                        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"x\":\"".to_vec();
                    r.extend_from_slice(b"\x92\"}");
                    r
                } else {
                    let body = "x".repeat(64);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                };
                answer(stream, &response);
            }
        });
        let fetch = HttpFetch::new(Duration::from_secs(5), 3, true).unwrap();
        let start = url(&format!("http://{addr}/jwks"));
        let err = fetch
            .get(&start, "application/json", 1024)
            .await
            .unwrap_err();
        assert!(err.0.contains("too many redirects"), "{err}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            4,
            "the first request and 3 redirects"
        );

        hits.store(100, Ordering::SeqCst);
        let err = fetch.get(&start, "application/json", 63).await.unwrap_err();
        assert_eq!(err.0, "response body is larger than 63 bytes");
        let body = fetch.get(&start, "application/json", 64).await.unwrap();
        assert_eq!(body.len(), 64);
        hits.store(200, Ordering::SeqCst);
        let err = fetch.get(&start, "application/json", 64).await.unwrap_err();
        assert_eq!(err.0, "response body is not UTF-8");
    }
}
