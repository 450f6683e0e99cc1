//! Normalization and comparison of the DPoP proof `htu` claim against the request URI.
//!
//! RFC 9449 section 4.3 requires the `htu` claim to match the HTTP URI of the request,
//! "ignoring any query and fragment parts", after the syntax-based and scheme-based
//! normalization of RFC 3986 sections 6.2.2 and 6.2.3. This module implements that
//! normalization for absolute `http`/`https` URIs, for origin-form request paths and for the
//! public origins a server is configured with.
//!
//! The parser is stricter than RFC 3986 where a legitimate `htu` never needs the
//! generality: userinfo is rejected, a host must be a valid IPv6 literal or consist of
//! unreserved characters only (no percent-encoding, no sub-delims), and any byte outside
//! printable ASCII is rejected anywhere in the input, including the query and fragment.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// Maximum length in bytes of a URI, path or origin; longer input is rejected before parsing.
pub(crate) const MAX_HTU_LEN: usize = 4096;

/// Why a URI could not be normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum HtuError {
    /// The input is longer than [`MAX_HTU_LEN`] bytes.
    TooLong,
    /// The input is not an absolute URI (or, for a request path, does not start with `/`).
    NotAbsolute,
    /// The scheme is neither `http` nor `https`.
    UnsupportedScheme,
    /// The authority is missing, its host is empty, or the host is not allowed.
    InvalidAuthority,
    /// The port is not a decimal number in `0..=65535`.
    InvalidPort,
    /// The authority contains userinfo (`user@host`).
    UserinfoNotAllowed,
    /// The input contains a non-ASCII byte, a control character or a space.
    InvalidCharacter,
    /// A `%` is not followed by two hexadecimal digits.
    InvalidPercentEncoding,
    /// A public origin has a path other than `/`, a query or a fragment.
    NotAnOrigin,
    /// A request path contains `.` or `..` segments. The router sees the path as written,
    /// so such a request never matches a proof (whose `htu` has its dot segments removed).
    DotSegments,
}

impl fmt::Display for HtuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "htu is too long",
            Self::NotAbsolute => "htu is not an absolute URI",
            Self::UnsupportedScheme => "htu scheme is not http or https",
            Self::InvalidAuthority => "htu has an invalid authority",
            Self::InvalidPort => "htu has an invalid port",
            Self::UserinfoNotAllowed => "htu must not contain userinfo",
            Self::InvalidCharacter => "htu contains an invalid character",
            Self::InvalidPercentEncoding => "htu contains a malformed percent-encoding",
            Self::NotAnOrigin => "origin must be scheme://host[:port]",
            Self::DotSegments => "request path contains dot segments",
        })
    }
}

impl std::error::Error for HtuError {}

/// The components of an absolute http(s) URI: validated, not yet normalized.
struct Parts<'a> {
    /// Lowercase scheme, `"http"` or `"https"`.
    scheme: &'static str,
    /// Host as written (reg-name or `[IPv6]`), possibly with uppercase letters.
    host: &'a str,
    /// Port, `None` when absent, empty or the scheme's default.
    port: Option<u16>,
    /// Path as written: empty or starting with `/`, without query and fragment.
    path: &'a str,
    /// The input's `scheme://authority` is already in normal form.
    prefix_normal: bool,
    /// A query or fragment was cut off.
    cut: bool,
}

/// Rejects overlong input and any byte that is not printable ASCII (space excluded).
fn check_input(s: &str) -> Result<(), HtuError> {
    if s.len() > MAX_HTU_LEN {
        return Err(HtuError::TooLong);
    }
    let printable = s.bytes().all(|b| b.is_ascii_graphic());
    printable.then_some(()).ok_or(HtuError::InvalidCharacter)
}

/// Cuts `s` at the first `?` or `#`; returns the part before it and whether anything was cut.
fn cut_query(s: &str) -> (&str, bool) {
    let head = s.split(['?', '#']).next().unwrap_or(s);
    (head, head.len() < s.len())
}

