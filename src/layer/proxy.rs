//! Opt-in trust of the origin a proxy reports (`Forwarded`, or `X-Forwarded-Proto` +
//! `X-Forwarded-Host`), from configured proxy addresses only.
//!
//! The rules are documented on [`ForwardedHeader`].

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::header::FORWARDED;
use http::{HeaderMap, HeaderName};

use crate::error::ConfigError;
use crate::error::{Error, ErrorKind};
use crate::proof::htu::PublicOrigin;

/// The largest forwarding header value read, in bytes; a longer one is refused as malformed.
/// A proxy's own element is a few dozen bytes, a chain of several proxies a few hundred.
pub(crate) const MAX_FORWARDED_LEN: usize = 4096;

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The forwarding headers the trusted proxies set, and so the only ones read.
///
/// By default the origin `htu` is checked against is configuration only: the `Host` header and
/// the forwarding headers are chosen by whoever sends the request, so an origin taken from them
/// would let a proof made for `https://evil.example` pass here. With
/// [`trusted_proxy`](crate::DpopLayerBuilder::trusted_proxy) and
/// [`forwarded_header`](crate::DpopLayerBuilder::forwarded_header), a request whose TCP peer is
/// one of the proxies (read from axum's `ConnectInfo<SocketAddr>`, so serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`) must say which public origin it came
/// in on, and its proof must be made for that origin. The rules, for such a request:
///
/// - only the family the operator named is read, [`ForwardedHeader::Forwarded`] or
///   [`ForwardedHeader::XForwarded`]; a request that carries the other family as well is refused
///   (400 `invalid_request`): the proxy is expected to set one family and the other one can only
///   have come from the client;
/// - the protocol and the host come from the same place: the last element of `Forwarded` (the
///   one the trusted proxy added), or the last values of `X-Forwarded-Proto` and
///   `X-Forwarded-Host`. `X-Forwarded-Port`, `X-Forwarded-For` and the `Host` header are never
///   read;
/// - a missing protocol or host, or a value that is not an `http(s)` origin, is refused with
///   400: the proxy was configured to always report the origin, so a request from it that does
///   not is a misconfiguration or did not go through it, and falling back to the configured
///   origins would hide that;
/// - the reported origin must equal one of the configured
///   [`public_origin`](crate::DpopLayerBuilder::public_origin)s after normalization (scheme and
///   host lowercase, default port dropped), else 400: the request was addressed to an origin this
///   server does not serve, and no proof can fix that;
/// - the proof's `htu` must then be that origin followed by the request path, not merely any
///   configured origin (else 401 `invalid_dpop_proof`).
///
/// These checks come before credentials are looked at, so a trusted proxy's request without
/// credentials is refused in the same way, even on a layer that
/// [allows anonymous requests](crate::DpopLayerBuilder::allow_anonymous). Requests from any
/// other peer (or without `ConnectInfo`) have their forwarding headers ignored and `htu` checked
/// against the configured origins, as without a trusted proxy.
///
/// ```
/// use tower_dpop::layer::ForwardedHeader;
/// use tower_dpop::{testing::TestIssuer, DpopLayer};
///
/// let issuer = TestIssuer::new();
/// let layer = DpopLayer::builder()
///     .public_origin("https://api.example.com")
///     .public_origin("https://api.example.eu")
///     .token_validator(issuer.validator())
///     .trusted_proxy("10.0.0.0/8")
///     .forwarded_header(ForwardedHeader::XForwarded)
///     .build();
/// assert!(layer.is_ok());
///
/// // A trusted proxy without the header family it sets is a configuration error.
/// let err = DpopLayer::builder()
///     .public_origin("https://api.example.com")
///     .token_validator(issuer.validator())
///     .trusted_proxy("10.0.0.0/8")
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("forwarded_header"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// RFC 7239 `Forwarded`: `proto` and `host` of its last element (the one the trusted proxy
    /// added), for example `Forwarded: for=203.0.113.9;proto=https;host=api.example.com`.
    Forwarded,
    /// `X-Forwarded-Proto` and `X-Forwarded-Host`: the last value of each (what the trusted
    /// proxy set or appended), for example `X-Forwarded-Proto: https` and
    /// `X-Forwarded-Host: api.example.com`.
    XForwarded,
}

/// An address or network (`10.0.0.0/8`, `::1`, `192.168.1.7/32`) whose forwarding headers are
/// trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for TrustedProxy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError::setting(
                "trusted_proxy",
                format!("{s:?} is not an IP address or CIDR network such as 10.0.0.0/8"),
            )
        };
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl TrustedProxy {
    /// `true` when `ip` is in this network.
    #[must_use]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => masked(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, addr: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits.saturating_sub(u32::from(prefix));
    net.checked_shr(shift).unwrap_or(0) == addr.checked_shr(shift).unwrap_or(0)
}

