//! The cost of verifying one DPoP request, beside the floor (one raw signature verify with a
//! ready key) and beside other Rust DPoP verifiers, plus the pieces of the pipeline.
//!
//! `cargo bench --bench verify` runs everything and ends with a table of ratios read from
//! criterion's own estimates, then the paired tables (pipeline against the floor, warm and cold,
//! and against the peers, in alternating rounds), which are the ones to read on a machine whose
//! speed drifts. Add `-- <filter>` to run a subset of the criterion benches (the paired tables
//! always run; `-- nomatch` prints only them).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use http::{HeaderMap, Method};
use tower_dpop::__private;
use tower_dpop::clock::ManualClock;
use tower_dpop::replay::{MemoryReplayStore, ReplayError, ReplayKey, ReplayStore, Seen};
use tower_dpop::testing::{ClientKey, TestIssuer};
use tower_dpop::Thumbprint;
use tower_dpop::{Algorithm, DpopLayer};

mod peers;

const T0: u64 = 1_800_000_000;
const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/api/me";
const ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// A memory replay store that can be emptied between passes over the proof pool, so that the
/// pipeline benchmark runs the real store on every request without the pool running dry.
#[derive(Debug)]
struct Resettable(RwLock<Arc<MemoryReplayStore>>);

impl Resettable {
    fn new() -> Arc<Self> {
        Arc::new(Self(RwLock::new(Arc::new(MemoryReplayStore::default()))))
    }

    fn reset(&self) {
        *self.0.write().unwrap() = Arc::new(MemoryReplayStore::default());
    }
}

#[async_trait]
impl ReplayStore for Resettable {
    async fn check_and_insert(&self, key: ReplayKey, ttl: Duration) -> Result<Seen, ReplayError> {
        let store = self.0.read().unwrap().clone();
        __private::memory_insert(&store, key, ttl)
    }
}

struct Case {
    alg: Algorithm,
    client: ClientKey,
    token: String,
    /// Unique proofs for GET URL, iat = T0, as ready header maps.
    pool: Vec<HeaderMap>,
    /// The same proofs as strings (for peers).
    proofs: Vec<String>,
}

/// Rounds of the paired measurement, and requests per round.
const ROUNDS: usize = 51;

fn round_size(alg: Algorithm) -> usize {
    match alg {
        Algorithm::ES384 => 20,
        _ => 100,
    }
}

/// Enough unique proofs for one paired measurement (a warm-up round and `ROUNDS`), so that
/// it runs against a plain `MemoryReplayStore` that is never emptied.
fn pool_size(alg: Algorithm) -> usize {
    (ROUNDS + 1) * round_size(alg)
}

impl Case {
    fn new(alg: Algorithm, issuer: &TestIssuer, iat: u64) -> Self {
        let client = ClientKey::generate(alg);
        let token = issuer.token_for(client.jkt(), iat + 3600);
        let proofs: Vec<String> = (0..pool_size(alg))
            .map(|_| {
                client
                    .proof("GET", URL)
                    .access_token(&token)
                    .iat(iat)
                    .sign()
            })
            .collect();
        let pool = proofs
            .iter()
            .map(|p| tower_dpop::testing::dpop_headers(&token, p))
            .collect();
        Self {
            alg,
            client,
            token,
            pool,
            proofs,
        }
    }
}

/// The layer every pipeline bench measures: the test issuer's tokens, the clock at `T0`.
fn builder(issuer: &TestIssuer, key_cache: u64) -> tower_dpop::DpopLayerBuilder {
    DpopLayer::builder()
        .public_origin(ORIGIN)
        // Every algorithm, ES384 and ES512 included (not in the default list).
        .algorithms(Algorithm::ALL.iter().copied())
        .token_validator(issuer.validator())
        .clock(ManualClock::at_unix(T0))
        .key_cache_capacity(key_cache)
}

fn layer(issuer: &TestIssuer, store: Arc<Resettable>, key_cache: u64) -> DpopLayer {
    builder(issuer, key_cache)
        .replay_store(store)
        .build()
        .unwrap()
}

