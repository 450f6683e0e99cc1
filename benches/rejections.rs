//! What a rejected request costs, beside a warm valid one (a returning client: its key and
//! token cached, a fresh proof): each forged request is new (a new token, a new proof), as an
//! attacker would send it, so no cache helps the server. The cases:
//!
//! - `garbage_unsigned`: a random token and a proof whose signature is random bytes;
//! - `kidless_forged`: a well-formed token without `kid` (right `iss`, `aud`, `exp`, bound to
//!   the attacker's key) with a forged signature, and a proof the attacker really signed;
//! - `unknown_kid_forged`: the same with a `kid` the key set does not have;
//! - `stolen_forged_proof`: a victim's valid (cached) token with a proof that names the
//!   victim's key but is not signed by it.
//!
//! The authorization server and the clients use ES256; the key set is given in code (with a
//! JWKS URL, an unknown `kid` is refused at once while no fetch may start, and otherwise only
//! after the proof's signature verified). The per-key replay quota is lifted so that one
//! client can send the whole run.
//!
//! `cargo bench --bench rejections` runs criterion on each case, then prints paired rounds
//! (n requests of a case, then n warm valid ones, alternating): the ratios to read; the target
//! is at most 1.2 for every case.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{BatchSize, Criterion};
use http::{HeaderMap, Method};
use serde_json::json;
use tower_dpop::testing::{dpop_headers, random_id, unix_now, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopLayer, Error};

const URL: &str = "https://api.example.com/r";
const ROUNDS: usize = 31;
const N: usize = 100;

struct Setup {
    layer: DpopLayer,
    issuer: TestIssuer,
    victim: ClientKey,
    victim_token: String,
    attacker: ClientKey,
    rt: tokio::runtime::Runtime,
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The base64url of `len` random bytes: a signature no key made.
fn random_sig(len: usize) -> String {
    random_id(len)
}

impl Setup {
    fn new() -> Self {
        let issuer = TestIssuer::new();
        let layer = DpopLayer::builder()
            .public_origin("https://api.example.com")
            .token_validator(issuer.validator())
            .replay_key_quota(u64::MAX)
            .build()
            .unwrap();
        let victim = ClientKey::generate(Algorithm::ES256);
        let victim_token = issuer.token_for(victim.jkt(), unix_now() + 3600);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let setup = Self {
            layer,
            issuer,
            victim,
            victim_token,
            attacker: ClientKey::generate(Algorithm::ES256),
            rt,
        };
        // Warm: the victim's key and token are cached.
        assert_eq!(setup.send(&setup.warm_valid()), Ok(()));
        setup
    }

    fn send(&self, headers: &HeaderMap) -> Result<(), Error> {
        self.rt
            .block_on(self.layer.authenticate(&tower_dpop::testing::request_parts(
                &Method::GET,
                "/r",
                headers,
            )))
            .map(|_| ())
    }

    fn warm_valid(&self) -> HeaderMap {
        let proof = self
            .victim
            .proof("GET", URL)
            .access_token(&self.victim_token)
            .sign();
        dpop_headers(&self.victim_token, &proof)
    }

    fn garbage_unsigned(&self) -> HeaderMap {
        let token = format!("{}.{}.{}", random_id(40), random_id(200), random_id(64));
        let proof = self.attacker.proof("GET", URL).access_token(&token).sign();
        let (input, _) = proof.rsplit_once('.').unwrap();
        dpop_headers(&token, &format!("{input}.{}", random_sig(64)))
    }

    /// A token that passes every check but its signature, bound to the attacker's key, and a
    /// proof the attacker signed.
    fn forged_token(&self, kid: Option<&str>) -> HeaderMap {
        let mut header = json!({ "typ": "at+jwt", "alg": "ES256" });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let now = unix_now();
        let claims = json!({
            "iss": self.issuer.issuer(), "aud": self.issuer.audience(), "sub": "mallory",
            "client_id": "demo-client", "iat": now, "exp": now + 3600, "jti": random_id(12),
            "cnf": { "jkt": self.attacker.jkt() },
        });
        let token = format!("{}.{}.{}", b64(&header), b64(&claims), random_sig(64));
        let proof = self.attacker.proof("GET", URL).access_token(&token).sign();
        dpop_headers(&token, &proof)
    }

    fn stolen_forged_proof(&self) -> HeaderMap {
        let proof = self
            .attacker
            .proof("GET", URL)
            .access_token(&self.victim_token)
            .header("jwk", self.victim.public_jwk().clone())
            .sign();
        let (input, _) = proof.rsplit_once('.').unwrap();
        dpop_headers(&self.victim_token, &format!("{input}.{}", random_sig(64)))
    }
}

type Make = fn(&Setup) -> HeaderMap;

const CASES: [(&str, Make, &str); 4] = [
    ("garbage_unsigned", Setup::garbage_unsigned, "access token"),
    ("kidless_forged", |s| s.forged_token(None), "signature"),
    (
        "unknown_kid_forged",
        |s| s.forged_token(Some("not-in-the-set")),
        "signature",
    ),
    (
        "stolen_forged_proof",
        Setup::stolen_forged_proof,
        "proof signature is invalid",
    ),
];

/// Mean time per request of `requests`, each expected to be rejected (`Err`) or accepted.
fn time(setup: &Setup, requests: &[HeaderMap], accepted: bool) -> f64 {
    let start = Instant::now();
    for h in requests {
        let r = setup.send(black_box(h));
        assert_eq!(r.is_ok(), accepted, "{r:?}");
    }
    start.elapsed().as_nanos() as f64 / requests.len() as f64
}

fn main() {
    let setup = Setup::new();
    // Each case is refused for the reason it is meant to exercise.
    for (name, make, reason) in CASES {
        let err = setup.send(&make(&setup)).unwrap_err();
        assert!(err.description().contains(reason), "{name}: {err}");
    }

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let mut group = c.benchmark_group("rejection");
    group.bench_function("warm_valid", |b| {
        b.iter_batched(
            || setup.warm_valid(),
            |h| assert!(setup.send(&h).is_ok()),
            BatchSize::SmallInput,
        )
    });
    for (name, make, _) in CASES {
        group.bench_function(name, |b| {
            b.iter_batched(
                || make(&setup),
                |h| assert!(setup.send(&h).is_err()),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    c.final_summary();

    println!();
    println!(
        "Paired rounds ({ROUNDS} × {N} requests of a case, then {N} warm valid requests), medians:"
    );
    println!();
    println!("| request | µs | warm valid µs | ratio |");
    println!("|---|---|---|---|");
    for (name, make, _) in CASES {
        let (mut case_us, mut warm_us, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=ROUNDS {
            let attack: Vec<HeaderMap> = (0..N).map(|_| make(&setup)).collect();
            let valid: Vec<HeaderMap> = (0..N).map(|_| setup.warm_valid()).collect();
            let a = time(&setup, &attack, false);
            let w = time(&setup, &valid, true);
            if round > 0 {
                case_us.push(a / 1000.0);
                warm_us.push(w / 1000.0);
                ratios.push(a / w);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} |",
            median(&mut case_us),
            median(&mut warm_us),
            median(&mut ratios)
        );
    }
}
