//! Property tests of `htu` normalization and matching: idempotence, equivalent spellings,
//! request path and `htu` agreeing, and any changed path character telling them apart. At most
//! 256 cases each, so the run stays fast in a debug build.

use proptest::prelude::*;

use super::{matches_any, normalize, normalize_path, PublicOrigin};

const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/api/me";
const PATH: &str = "/api/me";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- URI generators ---------------------------------------------------------------------

const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
/// Characters that are legal literally in a path but not unreserved (sub-delims, ':' and '@').
const LITERAL_RESERVED: &[u8] = b"!$&'()*+,;=:@";
/// Bytes that must stay percent-encoded (reserved, '%', and a few non-ASCII / control bytes).
const ENCODED_ONLY: &[u8] = b"/?#[]!$&'()*+,;=:@% \"<>\\^`{|}\x00\x7f\x80\xff";

/// One character of a path: its canonical spelling and a random equivalent spelling.
#[derive(Debug, Clone)]
struct Atom {
    canonical: String,
    variant: String,
}

fn pct(b: u8, lower: bool) -> String {
    if lower {
        format!("%{b:02x}")
    } else {
        format!("%{b:02X}")
    }
}

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        // Unreserved: canonical is the literal; variant is literal or %XX in either case.
        (prop::sample::select(UNRESERVED), 0..3u8).prop_map(|(b, how)| Atom {
            canonical: char::from(b).to_string(),
            variant: match how {
                0 => char::from(b).to_string(),
                1 => pct(b, false),
                _ => pct(b, true),
            },
        }),
        // Reserved literal: stays as written.
        prop::sample::select(LITERAL_RESERVED).prop_map(|b| Atom {
            canonical: char::from(b).to_string(),
            variant: char::from(b).to_string(),
        }),
        // Encoded: canonical is uppercase hex; variant has random hex case.
        (prop::sample::select(ENCODED_ONLY), any::<bool>()).prop_map(|(b, lower)| Atom {
            canonical: pct(b, false),
            variant: pct(b, lower),
        }),
    ]
}

type Segment = Vec<Atom>;

fn segment() -> impl Strategy<Value = Segment> {
    prop::collection::vec(atom(), 0..6)
}

/// A segment that is not `.` or `..` once decoded.
fn is_dot_segment(seg: &Segment) -> bool {
    let decoded: String = seg.iter().map(|a| a.canonical.as_str()).collect();
    decoded == "." || decoded == ".."
}

fn join(segments: &[Segment], variant: bool) -> String {
    let mut out = String::new();
    for seg in segments {
        out.push('/');
        for a in seg {
            out.push_str(if variant { &a.variant } else { &a.canonical });
        }
    }
    out
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]{1,6}){0,3}",
        1 => Just("127.0.0.1".to_owned()),
        1 => Just("[::1]".to_owned()),
        1 => Just("[fe80::a:b]".to_owned()),
    ]
}

/// Query and/or fragment, or nothing.
fn suffix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\?[a-zA-Z0-9=&%/?:@._~-]{0,12}",
        "#[a-zA-Z0-9=&%/?:@._~-]{0,12}",
        "\\?[a-z0-9=&]{0,6}#[a-z0-9?]{0,6}",
    ]
}

#[derive(Debug, Clone)]
struct Uri {
    https: bool,
    host: String,
    /// Non-default port, if any.
    port: Option<u16>,
    segments: Vec<Segment>,
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        any::<bool>(),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(segment(), 0..5),
    )
        .prop_map(|(https, host, port, segments)| {
            let default = if https { 443 } else { 80 };
            Uri {
                https,
                host,
                port: port.filter(|&p| p != default),
                segments,
            }
        })
}

impl Uri {
    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    /// The canonical spelling (what `normalize` should produce when there are no dot segments).
    fn canonical(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let path = join(&self.segments, false);
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        format!("{}://{}{port}{path}", self.scheme(), self.host)
    }

    /// An equivalent spelling chosen by `how`.
    fn variant(&self, how: &Spelling) -> String {
        let scheme = random_case(self.scheme(), how.scheme_case);
        let host = random_case(&self.host, how.host_case);
        let port = match self.port {
            Some(p) => format!(":{}{p}", "0".repeat(how.zeros)),
            None => match how.default_port {
                0 => String::new(),
                1 => ":".to_owned(),
                2 => format!(":{}", self.default_port()),
                _ => format!(":{}{}", "0".repeat(how.zeros), self.default_port()),
            },
        };
        let path = join(&self.segments, true);
        format!("{scheme}://{host}{port}{path}{}", how.suffix)
    }
}

#[derive(Debug, Clone)]
struct Spelling {
    scheme_case: u64,
    host_case: u64,
    default_port: u8,
    zeros: usize,
    suffix: String,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (any::<u64>(), any::<u64>(), 0..4u8, 0..3usize, suffix()).prop_map(
        |(scheme_case, host_case, default_port, zeros, suffix)| Spelling {
            scheme_case,
            host_case,
            default_port,
            zeros,
            suffix,
        },
    )
}