/// Times `layer.verify` over the pool, emptying the replay store between passes (untimed).
fn bench_pipeline(
    c: &mut Criterion,
    group: &str,
    issuer: &TestIssuer,
    case: &Case,
    key_cache: u64,
) {
    let store = Resettable::new();
    let layer = layer(issuer, store.clone(), key_cache);
    let mut next = 0usize;
    let mut g = c.benchmark_group(group);
    g.bench_function(BenchmarkId::from_parameter(case.alg), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if next == case.pool.len() {
                    next = 0;
                    store.reset();
                }
                let headers = &case.pool[next];
                next += 1;
                let start = Instant::now();
                let ok = futures::executor::block_on(layer.authenticate(
                    &tower_dpop::testing::request_parts(&Method::GET, "/api/me", headers),
                ));
                total += start.elapsed();
                assert!(ok.is_ok(), "{:?}", ok.err());
            }
            total
        });
    });
    g.finish();
}

/// The message and the raw signature of one proof.
fn parts(proof: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, sig) = proof.rsplit_once('.').unwrap();
    (
        input.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(sig).unwrap(),
    )
}

/// The fastest raw verify of the proof's signature on this machine, key and signature already
/// parsed: OpenSSL for ECDSA and RSA, ed25519-dalek for Ed25519. One call = one verify.
fn floor_op(case: &Case) -> Box<dyn Fn()> {
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::ecdsa::EcdsaSig;
    use openssl::hash::{hash, MessageDigest};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::{Padding, Rsa};
    use openssl::sign::{RsaPssSaltlen, Verifier};

    let (msg, sig) = parts(&case.proofs[0]);
    let jwk = case.client.public_jwk();
    let field = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
    match case.alg {
        Algorithm::ES256 | Algorithm::ES384 => {
            let (nid, md) = if case.alg == Algorithm::ES256 {
                (Nid::X9_62_PRIME256V1, MessageDigest::sha256())
            } else {
                (Nid::SECP384R1, MessageDigest::sha384())
            };
            let group = EcGroup::from_curve_name(nid).unwrap();
            let mut point = vec![4u8];
            point.extend(field("x"));
            point.extend(field("y"));
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let key = EcKey::from_public_key(
                &group,
                &EcPoint::from_bytes(&group, &point, &mut ctx).unwrap(),
            )
            .unwrap();
            let half = sig.len() / 2;
            let ecdsa = EcdsaSig::from_private_components(
                BigNum::from_slice(&sig[..half]).unwrap(),
                BigNum::from_slice(&sig[half..]).unwrap(),
            )
            .unwrap();
            Box::new(move || {
                let digest = hash(md, black_box(&msg)).unwrap();
                assert!(ecdsa.verify(&digest, &key).unwrap());
            })
        }
        Algorithm::Ed25519 | Algorithm::EdDSA => {
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&field("x").try_into().unwrap()).unwrap();
            let signature = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            Box::new(move || {
                use ed25519_dalek::Verifier as _;
                assert!(key.verify(black_box(&msg), &signature).is_ok());
            })
        }
        _ => {
            let rsa = Rsa::from_public_components(
                BigNum::from_slice(&field("n")).unwrap(),
                BigNum::from_slice(&field("e")).unwrap(),
            )
            .unwrap();
            let key = PKey::from_rsa(rsa).unwrap();
            let pss = case.alg == Algorithm::PS256;
            Box::new(move || {
                let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
                if pss {
                    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                    v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
                }
                assert!(v.verify_oneshot(&sig, black_box(&msg)).unwrap());
            })
        }
    }
}

fn bench_floor(c: &mut Criterion, case: &Case) {
    let op = floor_op(case);
    let mut g = c.benchmark_group("floor");
    g.bench_function(BenchmarkId::from_parameter(case.alg), |b| b.iter(&op));
    g.finish();
}

/// Pipeline (warm, or cold with `key_cache` 0) and floor measured in alternating rounds (n
/// pipeline requests, then n floor verifies, 51 times), so that drift in the machine's speed hits both alike; the ratio is the
/// median of the per-round ratios. Criterion's runs of the two are minutes apart.
struct Paired {
    pipeline_ns: f64,
    floor_ns: f64,
    ratio: f64,
    ratio_p10: f64,
    ratio_p90: f64,
}

fn paired(issuer: &TestIssuer, case: &Case, key_cache: u64) -> Paired {
    let floor = floor_op(case);
    paired_with(issuer, case, key_cache, floor)
}