const MIXED: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "request from a trusted proxy carries both Forwarded and X-Forwarded-Proto or X-Forwarded-Host",
);
const NO_FORWARDED: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "request from a trusted proxy has no Forwarded proto and host",
);
const NO_X_FORWARDED: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "request from a trusted proxy has no X-Forwarded-Proto and X-Forwarded-Host",
);
const MALFORMED: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "forwarding header from a trusted proxy is malformed",
);
const NOT_AN_ORIGIN: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "forwarded proto and host are not an http(s) origin",
);
const NOT_CONFIGURED: Error = Error::fixed(
    ErrorKind::ForwardedOrigin,
    "forwarded origin is not a configured public origin",
);

/// The trusted proxies and the header family they set, as validated by the builder.
#[derive(Debug, Clone)]
pub(crate) struct ProxyTrust {
    pub(crate) proxies: Vec<TrustedProxy>,
    pub(crate) header: ForwardedHeader,
}

impl ProxyTrust {
    /// The builder's `trusted_proxy` addresses and `forwarded_header`: both or neither.
    pub(crate) fn from_config(
        proxies: &[String],
        header: Option<ForwardedHeader>,
    ) -> Result<Option<Self>, ConfigError> {
        let proxies = proxies
            .iter()
            .map(|p| p.parse())
            .collect::<Result<Vec<TrustedProxy>, _>>()?;
        match (proxies.is_empty(), header) {
            (true, None) => Ok(None),
            (false, Some(header)) => Ok(Some(Self { proxies, header })),
            (true, Some(_)) => Err(ConfigError::setting(
                "forwarded_header",
                "forwarded_header is set but no trusted_proxy: it would do nothing; \
                 add the proxy addresses with trusted_proxy, or remove forwarded_header",
            )),
            (false, None) => Err(ConfigError::setting(
                "forwarded_header",
                "trusted_proxy needs forwarded_header: set ForwardedHeader::Forwarded or \
                 ForwardedHeader::XForwarded, whichever family your proxy sets",
            )),
        }
    }

    /// The configured origin a trusted proxy reports for this request: `Ok(None)` when the peer
    /// is unknown or not a trusted proxy (its forwarding headers are ignored), an
    /// `invalid_request` error when a trusted proxy's request does not name one of `origins`.
    pub(crate) fn forwarded_origin<'o>(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        origins: &'o [PublicOrigin],
    ) -> Result<Option<&'o PublicOrigin>, Error> {
        let Some(peer) = peer else {
            return Ok(None);
        };
        if !self.proxies.iter().any(|p| p.contains(peer.ip())) {
            return Ok(None);
        }
        let forwarded = headers.contains_key(FORWARDED);
        let x_forwarded =
            headers.contains_key(&X_FORWARDED_PROTO) || headers.contains_key(&X_FORWARDED_HOST);
        if forwarded && x_forwarded {
            return Err(MIXED);
        }
        let (proto, host) = match self.header {
            ForwardedHeader::Forwarded => last_forwarded_element(headers)?,
            ForwardedHeader::XForwarded => (
                last_value(headers, &X_FORWARDED_PROTO)?,
                last_value(headers, &X_FORWARDED_HOST)?,
            ),
        };
        let (Some(proto), Some(host)) = (proto, host) else {
            return Err(match self.header {
                ForwardedHeader::Forwarded => NO_FORWARDED,
                ForwardedHeader::XForwarded => NO_X_FORWARDED,
            });
        };
        let origin = origin(proto, host)?;
        origins
            .iter()
            .find(|o| **o == origin)
            .map(Some)
            .ok_or(NOT_CONFIGURED)
    }
}

/// The last line of header `name`, bounded and visible ASCII.
fn last_line<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, Error> {
    let Some(value) = headers.get_all(name).iter().next_back() else {
        return Ok(None);
    };
    if value.len() > MAX_FORWARDED_LEN {
        return Err(MALFORMED);
    }
    value.to_str().map(Some).map_err(|_| MALFORMED)
}

/// The last comma-separated value of header `name`; `None` when absent or empty.
fn last_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, Error> {
    Ok(last_line(headers, name)?
        .and_then(|line| line.rsplit(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty()))
}

/// `proto` and `host` of the last element of `Forwarded` (RFC 7239 section 4), each `None`
/// when that element does not have it. Nothing is taken from an earlier element.
fn last_forwarded_element(headers: &HeaderMap) -> Result<(Option<&str>, Option<&str>), Error> {
    let Some(line) = last_line(headers, &FORWARDED)? else {
        return Ok((None, None));
    };
    let elements = split_outside_quotes(line, b',').ok_or(MALFORMED)?;
    let element = elements.last().copied().unwrap_or_default();
    let (mut proto, mut host) = (None, None);
    for pair in split_outside_quotes(element, b';').ok_or(MALFORMED)? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').ok_or(MALFORMED)?;
        let slot = if name.trim().eq_ignore_ascii_case("proto") {
            &mut proto
        } else if name.trim().eq_ignore_ascii_case("host") {
            &mut host
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(MALFORMED);
        }
        *slot = Some(unquote(value.trim()).ok_or(MALFORMED)?);
    }
    Ok((proto, host))
}

