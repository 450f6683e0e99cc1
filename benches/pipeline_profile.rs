//! A fixed workload for instruction-level profiling of the warm pipeline (no timing here).
//!
//! ```sh
//! cargo bench --bench pipeline_profile --no-run
//! valgrind --tool=callgrind --toggle-collect='std::thread::local::LocalKey*with*' \
//!     target/release/deps/pipeline_profile-<hash> RS256 1000
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -60
//! # a sampling profiler needs a longer run: a third argument replays the pool that many times
//! perf record -D 1500 target/release/deps/pipeline_profile-<hash> RS256 600 200
//! ```
//!
//! One token, `n` unique proofs for one warm key (the first request imports the key and
//! validates the token; the rest hit both caches), every one through `DpopLayer::verify` with
//! the default memory replay store. `--toggle-collect` counts only what runs inside
//! `block_on` (the pipeline; the async fn is inlined there, so its own name cannot be used), so
//! the profile reads as: the signature's share (`VerifyingKey::verify`), and everything else.

use http::Method;
use tower_dpop::clock::ManualClock;
use tower_dpop::testing::{dpop_headers, ClientKey, TestIssuer};
use tower_dpop::{Algorithm, DpopLayer};

const T0: u64 = 1_800_000_000;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let alg = match args.next().as_deref() {
        Some("ES384") => Algorithm::ES384,
        Some("EdDSA") => Algorithm::EdDSA,
        Some("PS256") => Algorithm::PS256,
        Some("RS256") => Algorithm::RS256,
        _ => Algorithm::ES256,
    };
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let issuer = TestIssuer::new();
    let client = ClientKey::generate(alg);
    let token = issuer.token_for(client.jkt(), T0 + 3600);
    let pool: Vec<String> = (0..n)
        .map(|_| {
            client
                .proof("GET", "https://api.example.com/api/me")
                .access_token(&token)
                .iat(T0)
                .sign()
        })
        .collect();
    // `rounds` (third argument, default 1) replays the pool through a new layer each time, for
    // sampling profilers that need a longer run than the pool takes to sign.
    let rounds: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1);
    for _ in 0..rounds {
        let layer = DpopLayer::builder()
            .public_origin("https://api.example.com")
            // Every algorithm, ES384 and ES512 included (not in the default list).
            .algorithms(Algorithm::ALL.iter().copied())
            .token_validator(issuer.validator())
            .clock(ManualClock::at_unix(T0))
            .build()
            .expect("layer");
        let mut ok = 0usize;
        for proof in &pool {
            // Freshly written header bytes, as hyper hands them over (see benches/verify.rs).
            let headers = dpop_headers(&token, proof);
            let r = futures::executor::block_on(layer.authenticate(
                &tower_dpop::testing::request_parts(&Method::GET, "/api/me", &headers),
            ));
            ok += usize::from(r.is_ok());
        }
        assert_eq!(ok, n, "every request verifies");
    }
    println!("pipeline_profile: {alg} x {n} verified");
}
