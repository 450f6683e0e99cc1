//! Opt-in trust of `Forwarded` / `X-Forwarded-Proto` + `X-Forwarded-Host` from configured proxy
//! addresses, to learn the public origin a request was made to.
//!
//! By default the origin `htu` is checked against is configuration only: the `Host` header and
//! the forwarding headers are chosen by whoever sends the request, so an origin taken from them
//! would let a proof made for `https://evil.example` pass here. When the request's TCP peer is one
//! of the configured proxies (read from axum's `ConnectInfo<SocketAddr>`, so serve with
//! `into_make_service_with_connect_info`), the origin the proxy reports is accepted too. Only
//! the last element of `Forwarded` (or the last value of the `X-Forwarded-*` headers) is read:
//! the one the trusted proxy itself added.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;

use crate::config::ConfigError;
use crate::htu::PublicOrigin;

/// An address or network (`10.0.0.0/8`, `::1`, `192.168.1.7/32`) whose forwarding headers are
/// trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for TrustedProxy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError::new(format!(
                "trusted proxy {s:?} is not an IP address or CIDR network"
            ))
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
    pub fn contains(&self, ip: IpAddr) -> bool {
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

/// The origin a trusted proxy reports for this request, if the peer is trusted and says one.
pub(crate) fn forwarded_origin(
    proxies: &[TrustedProxy],
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<PublicOrigin> {
    let peer = peer?;
    if !proxies.iter().any(|p| p.contains(peer.ip())) {
        return None;
    }
    let last = |name: &str| -> Option<String> {
        let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next().map(|v| v.trim().to_owned())
    };
    let (proto, host) = match last("forwarded") {
        Some(element) => {
            let mut proto = None;
            let mut host = None;
            for pair in element.split(';') {
                let (k, v) = pair.trim().split_once('=')?;
                let v = v.trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "proto" => proto = Some(v),
                    "host" => host = Some(v),
                    _ => {}
                }
            }
            (proto?, host?)
        }
        None => (last("x-forwarded-proto")?, last("x-forwarded-host")?),
    };
    format!("{proto}://{host}").parse().ok()
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

    #[test]
    fn forwarded_headers_only_from_trusted_peers() {
        let proxies = ["127.0.0.1".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("API.example.com"),
        );
        assert_eq!(
            forwarded_origin(&proxies, peer("127.0.0.1"), &h).map(|o| o.as_str().to_owned()),
            Some("https://api.example.com".to_owned())
        );
        assert_eq!(forwarded_origin(&proxies, peer("127.0.0.2"), &h), None);
        assert_eq!(forwarded_origin(&proxies, None, &h), None);
        // Forwarded wins, and only its last element counts.
        h.insert(
            "forwarded",
            HeaderValue::from_static("for=1.1.1.1;proto=http;host=evil.example, for=2.2.2.2;proto=https;host=\"shop.example:8443\""),
        );
        assert_eq!(
            forwarded_origin(&proxies, peer("127.0.0.1"), &h).map(|o| o.as_str().to_owned()),
            Some("https://shop.example:8443".to_owned())
        );
    }
}
