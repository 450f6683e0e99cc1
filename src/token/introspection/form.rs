//! `application/x-www-form-urlencoded`, for the introspection request and the client
//! credentials of HTTP Basic authentication (RFC 6749 section 2.3.1).

/// `application/x-www-form-urlencoded` encoding of one name or value (the URL standard's
/// serializer: `*-._` and alphanumerics kept, space as `+`, everything else `%XX`).
pub(super) fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0x0f));
            }
        }
    }
    out
}

/// The uppercase hex digit of a nibble (`0..16`).
fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).map_or('0', |c| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_urlencode("aZ09*-._"), "aZ09*-._");
        assert_eq!(form_urlencode("a b+c/d=e&f%"), "a+b%2Bc%2Fd%3De%26f%25");
        assert_eq!(form_urlencode("é:~"), "%C3%A9%3A%7E");
    }
}