/// Raw URI-ish text: random mixes of URI syntax characters, to reach error paths.
fn uri_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("http://".to_owned()),
            Just("HTTPS://".to_owned()),
            Just("%".to_owned()),
            Just("%2e".to_owned()),
            Just("%2F".to_owned()),
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            "[a-zA-Z0-9]{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

// ---- htu ----------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn normalize_is_idempotent_on_generated_uris(u in uri(), how in spelling()) {
        for input in [u.canonical(), u.variant(&how)] {
            let once = normalize(&input).map(|c| c.into_owned());
            prop_assert!(once.is_ok(), "{input:?} rejected: {once:?}");
            let once = once.unwrap();
            let twice = normalize(&once).map(|c| c.into_owned());
            prop_assert_eq!(twice.as_ref(), Ok(&once), "input {:?}", input);
        }
    }

    #[test]
    fn normalize_is_idempotent_and_total_on_arbitrary_strings(
        s in prop_oneof![any::<String>(), uri_soup()],
    ) {
        if let Ok(once) = normalize(&s) {
            let once = once.into_owned();
            prop_assert_eq!(normalize(&once).map(|c| c.into_owned()), Ok(once.clone()));
            // A normalized htu is itself a valid origin + path.
            prop_assert!(once.starts_with("http://") || once.starts_with("https://"));
        }
        if let Ok(path) = normalize_path(&s) {
            let path = path.into_owned();
            prop_assert!(path.starts_with('/'));
            prop_assert_eq!(normalize_path(&path).map(|c| c.into_owned()), Ok(path.clone()));
        }
        if let Ok(origin) = PublicOrigin::parse(&s) {
            let again = PublicOrigin::parse(origin.as_str());
            prop_assert_eq!(again.as_ref().map(PublicOrigin::as_str), Ok(origin.as_str()));
        }
        let origins: Vec<PublicOrigin> = [ORIGIN, "http://localhost:8080"]
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        let _ = matches_any(&origins, &s, &s);
        let _ = matches_any(&origins, &s, PATH);
        let _ = matches_any(&origins, URL, &s);
    }

    #[test]
    fn equivalent_spellings_normalize_equal(u in uri(), a in spelling(), b in spelling()) {
        let canonical = normalize(&u.canonical()).map(|c| c.into_owned());
        let va = normalize(&u.variant(&a)).map(|c| c.into_owned());
        let vb = normalize(&u.variant(&b)).map(|c| c.into_owned());
        prop_assert!(canonical.is_ok());
        prop_assert_eq!(&va, &canonical, "variant {:?}", u.variant(&a));
        prop_assert_eq!(&vb, &canonical, "variant {:?}", u.variant(&b));
        if !u.segments.is_empty() && !u.segments.iter().any(is_dot_segment) {
            // Without dot segments the canonical spelling is already the normal form.
            prop_assert_eq!(canonical, Ok(u.canonical()));
        }
    }

    #[test]
    fn request_path_and_htu_agree(u in uri(), how in spelling(), path_how in spelling()) {
        prop_assume!(!u.segments.iter().any(is_dot_segment));
        let origin: PublicOrigin = format!(
            "{}://{}{}",
            u.scheme(),
            u.host,
            u.port.map(|p| format!(":{p}")).unwrap_or_default()
        )
        .parse()
        .unwrap();
        let path = format!("{}{}", join(&u.segments, true), path_how.suffix);
        prop_assert!(
            matches_any(std::slice::from_ref(&origin), &u.variant(&how), &path),
            "htu {:?} vs path {:?} under {}", u.variant(&how), path, origin
        );
    }

    #[test]
    fn a_changed_path_character_normalizes_different(
        u in uri(),
        how in spelling(),
        pick in any::<prop::sample::Index>(),
        replacement in prop::sample::select(&b"abcXYZ019-_~"[..]),
    ) {
        prop_assume!(!u.segments.iter().any(is_dot_segment));
        let atoms: usize = u.segments.iter().map(Vec::len).sum();
        prop_assume!(atoms > 0);
        let mut target = pick.index(atoms);
        let mut changed = u.clone();
        'outer: for seg in &mut changed.segments {
            for a in seg.iter_mut() {
                if target == 0 {
                    let new = char::from(replacement).to_string();
                    prop_assume!(a.canonical != new);
                    a.canonical.clone_from(&new);
                    a.variant = new;
                    break 'outer;
                }
                target -= 1;
            }
        }
        prop_assume!(!changed.segments.iter().any(is_dot_segment));
        let before = normalize(&u.variant(&how)).map(|c| c.into_owned());
        let after = normalize(&changed.variant(&how)).map(|c| c.into_owned());
        prop_assert!(before.is_ok() && after.is_ok());
        prop_assert_ne!(before, after);
    }
}