/// The warm pipeline and a peer verifier in alternating rounds, like [`paired`] (the "floor"
/// columns then hold the peer's time). The peer checks its own proofs, made just before, since
/// the peers read the system clock.
fn paired_peer(issuer: &TestIssuer, case: &Case, peer: &str) -> Option<Paired> {
    if !match peer {
        "dpop-verifier" => peers::DpopVerifierPeer::supports(case.alg.as_str()),
        _ => peers::HuskarlPeer::supports(case.alg.as_str()),
    } {
        return None;
    }
    let now = tower_dpop::testing::unix_now();
    let theirs = Case::new(case.alg, issuer, now);
    let dv = peers::DpopVerifierPeer::new();
    let hk = peers::HuskarlPeer::new();
    let mut next = 0usize;
    let op = || {
        let req = peers::Request {
            proof: &theirs.proofs[next],
            method: "GET",
            url: URL,
            access_token: &theirs.token,
            jkt: theirs.client.jkt(),
            now,
        };
        let ok = match peer {
            "dpop-verifier" => dv.verify(&req),
            _ => hk.verify(&req),
        };
        assert!(ok, "{peer} refused a valid proof");
        next += 1;
    };
    Some(paired_with(issuer, case, 10_000, op))
}

/// Rounds of `n` pipeline requests alternating with `n` calls of `other`.
fn paired_with(
    issuer: &TestIssuer,
    case: &Case,
    key_cache: u64,
    mut other: impl FnMut(),
) -> Paired {
    let n = round_size(case.alg);
    // A plain store, as a server has: the pool holds a proof for every request of the run.
    let layer = builder(issuer, key_cache).build().unwrap();
    let mut next = 0usize;
    let mut run = |count: usize| -> f64 {
        let mut elapsed = Duration::ZERO;
        for proof in &case.proofs[next..next + count] {
            // As in a server, where hyper has just parsed the request: its header bytes are
            // freshly written (dpop_headers copies them), not read cold from a pool of
            // thousands of header maps (the floor verifies one message, always in cache).
            let headers = tower_dpop::testing::dpop_headers(&case.token, proof);
            let start = Instant::now();
            let ok = futures::executor::block_on(layer.authenticate(
                &tower_dpop::testing::request_parts(&Method::GET, "/api/me", &headers),
            ));
            elapsed += start.elapsed();
            assert!(ok.is_ok(), "{:?}", ok.err());
        }
        next += count;
        elapsed.as_nanos() as f64 / count as f64
    };
    let mut floor_round = |count: usize| -> f64 {
        let start = Instant::now();
        for _ in 0..count {
            other();
        }
        start.elapsed().as_nanos() as f64 / count as f64
    };
    run(n);
    floor_round(n);
    let (mut warm, mut flo, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let w = run(n);
        let f = floor_round(n);
        warm.push(w);
        flo.push(f);
        ratios.push(w / f);
    }
    let median = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    Paired {
        pipeline_ns: median(&mut warm, 0.5),
        floor_ns: median(&mut flo, 0.5),
        ratio: median(&mut ratios, 0.5),
        ratio_p10: median(&mut ratios, 0.1),
        ratio_p90: median(&mut ratios, 0.9),
    }
}

/// Key import: the layer's direct import beside josekit's `verifier_from_jwk`.
fn bench_import(c: &mut Criterion, case: &Case) {
    let json = case.client.public_jwk().to_string();
    let jwk = __private::Jwk::new(&json);
    let mut g = c.benchmark_group("import");
    g.bench_function(BenchmarkId::new("tower-dpop", case.alg), |b| {
        b.iter(|| assert!(__private::import(case.alg, black_box(&jwk)).is_some()))
    });
    let josekit_jwk = josekit::jwk::Jwk::from_bytes(json.as_bytes()).unwrap();
    g.bench_function(BenchmarkId::new("josekit", case.alg), |b| {
        b.iter(|| {
            let ok = match case.alg {
                Algorithm::ES256 => josekit::jws::ES256
                    .verifier_from_jwk(black_box(&josekit_jwk))
                    .is_ok(),
                Algorithm::ES384 => josekit::jws::ES384
                    .verifier_from_jwk(black_box(&josekit_jwk))
                    .is_ok(),
                Algorithm::PS256 => josekit::jws::PS256
                    .verifier_from_jwk(black_box(&josekit_jwk))
                    .is_ok(),
                Algorithm::RS256 => josekit::jws::RS256
                    .verifier_from_jwk(black_box(&josekit_jwk))
                    .is_ok(),
                _ => josekit::jws::EdDSA
                    .verifier_from_jwk(black_box(&josekit_jwk))
                    .is_ok(),
            };
            assert!(ok);
        })
    });
    g.finish();
}

