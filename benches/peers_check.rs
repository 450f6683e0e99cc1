//! Self-check of the peer adapters in `peers.rs` (not a criterion bench: runs once).
//!
//! `cargo bench --bench peers_check`

mod peers;

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use peers::{DpopVerifierPeer, HuskarlPeer, Request};
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::Algorithm;

const URL: &str = "https://api.example.com/api/me";
const ALGS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::Ed25519,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// One peer behind a common face.
trait Peer {
    const NAME: &'static str;
    fn make() -> Self;
    fn make_without_replay() -> Self;
    fn supports(alg: &str) -> bool;
    fn check(&self, req: &Request) -> bool;
    /// Whether `Request::now` is honoured (else proofs must carry the real time).
    const CLOCK_INJECTABLE: bool;
}

impl Peer for DpopVerifierPeer {
    const NAME: &'static str = "dpop-verifier";
    const CLOCK_INJECTABLE: bool = false;
    fn make() -> Self {
        Self::new()
    }
    fn make_without_replay() -> Self {
        Self::new_without_replay()
    }
    fn supports(alg: &str) -> bool {
        DpopVerifierPeer::supports(alg)
    }
    fn check(&self, req: &Request) -> bool {
        self.verify(req)
    }
}

impl Peer for HuskarlPeer {
    const NAME: &'static str = "huskarl-resource-server";
    const CLOCK_INJECTABLE: bool = true;
    fn make() -> Self {
        Self::new()
    }
    fn make_without_replay() -> Self {
        Self::new_without_replay()
    }
    fn supports(alg: &str) -> bool {
        HuskarlPeer::supports(alg)
    }
    fn check(&self, req: &Request) -> bool {
        self.verify(req)
    }
}

fn get_request<'a>(proof: &'a str, access_token: &'a str, jkt: &'a str, now: u64) -> Request<'a> {
    Request {
        proof,
        method: "GET",
        url: URL,
        access_token,
        jkt,
        now,
    }
}

fn flip_signature_byte(proof: &str) -> String {
    let (signing_input, sig) = proof.rsplit_once('.').expect("three parts");
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn expect(&mut self, peer: &str, alg: &str, case: &str, got: bool, want: bool) {
        let ok = got == want;
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        println!(
            "{:<4} {peer:<24} {alg:<8} {case:<34} {:<8} (want {})",
            if ok { "ok" } else { "FAIL" },
            if got { "accepted" } else { "rejected" },
            if want { "accepted" } else { "rejected" },
        );
    }
}

fn check_peer<P: Peer>(issuer: &TestIssuer, tally: &mut Tally) {
    println!("\n== {} ==", P::NAME);
    let peer = P::make();
    for alg in ALGS {
        let name = alg.as_str();
        let supported = P::supports(name);
        let key = ClientKey::generate(alg);
        let other = ClientKey::generate(alg);
        let now = unix_now();
        let token = issuer.token_for(key.jkt(), now + 3600);
        let mint = |method: &str, url: &str, iat: u64, tok: &str| {
            key.proof(method, url).access_token(tok).iat(iat).sign()
        };
        let req = |proof| get_request(proof, &token, key.jkt(), now);

        let valid = mint("GET", URL, now, &token);
        if !supported {
            // supports() says no: show that a valid proof is indeed refused.
            tally.expect(
                P::NAME,
                name,
                "valid proof (alg unsupported)",
                peer.check(&req(&valid)),
                false,
            );
            continue;
        }
        tally.expect(P::NAME, name, "valid proof", peer.check(&req(&valid)), true);
        tally.expect(
            P::NAME,
            name,
            "same proof again (replay)",
            peer.check(&req(&valid)),
            false,
        );

        let p = mint("POST", URL, now, &token);
        tally.expect(
            P::NAME,
            name,
            "proof for another method",
            peer.check(&req(&p)),
            false,
        );

        let p = flip_signature_byte(&mint("GET", URL, now, &token));
        tally.expect(
            P::NAME,
            name,
            "flipped signature byte",
            peer.check(&req(&p)),
            false,
        );

        let p = mint("GET", URL, now, &token);
        let wrong_jkt = Request {
            jkt: other.jkt(),
            ..req(&p)
        };
        tally.expect(
            P::NAME,
            name,
            "bound to another key (jkt)",
            peer.check(&wrong_jkt),
            false,
        );

        let p = mint("GET", URL, now, "some-other-token");
        tally.expect(
            P::NAME,
            name,
            "ath of another token",
            peer.check(&req(&p)),
            false,
        );

        let p = mint("GET", "https://api.example.com/api/other", now, &token);
        tally.expect(
            P::NAME,
            name,
            "proof for another URL (htu)",
            peer.check(&req(&p)),
            false,
        );

        let p = mint("GET", URL, now - 600, &token);
        tally.expect(P::NAME, name, "iat 600 s old", peer.check(&req(&p)), false);

        let p = mint("GET", URL, now + 600, &token);
        tally.expect(
            P::NAME,
            name,
            "iat 600 s ahead",
            peer.check(&req(&p)),
            false,
        );

        // Clock injection: a proof from 2023 checked "in 2023".
        let past = 1_700_000_000;
        let p = mint("GET", URL, past, &token);
        let at_past = Request {
            now: past,
            ..req(&p)
        };
        tally.expect(
            P::NAME,
            name,
            "iat=now=1700000000 (injected clock)",
            peer.check(&at_past),
            P::CLOCK_INJECTABLE,
        );
    }
}

/// Rough per-call cost (not criterion; just to sanity-check the adapters are not trivially fast).
fn rough_timing<P: Peer>(issuer: &TestIssuer) {
    let peer = P::make_without_replay();
    for alg in ALGS {
        if !P::supports(alg.as_str()) {
            continue;
        }
        let key = ClientKey::generate(alg);
        let now = unix_now();
        let token = issuer.token_for(key.jkt(), now + 3600);
        let proof = key.proof("GET", URL).access_token(&token).iat(now).sign();
        let req = Request {
            proof: &proof,
            method: "GET",
            url: URL,
            access_token: &token,
            jkt: key.jkt(),
            now,
        };
        assert!(peer.check(&req));
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            assert!(std::hint::black_box(peer.check(std::hint::black_box(&req))));
        }
        let per = t.elapsed() / n;
        println!(
            "     {:<24} {:<8} ~{:>8.1} us / verify (same proof, no replay store)",
            P::NAME,
            alg.as_str(),
            per.as_secs_f64() * 1e6
        );
    }
}

fn main() {
    let issuer = TestIssuer::new();
    let mut tally = Tally::default();
    println!("supports():");
    for alg in ALGS {
        println!(
            "     {:<8} dpop-verifier={:<5} huskarl={}",
            alg.as_str(),
            DpopVerifierPeer::supports(alg.as_str()),
            HuskarlPeer::supports(alg.as_str())
        );
    }
    check_peer::<DpopVerifierPeer>(&issuer, &mut tally);
    check_peer::<HuskarlPeer>(&issuer, &mut tally);

    println!("\nrough timing:");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let n = 100_000;
    let t = Instant::now();
    for _ in 0..n {
        rt.block_on(std::hint::black_box(async {}));
    }
    println!(
        "     current-thread block_on of a ready future: ~{:.0} ns",
        t.elapsed().as_secs_f64() * 1e9 / f64::from(n)
    );
    rough_timing::<DpopVerifierPeer>(&issuer);
    rough_timing::<HuskarlPeer>(&issuer);

    println!(
        "\npeers_check: {} passed, {} failed",
        tally.passed, tally.failed
    );
    if tally.failed > 0 {
        std::process::exit(1);
    }
}
