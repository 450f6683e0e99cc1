//! The `use_dpop_nonce` challenge of a resource server: `WWW-Authenticate` parsed as RFC 9110
//! section 11.6.1 says, bounded in size.

use http::{HeaderMap, HeaderValue, StatusCode};

/// The longest `WWW-Authenticate` field value read for a challenge, in bytes.
const MAX_CHALLENGE_LEN: usize = 4096;

/// Whether a resource server's response is the `use_dpop_nonce` challenge: 401 with a
/// `WWW-Authenticate` `DPoP` challenge whose `error` is `use_dpop_nonce`.
#[must_use]
pub fn is_use_dpop_nonce(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        && headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(challenge_asks_for_nonce)
}

fn challenge_asks_for_nonce(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_CHALLENGE_LEN {
        return false;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut in_dpop = false;
    for item in Challenges::new(text) {
        match item {
            Item::Scheme(s) => in_dpop = s.eq_ignore_ascii_case("DPoP"),
            Item::Param(name, value) => {
                if in_dpop && name.eq_ignore_ascii_case("error") && value == "use_dpop_nonce" {
                    return true;
                }
            }
        }
    }
    false
}

/// The schemes and parameters of a `WWW-Authenticate` value (RFC 9110 section 11.6.1).
/// Token68 credentials and anything malformed end the walk.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Scheme(&'a str),
    Param(&'a str, String),
}

struct Challenges<'a> {
    rest: &'a str,
}

impl<'a> Challenges<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }

    fn skip_separators(&mut self) {
        self.rest = self.rest.trim_start_matches([',', ' ', '\t']);
    }

    fn token(&mut self) -> Option<&'a str> {
        let end = self
            .rest
            .find(|c: char| !is_tchar(c))
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at_checked(end)?;
        self.rest = rest;
        (!token.is_empty()).then_some(token)
    }

    fn value(&mut self) -> Option<String> {
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = quoted.get(i + 1..)?;
                        return Some(out);
                    }
                    '\\' => out.push(chars.next()?.1),
                    c => out.push(c),
                }
            }
            None
        } else {
            self.token().map(str::to_owned)
        }
    }
}

impl<'a> Iterator for Challenges<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        self.skip_separators();
        let token = self.token()?;
        let after = self.rest.trim_start_matches([' ', '\t']);
        if let Some(value) = after.strip_prefix('=') {
            self.rest = value.trim_start_matches([' ', '\t']);
            let value = self.value()?;
            Some(Item::Param(token, value))
        } else {
            Some(Item::Scheme(token))
        }
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    /// Only a `DPoP` challenge with `error="use_dpop_nonce"` on a 401 asks for a nonce.
    #[test]
    fn use_dpop_nonce_table() {
        let cases: &[(&str, StatusCode, &str, bool)] = &[
            (
                "quoted",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="use_dpop_nonce", error_description="x""#,
                true,
            ),
            (
                "token form",
                StatusCode::UNAUTHORIZED,
                "DPoP error=use_dpop_nonce",
                true,
            ),
            (
                "second challenge",
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="a", DPoP algs="ES256", error="use_dpop_nonce""#,
                true,
            ),
            (
                "lower-case scheme",
                StatusCode::UNAUTHORIZED,
                r#"dpop error="use_dpop_nonce""#,
                true,
            ),
            (
                "other error",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="invalid_token""#,
                false,
            ),
            (
                "bearer's error",
                StatusCode::UNAUTHORIZED,
                r#"Bearer error="use_dpop_nonce", DPoP algs="ES256""#,
                false,
            ),
            (
                "in a description",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error_description="error=use_dpop_nonce""#,
                false,
            ),
            (
                "not 401",
                StatusCode::BAD_REQUEST,
                r#"DPoP error="use_dpop_nonce""#,
                false,
            ),
            (
                "unterminated",
                StatusCode::UNAUTHORIZED,
                r#"DPoP error="use_dpop_nonce"#,
                false,
            ),
        ];
        for (name, status, value, expected) in cases {
            assert_eq!(
                is_use_dpop_nonce(*status, &challenge(value)),
                *expected,
                "{name}"
            );
        }
    }
}