/// The same proofs through the other Rust DPoP verifiers, where they support the algorithm.
fn bench_peers(c: &mut Criterion, case: &Case, real_now: u64) {
    let mut g = c.benchmark_group("peer");
    let mut next = 0usize;
    let req = |i: usize| peers::Request {
        proof: &case.proofs[i],
        method: "GET",
        url: URL,
        access_token: &case.token,
        jkt: case.client.jkt(),
        now: real_now,
    };
    if peers::DpopVerifierPeer::supports(case.alg.as_str()) {
        let mut peer = peers::DpopVerifierPeer::new();
        g.bench_function(BenchmarkId::new("dpop-verifier", case.alg), |b| {
            b.iter(|| {
                if next == case.proofs.len() {
                    next = 0;
                    peer = peers::DpopVerifierPeer::new();
                }
                assert!(peer.verify(&req(next)));
                next += 1;
            })
        });
    }
    next = 0;
    if peers::HuskarlPeer::supports(case.alg.as_str()) {
        let mut peer = peers::HuskarlPeer::new();
        g.bench_function(BenchmarkId::new("huskarl", case.alg), |b| {
            b.iter(|| {
                if next == case.proofs.len() {
                    next = 0;
                    peer = peers::HuskarlPeer::new();
                }
                assert!(peer.verify(&req(next)));
                next += 1;
            })
        });
    }
    g.finish();
}

fn bench_pieces(c: &mut Criterion, issuer: &TestIssuer) {
    let mut g = c.benchmark_group("piece");
    let client = ClientKey::generate(Algorithm::ES256);
    let jwk = __private::Jwk::new(&client.public_jwk().to_string());
    g.bench_function("thumbprint", |b| {
        b.iter(|| __private::thumbprint(black_box(&jwk)).unwrap())
    });

    let origins = __private::Origins::parse(&[ORIGIN]).unwrap();
    g.bench_function("htu", |b| {
        b.iter(|| assert!(origins.matches(black_box(URL), black_box("/api/me"))))
    });

    let store = MemoryReplayStore::new(10_000_000);
    let mut n = 0u64;
    g.bench_function("replay_insert", |b| {
        b.iter(|| {
            n += 1;
            let key = ReplayKey::new(&Thumbprint::from_bytes([7; 32]), &n.to_string());
            assert_eq!(
                __private::memory_insert(&store, key, Duration::from_secs(60)),
                Ok(Seen::First)
            );
        })
    });

    let tokens = __private::Tokens::new();
    let token = issuer.token_for(client.jkt(), T0 + 3600);
    let claims =
        serde_json::json!({"sub": "alice", "exp": T0 + 3600, "cnf": {"jkt": client.jkt()}});
    let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
    tokens.insert(
        token.as_bytes(),
        hash,
        tower_dpop::token::AccessToken::from_claims(claims.as_object().unwrap().clone()).unwrap(),
        T0,
    );
    g.bench_function("token_cache_hit", |b| {
        b.iter(|| tokens.get(black_box(token.as_bytes())).unwrap())
    });

    let nonces = __private::Nonces::new(&[1; 32], Duration::from_secs(300)).unwrap();
    let nonce = nonces.issue(T0);
    g.bench_function("nonce_check", |b| {
        b.iter(|| nonces.check(black_box(&nonce), T0).unwrap())
    });
    g.finish();
}

