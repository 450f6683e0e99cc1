//! The cost of validating a new JWT access token (`validate_offline` on a token never seen,
//! key set held) beside the floor: one raw `VerifyingKey::verify` of the same signature, with
//! the key already imported. Each key is imported once, when the set loads, so the difference
//! is the token's cheap checks (size, form, header, claims, key lookup); the target is a ratio
//! of at most 1.2.
//!
//! `cargo bench --bench token` runs the criterion benches and ends with two tables: ratios
//! from criterion's medians, and paired rounds (new tokens, then floor verifies, alternating),
//! the one to read on a machine whose speed drifts.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion};
use serde_json::json;
use tower_dpop::__private;
use tower_dpop::testing::{random_id, ClientKey};
use tower_dpop::token::jwt::JwtValidator;
use tower_dpop::token::TokenValidator;
use tower_dpop::Algorithm;

const ALGS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];
const ISS: &str = "https://as.example.com";
const AUD: &str = "https://api.example.com";
/// Distinct tokens per algorithm, used in turn.
const POOL: usize = 512;
const ROUNDS: usize = 51;

struct Case {
    alg: Algorithm,
    validator: JwtValidator,
    tokens: Vec<String>,
    key: __private::Key,
}

impl Case {
    fn new(alg: Algorithm) -> Self {
        let signer = ClientKey::generate(alg);
        let mut jwk = signer.public_jwk().clone();
        jwk["kid"] = json!("as-1");
        jwk["alg"] = json!(alg.as_str());
        jwk["use"] = json!("sig");
        let validator = JwtValidator::builder()
            .jwks_json(&json!({ "keys": [jwk] }).to_string())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        let header = URL_SAFE_NO_PAD
            .encode(json!({"typ": "at+jwt", "alg": alg.as_str(), "kid": "as-1"}).to_string());
        // An RFC 9068 token of the usual size: the claims an authorization server puts in.
        let tokens = (0..POOL)
            .map(|_| {
                let claims = json!({
                    "iss": ISS, "aud": AUD, "sub": "alice", "client_id": "demo-client",
                    "scope": "read write", "iat": 1_800_000_000u64, "exp": 1_800_003_600u64,
                    "jti": random_id(16), "cnf": {"jkt": random_id(32)},
                });
                let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
                let sig = URL_SAFE_NO_PAD.encode(signer.sign_raw(input.as_bytes()));
                format!("{input}.{sig}")
            })
            .collect();
        let key =
            __private::import(alg, &__private::Jwk::new(&signer.public_jwk().to_string())).unwrap();
        Self {
            alg,
            validator,
            tokens,
            key,
        }
    }

    /// The signing input and the signature of token `i`.
    fn parts(&self, i: usize) -> (Vec<u8>, Vec<u8>) {
        let (input, sig) = self.tokens[i].rsplit_once('.').unwrap();
        (
            input.as_bytes().to_vec(),
            URL_SAFE_NO_PAD.decode(sig).unwrap(),
        )
    }
}

fn bench(c: &mut Criterion, case: &Case) {
    let mut next = 0usize;
    c.benchmark_group("token_new")
        .bench_function(BenchmarkId::from_parameter(case.alg), |b| {
            b.iter(|| {
                let token = &case.tokens[next % POOL];
                next += 1;
                let answer = case.validator.validate_offline(black_box(token));
                assert!(matches!(answer, Some(Ok(_))));
            })
        });
    let (msg, sig) = case.parts(0);
    c.benchmark_group("token_floor")
        .bench_function(BenchmarkId::from_parameter(case.alg), |b| {
            b.iter(|| assert!(case.key.verify(black_box(&msg), black_box(&sig))))
        });
}

/// Rounds of `n` new-token validations alternating with `n` floor verifies; the medians and
/// the median of the per-round ratios.
fn paired(case: &Case) -> (f64, f64, f64) {
    let n = if case.alg == Algorithm::EdDSA {
        400
    } else {
        100
    };
    let (msg, sig) = case.parts(0);
    let mut next = 0usize;
    let mut tokens = |count: usize| {
        let start = Instant::now();
        for _ in 0..count {
            let answer = case
                .validator
                .validate_offline(black_box(&case.tokens[next % POOL]));
            assert!(matches!(answer, Some(Ok(_))));
            next += 1;
        }
        start.elapsed().as_nanos() as f64 / count as f64
    };
    let floor = |count: usize| {
        let start = Instant::now();
        for _ in 0..count {
            assert!(case.key.verify(black_box(&msg), black_box(&sig)));
        }
        start.elapsed().as_nanos() as f64 / count as f64
    };
    tokens(n);
    floor(n);
    let (mut t, mut f, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let a = tokens(n);
        let b = floor(n);
        t.push(a);
        f.push(b);
        r.push(a / b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut t), median(&mut f), median(&mut r))
}

/// Criterion's median (ns) of a benchmark this process ran.
fn estimate(group: &str, id: &str, since: std::time::SystemTime) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let started = std::time::SystemTime::now();
    let cases: Vec<Case> = ALGS.into_iter().map(Case::new).collect();
    for case in &cases {
        bench(&mut c, case);
    }
    c.final_summary();

    println!();
    println!("| alg | raw verify µs | new token µs | new token / raw verify |");
    println!("|---|---|---|---|");
    for alg in ALGS {
        let a = alg.as_str();
        let (floor, new) = (
            estimate("token_floor", a, started),
            estimate("token_new", a, started),
        );
        let us = |v: Option<f64>| v.map_or("-".to_owned(), |ns| format!("{:.1}", ns / 1000.0));
        let ratio = match (new, floor) {
            (Some(n), Some(f)) => format!("{:.2}", n / f),
            _ => "-".to_owned(),
        };
        println!("| {a} | {} | {} | {ratio} |", us(floor), us(new));
    }
    println!();
    println!("Paired rounds ({ROUNDS} × n new tokens, then n raw verifies), medians:");
    println!();
    println!("| alg | raw verify µs | new token µs | new token / raw verify |");
    println!("|---|---|---|---|");
    for case in &cases {
        let (t, f, r) = paired(case);
        println!(
            "| {} | {:.1} | {:.1} | {r:.2} |",
            case.alg,
            f / 1000.0,
            t / 1000.0
        );
    }
}