/// RFC 3986 `unreserved` = ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn parse(uri: &str) -> Result<Parts<'_>, HtuError> {
    check_input(uri)?;
    let (scheme_raw, rest) = uri.split_once(':').ok_or(HtuError::NotAbsolute)?;
    let mut scheme_bytes = scheme_raw.bytes();
    let scheme_ok = scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(HtuError::NotAbsolute);
    }
    let (scheme, default_port) = if scheme_raw.eq_ignore_ascii_case("http") {
        ("http", 80)
    } else if scheme_raw.eq_ignore_ascii_case("https") {
        ("https", 443)
    } else {
        return Err(HtuError::UnsupportedScheme);
    };
    let rest = rest.strip_prefix("//").ok_or(HtuError::InvalidAuthority)?;
    let (hier, cut) = cut_query(rest);
    let (authority, path) = hier
        .find('/')
        .and_then(|i| hier.split_at_checked(i))
        .unwrap_or((hier, ""));
    if authority.contains('@') {
        return Err(HtuError::UserinfoNotAllowed);
    }
    let (host, port_raw) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inner, after) = bracketed
            .split_once(']')
            .ok_or(HtuError::InvalidAuthority)?;
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(HtuError::InvalidAuthority);
        }
        let host = authority
            .get(..inner.len() + 2)
            .ok_or(HtuError::InvalidAuthority)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(HtuError::InvalidAuthority)?),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || !host.bytes().all(is_unreserved) {
            return Err(HtuError::InvalidAuthority);
        }
        (host, port)
    };
    let (port, port_normal) = match port_raw {
        None => (None, true),
        Some("") => (None, false),
        Some(raw) => {
            if !raw.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HtuError::InvalidPort);
            }
            let digits = raw.trim_start_matches('0');
            let n: u16 = match digits {
                "" => 0,
                _ => digits.parse().map_err(|_| HtuError::InvalidPort)?,
            };
            let canonical = digits.len() == raw.len() || raw == "0";
            (
                Some(n).filter(|&n| n != default_port),
                canonical && n != default_port,
            )
        }
    };
    let has_upper = |s: &str| s.bytes().any(|b| b.is_ascii_uppercase());
    let prefix_normal = port_normal && !has_upper(scheme_raw) && !has_upper(host);
    Ok(Parts {
        scheme,
        host,
        port,
        path,
        prefix_normal,
        cut,
    })
}

/// Writes the normalized `scheme://host[:port]` of `parts`, with room for a path.
fn origin_string(parts: &Parts<'_>) -> String {
    let mut out = String::with_capacity(parts.host.len() + parts.path.len() + 16);
    out.push_str(parts.scheme);
    out.push_str("://");
    out.extend(parts.host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(port) = parts.port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out
}

/// Decodes the two hex digits following a `%`.
fn pct_decode(hi: Option<u8>, lo: Option<u8>) -> Result<u8, HtuError> {
    let digit = |b: Option<u8>| {
        b.and_then(|b| char::from(b).to_digit(16))
            .ok_or(HtuError::InvalidPercentEncoding)
    };
    let value = digit(hi)? * 16 + digit(lo)?;
    u8::try_from(value).map_err(|_| HtuError::InvalidPercentEncoding)
}

/// Uppercase hex digit for a nibble (`n < 16`).
fn hex_upper(n: u8) -> char {
    char::from_digit(u32::from(n), 16).map_or('0', |c| c.to_ascii_uppercase())
}

/// Normalizes a path that is empty or starts with `/` and has no query or fragment.
/// Returns `None` when the path is non-empty and already normal.
fn normalize_path_inner(path: &str, dots: Dots) -> Result<Option<String>, HtuError> {
    // Pass 1: validate every percent-encoding and find out whether anything changes.
    let mut normal = !path.is_empty();
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let (hi, lo) = (bytes.next(), bytes.next());
            let value = pct_decode(hi, lo)?;
            let lower = |d: Option<u8>| d.is_some_and(|d| d.is_ascii_lowercase());
            normal &= !is_unreserved(value) && !lower(hi) && !lower(lo);
        }
    }
    normal &= !path.split('/').any(|seg| seg == "." || seg == "..");
    if normal {
        return Ok(None);
    }
    // Pass 2: percent-encoding normalization (RFC 3986 6.2.2.1, 6.2.2.2), then dot segments.
    let mut decoded = String::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            decoded.push(char::from(b));
            continue;
        }
        let (hi, lo) = (bytes.next(), bytes.next());
        let value = pct_decode(hi, lo)?;
        if is_unreserved(value) {
            decoded.push(char::from(value));
        } else {
            decoded.push('%');
            decoded.push(hex_upper(value >> 4));
            decoded.push(hex_upper(value & 0x0f));
        }
    }
    let has_dots = decoded.split('/').any(|seg| seg == "." || seg == "..");
    match dots {
        Dots::Reject if has_dots => Err(HtuError::DotSegments),
        Dots::Reject => Ok(Some(if decoded.is_empty() {
            "/".to_owned()
        } else {
            decoded
        })),
        Dots::Remove => Ok(Some(remove_dot_segments(&decoded))),
    }
}