/// Reads criterion's estimate (mean, ns) of a benchmark that ran in this process.
fn estimate(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let started = std::time::SystemTime::now();
    let issuer = TestIssuer::new();
    let mut ran = BTreeMap::new();
    for alg in ALGS {
        let case = Case::new(alg, &issuer, T0);
        bench_pipeline(&mut c, "pipeline_warm", &issuer, &case, 10_000);
        bench_pipeline(&mut c, "pipeline_cold", &issuer, &case, 0);
        bench_floor(&mut c, &case);
        bench_import(&mut c, &case);
        // dpop-verifier reads the system clock: its proofs are made now, just before use.
        let now = tower_dpop::testing::unix_now();
        bench_peers(&mut c, &Case::new(alg, &issuer, now), now);
        ran.insert(alg.as_str(), ());
    }
    bench_pieces(&mut c, &issuer);
    c.final_summary();

    // Paired (interleaved) warm/floor and cold/floor, independent of the criterion filter.
    let mut pairs = Vec::new();
    for alg in ALGS {
        let case = Case::new(alg, &issuer, T0);
        let warm = paired(&issuer, &case, 10_000);
        let cold = paired(&issuer, &case, 0);
        let dv = paired_peer(&issuer, &case, "dpop-verifier");
        let hk = paired_peer(&issuer, &case, "huskarl");
        pairs.push((alg, warm, cold, dv, hk));
    }

    // Ratios, from the medians criterion just wrote (only those written by this run).
    let fresh = |group: &str, id: &str| -> Option<f64> {
        let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        (modified >= started).then(|| estimate(group, id)).flatten()
    };
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |ns| format!("{:.1}", ns / 1000.0));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    };
    println!();
    println!("| alg | floor µs | warm µs | cold µs | warm/floor | cold/floor | dpop-verifier µs | warm/dpop-verifier | huskarl µs | warm/huskarl | import µs | josekit import µs |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for alg in ALGS {
        let a = alg.as_str();
        let floor = fresh("floor", a);
        let warm = fresh("pipeline_warm", a);
        let cold = fresh("pipeline_cold", a);
        let dv = fresh("peer", &format!("dpop-verifier/{a}"));
        let hk = fresh("peer", &format!("huskarl/{a}"));
        let imp = fresh("import", &format!("tower-dpop/{a}"));
        let jose = fresh("import", &format!("josekit/{a}"));
        println!(
            "| {a} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            us(floor),
            us(warm),
            us(cold),
            ratio(warm, floor),
            ratio(cold, floor),
            us(dv),
            ratio(warm, dv),
            us(hk),
            ratio(warm, hk),
            us(imp),
            us(jose)
        );
    }
    println!();
    println!("Paired rounds (51 × n requests, then n floor verifies), median per round:");
    println!();
    println!(
        "| alg | floor µs | warm µs | warm/floor | p10–p90 | cold µs | cold/floor | p10–p90 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (alg, w, c, _, _) in &pairs {
        println!(
            "| {alg} | {:.1} | {:.1} | {:.2} | {:.2}–{:.2} | {:.1} | {:.2} | {:.2}–{:.2} |",
            w.floor_ns / 1000.0,
            w.pipeline_ns / 1000.0,
            w.ratio,
            w.ratio_p10,
            w.ratio_p90,
            c.pipeline_ns / 1000.0,
            c.ratio,
            c.ratio_p10,
            c.ratio_p90
        );
    }
    println!();
    println!("Paired against the peers (51 × n warm requests, then n peer verifications of its own proofs):");
    println!();
    println!("| alg | warm µs | dpop-verifier µs | warm/dpop-verifier | p10–p90 | huskarl µs | warm/huskarl | p10–p90 |");
    println!("|---|---|---|---|---|---|---|---|");
    let cells = |p: &Option<Paired>| match p {
        Some(p) => format!(
            "{:.1} | {:.2} | {:.2}–{:.2}",
            p.floor_ns / 1000.0,
            p.ratio,
            p.ratio_p10,
            p.ratio_p90
        ),
        None => "- | - | -".to_owned(),
    };
    for (alg, w, _, dv, hk) in &pairs {
        println!(
            "| {alg} | {:.1} | {} | {} |",
            w.pipeline_ns / 1000.0,
            cells(dv),
            cells(hk)
        );
    }
    println!();
    for piece in [
        "thumbprint",
        "htu",
        "replay_insert",
        "token_cache_hit",
        "nonce_check",
    ] {
        if let Some(ns) = fresh("piece", piece) {
            println!("piece {piece}: {ns:.0} ns");
        }
    }
}
