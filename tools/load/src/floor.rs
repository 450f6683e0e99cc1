//! The floor: raw signature verifies per algorithm, in a loop with a ready key and a ready
//! signature over a proof-sized message (hashing included), run as `load raw-verify` pinned to
//! the server's core. It is what a request strictly needs: one proof verify, plus one token
//! verify (the authorization server signs with ES256) for each new token.
//!
//! - ES256/384/512: OpenSSL `ECDSA_do_verify` of the message's digest;
//! - PS256/384/512 and RS256/384/512: OpenSSL `EVP_DigestVerify` (PSS with a digest-length
//!   salt), RSA-2048;
//! - EdDSA / Ed25519: ed25519-dalek's `verify`, which the layer uses.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use tower_dpop::Algorithm;

use crate::args::{parse_alg, USAGE};
use crate::cpu::{allowed_cpus, cpu_ns};
use crate::BoxError;

/// A DPoP proof's signing input is 500–1 100 bytes.
const MESSAGE_LEN: usize = 800;

/// The measured cost of one verify.
#[derive(Debug, Clone, Copy)]
pub struct RawRate {
    pub alg: Algorithm,
    /// Verifies per wall-clock second.
    pub per_s: f64,
    /// Verifies per CPU-second of the loop (discounts anything else on the core).
    pub per_cpu_s: Option<f64>,
}

impl RawRate {
    /// Microseconds of CPU per verify (per wall-clock second when CPU time is unknown).
    pub fn us(&self) -> f64 {
        1e6 / self.per_cpu_s.unwrap_or(self.per_s)
    }
}

/// The floors of several algorithms.
#[derive(Debug, Clone, Default)]
pub struct Floors(pub Vec<RawRate>);

impl Floors {
    /// CPU microseconds of one verify of `alg` (`None` if it was not measured).
    pub fn us(&self, alg: Algorithm) -> Option<f64> {
        let alg = canonical(alg);
        self.0.iter().find(|r| r.alg == alg).map(RawRate::us)
    }