/// What to do with `.` and `..` segments.
#[derive(Clone, Copy)]
enum Dots {
    /// Remove them (RFC 3986 section 5.2.4): for the `htu` claim.
    Remove,
    /// Refuse them: for the request path, which the router uses as written.
    Reject,
}

/// RFC 3986 section 5.2.4 for a path that is empty or starts with `/`; never returns "".
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    if let Some(rest) = path.strip_prefix('/') {
        for seg in rest.split('/') {
            trailing_slash = matches!(seg, "." | "..");
            match seg {
                "." => {}
                ".." => {
                    kept.pop();
                }
                _ => kept.push(seg),
            }
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for seg in kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

/// Normalizes an absolute http(s) URI and drops query and fragment. Returns `Cow::Borrowed` when
/// the input is already normalized and has no query/fragment (the common case: no allocation).
///
/// # Errors
/// Any [`HtuError`] except [`HtuError::NotAnOrigin`], when `uri` is not an acceptable `htu`.
pub(crate) fn normalize(uri: &str) -> Result<Cow<'_, str>, HtuError> {
    let parts = parse(uri)?;
    let path = normalize_path_inner(parts.path, Dots::Remove)?;
    if parts.prefix_normal && !parts.cut && path.is_none() {
        return Ok(Cow::Borrowed(uri));
    }
    let mut out = origin_string(&parts);
    out.push_str(path.as_deref().unwrap_or(parts.path));
    Ok(Cow::Owned(out))
}

/// Normalizes an origin-form request path (as found in an HTTP request line, e.g.
/// `"/a/%7Eb/../c"`; anything from `?` (or `#`) on is dropped), with the same path rules as
/// [`normalize`]: percent-encoding case, unreserved decoding, empty -> `"/"`. Dot segments are
/// refused ([`HtuError::DotSegments`]) rather than removed: the router dispatches on the path as
/// written, so a proof for `/b` must not authorize a request for `/a/../b`.
/// Must start with `/` or be empty. Returns `Cow::Borrowed` when already normal.
///
/// # Errors
/// [`HtuError::TooLong`], [`HtuError::InvalidCharacter`], [`HtuError::InvalidPercentEncoding`],
/// or [`HtuError::NotAbsolute`] when the path does not start with `/`.
pub(crate) fn normalize_path(path: &str) -> Result<Cow<'_, str>, HtuError> {
    check_input(path)?;
    let (path, _) = cut_query(path);
    if path.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    if !path.starts_with('/') {
        return Err(HtuError::NotAbsolute);
    }
    Ok(match normalize_path_inner(path, Dots::Reject)? {
        None => Cow::Borrowed(path),
        Some(owned) => Cow::Owned(owned),
    })
}