/// Splits `s` at each `sep` outside an RFC 9110 quoted-string; `None` when a quote is left open.
fn split_outside_quotes(s: &str, sep: u8) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(s.get(start..i)?);
            start = i + 1;
        }
    }
    if quoted {
        return None;
    }
    parts.push(s.get(start..)?);
    Some(parts)
}

/// A `Forwarded` parameter value: a token, or a quoted-string without escapes (a protocol or a
/// host never needs one).
fn unquote(value: &str) -> Option<&str> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (!inner.is_empty() && !inner.contains(['"', '\\'])).then_some(inner)
}

/// The origin `proto://host`, normalized as configured origins are.
fn origin(proto: &str, host: &str) -> Result<PublicOrigin, Error> {
    // Traefik reports `ws`/`wss` for WebSocket handshakes, which are http(s) requests.
    let scheme = if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
        "https"
    } else if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
        "http"
    } else {
        return Err(NOT_AN_ORIGIN);
    };
    // A host and an optional port, nothing else: no path, userinfo, query or fragment.
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:[]".contains(&b));
    if !host_ok {
        return Err(NOT_AN_ORIGIN);
    }
    PublicOrigin::parse(&format!("{scheme}://{host}")).map_err(|_| NOT_AN_ORIGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    #[test]
    fn networks() {
        let net: TrustedProxy = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: TrustedProxy = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: TrustedProxy = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "host", "1.2.3.4/x"] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad}");
        }
    }

    struct Case {
        name: &'static str,
        family: ForwardedHeader,
        headers: &'static [(&'static str, &'static str)],
        expected: Result<&'static str, Error>,
    }

    const F: ForwardedHeader = ForwardedHeader::Forwarded;
    const XF: ForwardedHeader = ForwardedHeader::XForwarded;
    const API: &str = "https://api.example.com";
    const SHOP: &str = "https://shop.example.com:8443";

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { name: "x-forwarded", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")], expected: Ok(API) },
        Case { name: "x-forwarded normalized", family: XF, headers: &[("x-forwarded-proto", "HTTPS"), ("x-forwarded-host", "API.Example.COM:443")], expected: Ok(API) },
        Case { name: "x-forwarded last value", family: XF, headers: &[("x-forwarded-proto", "http, https"), ("x-forwarded-host", "evil.example, api.example.com")], expected: Ok(API) },
        Case { name: "x-forwarded last line", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example"), ("x-forwarded-host", "api.example.com")], expected: Ok(API) },
        Case { name: "x-forwarded wss", family: XF, headers: &[("x-forwarded-proto", "wss"), ("x-forwarded-host", "api.example.com")], expected: Ok(API) },
        Case { name: "x-forwarded port", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "shop.example.com:8443")], expected: Ok(SHOP) },
        Case { name: "x-forwarded without host", family: XF, headers: &[("x-forwarded-proto", "https"), ("host", "api.example.com")], expected: Err(NO_X_FORWARDED) },
        Case { name: "x-forwarded without proto", family: XF, headers: &[("x-forwarded-host", "api.example.com")], expected: Err(NO_X_FORWARDED) },
        Case { name: "x-forwarded empty last value", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com, ")], expected: Err(NO_X_FORWARDED) },
        Case { name: "x-forwarded only forwarded", family: XF, headers: &[("forwarded", "proto=https;host=api.example.com")], expected: Err(NO_X_FORWARDED) },
        Case { name: "x-forwarded nothing", family: XF, headers: &[], expected: Err(NO_X_FORWARDED) },
        Case { name: "x-forwarded mixed", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com"), ("forwarded", "proto=https;host=evil.example")], expected: Err(MIXED) },
        Case { name: "x-forwarded unconfigured", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")], expected: Err(NOT_CONFIGURED) },
        Case { name: "x-forwarded other scheme", family: XF, headers: &[("x-forwarded-proto", "http"), ("x-forwarded-host", "api.example.com")], expected: Err(NOT_CONFIGURED) },
        Case { name: "x-forwarded ftp", family: XF, headers: &[("x-forwarded-proto", "ftp"), ("x-forwarded-host", "api.example.com")], expected: Err(NOT_AN_ORIGIN) },
        Case { name: "x-forwarded host with path", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com/")], expected: Err(NOT_AN_ORIGIN) },
        Case { name: "x-forwarded host with userinfo", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "evil@api.example.com")], expected: Err(NOT_AN_ORIGIN) },
        Case { name: "x-forwarded bad port", family: XF, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com:x")], expected: Err(NOT_AN_ORIGIN) },
        Case { name: "forwarded", family: F, headers: &[("forwarded", "for=203.0.113.9;proto=https;host=api.example.com")], expected: Ok(API) },
        Case { name: "forwarded names any case", family: F, headers: &[("forwarded", "Proto=https;HOST=api.example.com")], expected: Ok(API) },
        Case { name: "forwarded quoted port", family: F, headers: &[("forwarded", "proto=https;host=\"shop.example.com:8443\"")], expected: Ok(SHOP) },
        Case { name: "forwarded last element", family: F, headers: &[("forwarded", "for=1.1.1.1;proto=http;host=evil.example, for=2.2.2.2;proto=https;host=api.example.com")], expected: Ok(API) },
        Case { name: "forwarded last line", family: F, headers: &[("forwarded", "proto=http;host=evil.example"), ("forwarded", "proto=https;host=api.example.com")], expected: Ok(API) },
        Case { name: "forwarded quoted comma earlier", family: F, headers: &[("forwarded", "for=\"_a,b\";secret=\"x\\\"y\", proto=https;host=api.example.com")], expected: Ok(API) },
        Case { name: "forwarded host from an earlier element", family: F, headers: &[("forwarded", "proto=https;host=api.example.com, for=2.2.2.2;proto=https")], expected: Err(NO_FORWARDED) },
        Case { name: "forwarded without proto", family: F, headers: &[("forwarded", "for=2.2.2.2;host=api.example.com")], expected: Err(NO_FORWARDED) },
        Case { name: "forwarded nothing", family: F, headers: &[], expected: Err(NO_FORWARDED) },
        Case { name: "forwarded only x-forwarded", family: F, headers: &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")], expected: Err(NO_FORWARDED) },
        Case { name: "forwarded mixed", family: F, headers: &[("forwarded", "proto=https;host=api.example.com"), ("x-forwarded-host", "evil.example")], expected: Err(MIXED) },
        Case { name: "forwarded repeated host", family: F, headers: &[("forwarded", "proto=https;host=api.example.com;host=evil.example")], expected: Err(MALFORMED) },
        Case { name: "forwarded pair without value", family: F, headers: &[("forwarded", "proto=https;host")], expected: Err(MALFORMED) },
        Case { name: "forwarded open quote", family: F, headers: &[("forwarded", "proto=https;host=\"api.example.com")], expected: Err(MALFORMED) },
        Case { name: "forwarded escape in host", family: F, headers: &[("forwarded", "proto=https;host=\"api.example.c\\om\"")], expected: Err(MALFORMED) },
        Case { name: "forwarded unconfigured", family: F, headers: &[("forwarded", "proto=https;host=evil.example")], expected: Err(NOT_CONFIGURED) },
    ];

    #[test]
    fn forwarded_origin_cases() {
        let origins: Vec<PublicOrigin> = [API, SHOP].iter().map(|o| o.parse().unwrap()).collect();
        for case in CASES {
            let trust = ProxyTrust {
                proxies: vec!["127.0.0.1".parse().unwrap()],
                header: case.family,
            };
            let mut headers = HeaderMap::new();
            for (k, v) in case.headers {
                headers.append(*k, HeaderValue::from_static(v));
            }
            let got = trust.forwarded_origin(peer("127.0.0.1"), &headers, &origins);
            let got = got.map(|o| o.map(PublicOrigin::as_str));
            assert_eq!(got, case.expected.clone().map(Some), "{}", case.name);
            // The same headers from any other peer, or without a known peer, are ignored.
            assert_eq!(
                trust.forwarded_origin(peer("127.0.0.2"), &headers, &origins),
                Ok(None),
                "{}",
                case.name
            );
            assert_eq!(
                trust.forwarded_origin(None, &headers, &origins),
                Ok(None),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn forwarding_headers_are_bounded_and_ascii() {
        let origins: Vec<PublicOrigin> = vec![API.parse().unwrap()];
        let trust = ProxyTrust {
            proxies: vec!["127.0.0.1".parse().unwrap()],
            header: ForwardedHeader::Forwarded,
        };
        let long = format!(
            "{}, proto=https;host=api.example.com",
            "for=1.1.1.1".repeat(MAX_FORWARDED_LEN / 11)
        );
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED, HeaderValue::from_str(&long).unwrap());
        assert_eq!(
            trust.forwarded_origin(peer("127.0.0.1"), &headers, &origins),
            Err(MALFORMED)
        );
        headers.insert(
            FORWARDED,
            HeaderValue::from_bytes(b"proto=https;host=api.\xe9xample.com").unwrap(),
        );
        assert_eq!(
            trust.forwarded_origin(peer("127.0.0.1"), &headers, &origins),
            Err(MALFORMED)
        );
    }
}