    /// `es256:70.1,eddsa:41.0` (µs per verify).
    pub fn label(&self) -> String {
        self.0
            .iter()
            .map(|r| format!("{}:{:.1}", r.alg.as_str().to_ascii_lowercase(), r.us()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `Ed25519` is verified as `EdDSA`.
fn canonical(alg: Algorithm) -> Algorithm {
    if alg == Algorithm::Ed25519 {
        Algorithm::EdDSA
    } else {
        alg
    }
}

/// Measures each of `algs` (deduplicated) with `load raw-verify` pinned to `core`.
pub fn measure(algs: &[Algorithm], core: usize, seconds: f64) -> Result<Floors, BoxError> {
    let mut floors = Floors::default();
    for &alg in algs {
        let alg = canonical(alg);
        if floors.0.iter().any(|r| r.alg == alg) {
            continue;
        }
        floors.0.push(child(alg, core, seconds)?);
    }
    Ok(floors)
}

fn child(alg: Algorithm, core: usize, seconds: f64) -> Result<RawRate, BoxError> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!("== raw-verify: {alg} verify loop on core {core} for {seconds:.1} s ==");
    let out = Command::new("taskset")
        .arg("-c")
        .arg(core.to_string())
        .arg(&exe)
        .arg("raw-verify")
        .arg("--alg")
        .arg(alg.as_str())
        .arg("--seconds")
        .arg(seconds.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `taskset ... {} raw-verify`: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        return Err(format!("raw-verify {alg} failed: {}", out.status).into());
    }
    let field = |name: &str| {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(RawRate {
        alg,
        per_s: field("verifies_per_s=").ok_or("raw-verify printed no verifies_per_s=")?,
        per_cpu_s: field("verifies_per_cpu_s="),
    })
}

/// One ready verify: returns whether it verified.
type VerifyOnce = Box<dyn Fn(&[u8]) -> bool>;

fn ec(nid: Nid, md: MessageDigest, message: &[u8]) -> Result<VerifyOnce, BoxError> {
    let group = EcGroup::from_curve_name(nid)?;
    let private = EcKey::generate(&group)?;
    let public = EcKey::from_public_key(&group, private.public_key())?;
    let digest = openssl::hash::hash(md, message)?;
    let sig = EcdsaSig::sign(&digest, &private)?;
    Ok(Box::new(move |m: &[u8]| {
        openssl::hash::hash(md, m)
            .ok()
            .and_then(|d| sig.verify(&d, &public).ok())
            .unwrap_or(false)
    }))
}

fn rsa(md: MessageDigest, pss: bool, message: &[u8]) -> Result<VerifyOnce, BoxError> {
    let private = PKey::from_rsa(Rsa::generate(2048)?)?;
    let public: PKey<Public> = PKey::public_key_from_der(&private.public_key_to_der()?)?;
    let mut signer = Signer::new(md, &private)?;
    if pss {
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    }
    let sig = signer.sign_oneshot_to_vec(message)?;
    Ok(Box::new(move |m: &[u8]| {
        let verify = || -> Result<bool, openssl::error::ErrorStack> {
            let mut v = Verifier::new(md, &public)?;
            if pss {
                v.set_rsa_padding(Padding::PKCS1_PSS)?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            }
            v.verify_oneshot(&sig, m)
        };
        verify().unwrap_or(false)
    }))
}

fn ed25519(message: &[u8]) -> VerifyOnce {
    use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
    let signing = SigningKey::from_bytes(&[7; 32]);
    let public = signing.verifying_key();
    let sig = signing.sign(message);
    Box::new(move |m: &[u8]| public.verify(m, &sig).is_ok())
}

fn verifier(alg: Algorithm, message: &[u8]) -> Result<VerifyOnce, BoxError> {
    use Algorithm as A;
    Ok(match alg {
        A::ES256 => ec(Nid::X9_62_PRIME256V1, MessageDigest::sha256(), message)?,
        A::ES384 => ec(Nid::SECP384R1, MessageDigest::sha384(), message)?,
        A::ES512 => ec(Nid::SECP521R1, MessageDigest::sha512(), message)?,
        A::PS256 => rsa(MessageDigest::sha256(), true, message)?,
        A::PS384 => rsa(MessageDigest::sha384(), true, message)?,
        A::PS512 => rsa(MessageDigest::sha512(), true, message)?,
        A::RS256 => rsa(MessageDigest::sha256(), false, message)?,
        A::RS384 => rsa(MessageDigest::sha384(), false, message)?,
        A::RS512 => rsa(MessageDigest::sha512(), false, message)?,
        _ => ed25519(message),
    })
}

/// The hidden `raw-verify` subcommand.
pub fn main(args: &[String]) -> ExitCode {
    let mut seconds = 3.0f64;
    let mut alg = Algorithm::ES256;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().map(String::as_str).unwrap_or_default();
        match flag.as_str() {
            "--seconds" => match value.parse::<f64>() {
                Ok(s) if s > 0.0 && s < 600.0 => seconds = s,
                _ => return bad(args),
            },
            "--alg" => match parse_alg(value) {
                Ok(a) => alg = a,
                Err(_) => return bad(args),
            },
            _ => return bad(args),
        }
    }
    let message = vec![b'e'; MESSAGE_LEN];
    let verify = match verifier(alg, &message) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("load raw-verify: cannot set up {alg}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !verify(&message) {
        eprintln!("load raw-verify: the {alg} signature does not verify");
        return ExitCode::FAILURE;
    }

    let budget = Duration::from_secs_f64(seconds);
    let cpu0 = cpu_ns("self");
    let start = Instant::now();
    let mut count: u64 = 0;
    let mut failed = false;
    loop {
        for _ in 0..32 {
            failed |= !verify(std::hint::black_box(&message));
        }
        count += 32;
        if start.elapsed() >= budget {
            break;
        }
    }
    if failed {
        eprintln!("load raw-verify: a {alg} verify failed in the loop");
        return ExitCode::FAILURE;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = cpu_ns("self")
        .zip(cpu0)
        .map(|(b, a)| {
            #[allow(clippy::cast_precision_loss)]
            let s = b.saturating_sub(a) as f64 / 1e9;
            s
        })
        .filter(|s| *s > 0.0);
    #[allow(clippy::cast_precision_loss)]
    let rate = count as f64 / secs;
    #[allow(clippy::cast_precision_loss)]
    let per_cpu = cpu_secs.map_or_else(|| "?".into(), |c| format!("{:.0}", count as f64 / c));
    println!(
        "raw-verify: alg={alg} verifies_per_s={rate:.0} verifies_per_cpu_s={per_cpu} \
         verifies={count} secs={secs:.3} cpu_pct={} us_per_verify={:.2} cores={}",
        crate::report::opt(cpu_secs.map(|c| 100.0 * c / secs), 1),
        1e6 / rate,
        allowed_cpus("self").unwrap_or_else(|| "?".into())
    );
    ExitCode::SUCCESS
}

fn bad(args: &[String]) -> ExitCode {
    eprintln!("load raw-verify: bad arguments {args:?}\n{USAGE}");
    ExitCode::from(2)
}