/// A public origin the server is reached at: `scheme://host[:port]`, normalized once at
/// configuration time. Anything after the authority other than an empty path or "/" is an
/// error ([`HtuError::NotAnOrigin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicOrigin {
    /// Normalized `scheme://host[:port]`, without trailing slash.
    origin: String,
}

impl PublicOrigin {
    /// Parses and normalizes an origin such as `https://API.example.com:443/`.
    ///
    /// # Errors
    /// As [`normalize`], plus [`HtuError::NotAnOrigin`] for a path, query or fragment.
    pub(crate) fn parse(origin: &str) -> Result<Self, HtuError> {
        let parts = parse(origin)?;
        if parts.cut || !matches!(parts.path, "" | "/") {
            return Err(HtuError::NotAnOrigin);
        }
        Ok(Self {
            origin: origin_string(&parts),
        })
    }

    /// The normalized origin, `scheme://host[:port]` without trailing slash.
    #[must_use]
    pub(crate) fn as_str(&self) -> &str {
        &self.origin
    }

    /// True when `htu` (the raw claim) normalizes to this origin followed by the normalized
    /// `request_path`.
    #[must_use]
    pub(crate) fn matches(&self, htu: &str, request_path: &str) -> bool {
        matches_any(std::slice::from_ref(self), htu, request_path)
    }
}

impl fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

impl FromStr for PublicOrigin {
    type Err = HtuError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True when the claim matches the request path under any of the origins. Normalizes the
/// claim and the path once, not once per origin.
#[must_use]
pub(crate) fn matches_any(origins: &[PublicOrigin], htu: &str, request_path: &str) -> bool {
    exact_match(origins, htu, request_path) || normalized_match(origins, htu, request_path)
}

/// The common case, without parsing: the claim is byte for byte an origin followed by the
/// request path, and that path is one normalization leaves as it is (no query or fragment, no
/// percent-encoding, no dot segment, only unreserved characters and `/`). Then both sides
/// normalize to themselves and [`normalized_match`] would say `true` too; anything else is
/// left to it.
fn exact_match(origins: &[PublicOrigin], htu: &str, request_path: &str) -> bool {
    let plain = request_path.starts_with('/')
        && htu.len() <= MAX_HTU_LEN
        && request_path.bytes().all(|b| b == b'/' || is_unreserved(b))
        && !request_path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    plain
        && origins.iter().any(|origin| {
            htu.strip_prefix(origin.as_str())
                .is_some_and(|rest| rest == request_path)
        })
}

/// Both sides normalized (RFC 3986 sections 6.2.2 and 6.2.3), then compared.
fn normalized_match(origins: &[PublicOrigin], htu: &str, request_path: &str) -> bool {
    let (Ok(htu), Ok(path)) = (normalize(htu), normalize_path(request_path)) else {
        return false;
    };
    // The normalized path always starts with '/', so the prefix ends exactly at the authority.
    origins
        .iter()
        .any(|origin| htu.strip_prefix(origin.as_str()) == Some(&*path))
}

#[cfg(test)]
#[path = "htu_properties.rs"]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        input: &'static str,
        expected: Result<&'static str, HtuError>,
    }

    use HtuError::*;

    #[rustfmt::skip]
    const NORMALIZE: &[Case] = &[
        Case { name: "rfc 9449 example", input: "https://resource.example.org/protectedresource", expected: Ok("https://resource.example.org/protectedresource") },
        Case { name: "uppercase scheme and host", input: "HTTPS://Resource.Example.ORG/Path", expected: Ok("https://resource.example.org/Path") },
        Case { name: "mixed-case scheme", input: "hTtP://a.example/x", expected: Ok("http://a.example/x") },
        Case { name: "http default port", input: "http://a.example:80/x", expected: Ok("http://a.example/x") },
        Case { name: "https default port", input: "https://a.example:443/x", expected: Ok("https://a.example/x") },
        Case { name: "https with port 80 kept", input: "https://a.example:80/x", expected: Ok("https://a.example:80/x") },
        Case { name: "non-default port kept", input: "https://a.example:8443/x", expected: Ok("https://a.example:8443/x") },
        Case { name: "leading-zero default port", input: "https://a.example:0443/x", expected: Ok("https://a.example/x") },
        Case { name: "leading-zero port", input: "http://a.example:008080/x", expected: Ok("http://a.example:8080/x") },
        Case { name: "empty port", input: "http://a.example:/x", expected: Ok("http://a.example/x") },
        Case { name: "port zero", input: "http://a.example:0/x", expected: Ok("http://a.example:0/x") },
        Case { name: "port zeros", input: "http://a.example:000/x", expected: Ok("http://a.example:0/x") },
        Case { name: "empty port and path", input: "http://a.example:", expected: Ok("http://a.example/") },
        Case { name: "empty path", input: "https://a.example", expected: Ok("https://a.example/") },
        Case { name: "query dropped", input: "https://a.example/x?y=1&z", expected: Ok("https://a.example/x") },
        Case { name: "fragment dropped", input: "https://a.example/x#f", expected: Ok("https://a.example/x") },
        Case { name: "question mark in fragment", input: "https://a.example/x#f?q", expected: Ok("https://a.example/x") },
        Case { name: "hash in query", input: "https://a.example/x?q#f", expected: Ok("https://a.example/x") },
        Case { name: "query without path", input: "https://a.example?q", expected: Ok("https://a.example/") },
        Case { name: "bad percent in query ignored", input: "https://a.example/x?%zz", expected: Ok("https://a.example/x") },
        Case { name: "tilde decoded", input: "https://a.example/%7euser", expected: Ok("https://a.example/~user") },
        Case { name: "unreserved decoded", input: "https://a.example/%41%2D%2e%5F%30", expected: Ok("https://a.example/A-._0") },
        Case { name: "slash stays encoded", input: "https://a.example/a%2fb", expected: Ok("https://a.example/a%2Fb") },
        Case { name: "reserved stay encoded", input: "https://a.example/%3a%40%25%252e", expected: Ok("https://a.example/%3A%40%25%252e") },
        Case { name: "lone percent", input: "https://a.example/%", expected: Err(InvalidPercentEncoding) },
        Case { name: "truncated percent", input: "https://a.example/%4", expected: Err(InvalidPercentEncoding) },
        Case { name: "non-hex percent", input: "https://a.example/%zz", expected: Err(InvalidPercentEncoding) },
        Case { name: "dot segments", input: "https://a.example/a/./b/../c", expected: Ok("https://a.example/a/c") },
        Case { name: "dot-dot at root", input: "https://a.example/..", expected: Ok("https://a.example/") },
        Case { name: "dot-dot above root", input: "https://a.example/../../a", expected: Ok("https://a.example/a") },
        Case { name: "trailing dot", input: "https://a.example/a/b/.", expected: Ok("https://a.example/a/b/") },
        Case { name: "encoded dot segments", input: "https://a.example/a/%2E%2e/b", expected: Ok("https://a.example/b") },
        Case { name: "dots inside segments kept", input: "https://a.example/a/..b/.c/...", expected: Ok("https://a.example/a/..b/.c/...") },
        Case { name: "empty segments kept", input: "https://a.example//a//", expected: Ok("https://a.example//a//") },
        Case { name: "path case preserved", input: "https://a.example/API", expected: Ok("https://a.example/API") },
        Case { name: "ipv6 host", input: "https://[::1]:8080/x", expected: Ok("https://[::1]:8080/x") },
        Case { name: "ipv6 lowercased, default port", input: "https://[FE80::A]:443", expected: Ok("https://[fe80::a]/") },
        Case { name: "ipv6 invalid", input: "https://[::g]/", expected: Err(InvalidAuthority) },
        Case { name: "ipv6 unclosed", input: "https://[::1/x", expected: Err(InvalidAuthority) },
        Case { name: "ipv6 zone id", input: "https://[fe80::1%25eth0]/", expected: Err(InvalidAuthority) },
        Case { name: "ipv6 junk after bracket", input: "https://[::1]x/", expected: Err(InvalidAuthority) },
        Case { name: "ipv4 host", input: "http://127.0.0.1:8080/", expected: Ok("http://127.0.0.1:8080/") },
        Case { name: "userinfo", input: "https://user@a.example/", expected: Err(UserinfoNotAllowed) },
        Case { name: "userinfo with password", input: "https://u:p@a.example/", expected: Err(UserinfoNotAllowed) },
        Case { name: "at sign in path", input: "https://a.example/@me", expected: Ok("https://a.example/@me") },
        Case { name: "relative path", input: "/protectedresource", expected: Err(NotAbsolute) },
        Case { name: "no scheme", input: "a.example/x", expected: Err(NotAbsolute) },
        Case { name: "scheme-relative", input: "//a.example/x", expected: Err(NotAbsolute) },
        Case { name: "empty", input: "", expected: Err(NotAbsolute) },
        Case { name: "ftp", input: "ftp://a.example/", expected: Err(UnsupportedScheme) },
        Case { name: "lookalike scheme", input: "httpss://a.example/", expected: Err(UnsupportedScheme) },
        Case { name: "scheme with a bad character", input: "h_tp://a.example/", expected: Err(NotAbsolute) },
        Case { name: "scheme starting with a digit", input: "1http://a.example/", expected: Err(NotAbsolute) },
        Case { name: "no authority", input: "https:/a/x", expected: Err(InvalidAuthority) },
        Case { name: "empty host", input: "https:///x", expected: Err(InvalidAuthority) },
        Case { name: "empty host with port", input: "https://:443/x", expected: Err(InvalidAuthority) },
        Case { name: "sub-delim in host", input: "https://a!b.example/", expected: Err(InvalidAuthority) },
        Case { name: "percent in host", input: "https://a%41.example/", expected: Err(InvalidAuthority) },
        Case { name: "non-numeric port", input: "https://a.example:8o/", expected: Err(InvalidPort) },
        Case { name: "signed port", input: "https://a.example:+80/", expected: Err(InvalidPort) },
        Case { name: "port too large", input: "https://a.example:65536/", expected: Err(InvalidPort) },
        Case { name: "two ports", input: "https://a.example:1:2/", expected: Err(InvalidPort) },
        Case { name: "non-ascii host", input: "https://ex\u{e4}mple.org/", expected: Err(InvalidCharacter) },
        Case { name: "non-ascii path", input: "https://a.example/\u{e4}", expected: Err(InvalidCharacter) },
        Case { name: "space in path", input: "https://a.example/a b", expected: Err(InvalidCharacter) },
        Case { name: "space in query", input: "https://a.example/a?b c", expected: Err(InvalidCharacter) },
        Case { name: "control character", input: "https://a.example/\t", expected: Err(InvalidCharacter) },
    ];

    #[rustfmt::skip]
    const PATHS: &[Case] = &[
        Case { name: "root", input: "/", expected: Ok("/") },
        Case { name: "empty", input: "", expected: Ok("/") },
        Case { name: "query dropped", input: "/a?b=%zz", expected: Ok("/a") },
        Case { name: "only query", input: "?x", expected: Ok("/") },
        Case { name: "dot segments refused", input: "/a/%7Eb/../c", expected: Err(DotSegments) },
        Case { name: "encoded dot segments refused", input: "/a/%2E/c", expected: Err(DotSegments) },
        Case { name: "unreserved decoded", input: "/a/%7Eb/c", expected: Ok("/a/~b/c") },
        Case { name: "reserved uppercased", input: "/a%2fb", expected: Ok("/a%2Fb") },
        Case { name: "case preserved", input: "/API", expected: Ok("/API") },
        Case { name: "malformed percent", input: "/%g0", expected: Err(InvalidPercentEncoding) },
        Case { name: "not origin-form", input: "a/b", expected: Err(NotAbsolute) },
        Case { name: "absolute-form", input: "http://a/b", expected: Err(NotAbsolute) },
        Case { name: "space", input: "/a b", expected: Err(InvalidCharacter) },
    ];

    #[rustfmt::skip]
    const ORIGINS: &[Case] = &[
        Case { name: "uppercase host", input: "https://API.example.com", expected: Ok("https://api.example.com") },
        Case { name: "trailing slash", input: "https://a.example/", expected: Ok("https://a.example") },
        Case { name: "default port", input: "HTTP://a.example:80", expected: Ok("http://a.example") },
        Case { name: "port kept", input: "https://a.example:8443/", expected: Ok("https://a.example:8443") },
        Case { name: "path", input: "https://a.example/api", expected: Err(NotAnOrigin) },
        Case { name: "dot path", input: "https://a.example/.", expected: Err(NotAnOrigin) },
        Case { name: "query", input: "https://a.example/?x", expected: Err(NotAnOrigin) },
        Case { name: "fragment", input: "https://a.example#x", expected: Err(NotAnOrigin) },
        Case { name: "userinfo", input: "https://u@a.example", expected: Err(UserinfoNotAllowed) },
        Case { name: "relative", input: "a.example", expected: Err(NotAbsolute) },
    ];

    fn check(cases: &[Case], f: impl Fn(&str) -> Result<String, HtuError>) {
        for case in cases {
            let got = f(case.input);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn normalize_cases() {
        check(NORMALIZE, |s| normalize(s).map(Cow::into_owned));
        // Idempotent, and normal output comes back borrowed.
        for n in NORMALIZE.iter().filter_map(|c| c.expected.ok()) {
            assert!(
                matches!(normalize(n), Ok(Cow::Borrowed(m)) if m == n),
                "{n}"
            );
        }
    }

    #[test]
    fn normalize_path_cases() {
        check(PATHS, |s| normalize_path(s).map(Cow::into_owned));
    }

    #[test]
    fn origin_cases() {
        check(ORIGINS, |s| {
            let origin: PublicOrigin = s.parse()?;
            assert_eq!(origin.to_string(), origin.as_str());
            Ok(origin.as_str().to_owned())
        });
    }

    #[test]
    fn borrowed_when_already_normal() {
        let uri = "http://[::1]:8080/a%2Fb/c.d";
        assert!(matches!(normalize(uri), Ok(Cow::Borrowed(u)) if u == uri));
        assert!(matches!(
            normalize("https://a.example/x?q"),
            Ok(Cow::Owned(_))
        ));
        let path = normalize_path("/a/b%2F?q");
        assert!(matches!(path, Ok(Cow::Borrowed("/a/b%2F"))));
    }

    #[test]
    fn length_limit() {
        let at_limit = format!("https://a.example/{}", "a".repeat(MAX_HTU_LEN - 18));
        assert_eq!(normalize(&at_limit).map(|n| n.len()), Ok(MAX_HTU_LEN));
        assert_eq!(normalize(&format!("{at_limit}a")), Err(TooLong));
        assert_eq!(normalize_path(&" ".repeat(MAX_HTU_LEN + 1)), Err(TooLong));
        assert_eq!(PublicOrigin::parse(&format!("{at_limit}a")), Err(TooLong));
    }

    #[test]
    fn error_messages() {
        assert_eq!(NotAbsolute.to_string(), "htu is not an absolute URI");
        assert_eq!(InvalidPort.to_string(), "htu has an invalid port");
    }

    #[test]
    fn matching() {
        const ONE: &[&str] = &["https://api.example.com"];
        const TWO: &[&str] = &["https://api.example.com", "http://localhost:8080/"];
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], &str, &str, bool)] = &[
            ("exact", ONE, "https://api.example.com/me", "/me", true),
            ("equivalent spellings", ONE, "HTTPS://API.Example.COM:0443/a/./%7eb?x#y", "/a/%7E%62", true),
            ("encoded slash on both", ONE, "https://api.example.com/a%2fb", "/a%2Fb", true),
            ("request path normalized", ONE, "https://api.example.com/a/%7Ec", "/a/~c?q=1", true),
            ("request path with dot segments", ONE, "https://api.example.com/a/c", "/a/b/../c", false),
            ("empty htu path", ONE, "https://api.example.com", "/", true),
            ("other path", ONE, "https://api.example.com/you", "/me", false),
            ("other host", ONE, "https://evil.example.com/me", "/me", false),
            ("host suffix", ONE, "https://api.example.com.evil/me", "/me", false),
            ("other port", ONE, "https://api.example.com:8443/me", "/me", false),
            ("http vs https", ONE, "http://api.example.com/me", "/me", false),
            ("path prefix", ONE, "https://api.example.com/api/me", "/api/me2", false),
            ("path extension", ONE, "https://api.example.com/api/me2", "/api/me", false),
            ("trailing slash", ONE, "https://api.example.com/api", "/api/", false),
            ("path case", ONE, "https://api.example.com/API", "/api", false),
            ("encoded slash vs slash", ONE, "https://api.example.com/a%2Fb", "/a/b", false),
            ("invalid htu", ONE, "https://api.example.com/%zz", "/%zz", false),
            ("invalid request path", ONE, "https://api.example.com/me", "me", false),
            ("relative htu", ONE, "/me", "/me", false),
            ("userinfo htu", ONE, "https://u@api.example.com/me", "/me", false),
            ("first of two origins", TWO, "https://api.example.com/me", "/me", true),
            ("second of two origins", TWO, "http://LOCALHOST:8080/me", "/me", true),
            ("neither of two origins", TWO, "http://localhost/me", "/me", false),
            ("no origins", &[], "https://api.example.com/me", "/me", false),
        ];
        for &(name, origins, htu, path, expected) in cases {
            let origins: Vec<PublicOrigin> =
                origins.iter().filter_map(|o| o.parse().ok()).collect();
            assert_eq!(matches_any(&origins, htu, path), expected, "{name}");
            let any_single = origins.iter().any(|o| o.matches(htu, path));
            assert_eq!(any_single, expected, "{name} (PublicOrigin::matches)");
        }
    }
    /// The shortcut never says `true` where the full normalization says `false`, and says
    /// `true` for the usual request.
    #[test]
    fn exact_match_implies_normalized_match() {
        use proptest::prelude::*;
        let origins = [
            PublicOrigin::parse("https://api.example.com").unwrap(),
            PublicOrigin::parse("http://[::1]:8080").unwrap(),
        ];
        assert!(exact_match(
            &origins,
            "https://api.example.com/a/b.json",
            "/a/b.json"
        ));
        assert!(exact_match(&origins, "http://[::1]:8080/", "/"));
        for (htu, path) in [
            ("https://api.example.com/a/./b", "/a/./b"),
            ("https://api.example.com/a/..", "/a/.."),
            ("https://api.example.com/%7Ea", "/%7Ea"),
            ("https://api.example.com/a", "/a?x"),
            ("https://api.example.com/a?x", "/a?x"),
            ("https://api.example.com", ""),
            ("https://API.example.com/a", "/a"),
        ] {
            assert!(!exact_match(&origins, htu, path), "{htu} {path}");
        }
        proptest!(ProptestConfig::with_cases(4000), |(
            origin in prop::sample::select(vec![
                "https://api.example.com", "http://[::1]:8080", "https://API.example.com",
                "https://api.example.com:443", "https://api.example.com:8443", "https://api.example.com/",
            ]),
            path in "/[a-zA-Z0-9._~%/?#:@!$&'()*+,;= -]{0,10}",
            edit in "[./%?#a-zA-Z~]{0,2}",
        )| {
            for htu in [format!("{origin}{path}"), format!("{origin}{path}{edit}")] {
                for request in [path.clone(), format!("{path}{edit}")] {
                    if exact_match(&origins, &htu, &request) {
                        prop_assert!(normalized_match(&origins, &htu, &request), "{htu} {request}");
                    }
                }
            }
        });
    }
}
