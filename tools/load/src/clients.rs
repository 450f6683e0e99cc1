//! The client population of the realistic and hostile modes: N keys of a configurable
//! algorithm mix, each with its own bound access token, refreshed every M minutes (each client
//! at its own phase), and the requests spread over them by a Zipf distribution.
//!
//! RSA keys take ~0.1 s each to generate, so they are cached as PKCS#8 PEM files under
//! `--key-cache` (default `target/load-keys/`), generated the first time on every core this
//! process may use; EC and Ed25519 keys are generated at each run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use http::header::AUTHORIZATION;
use http::HeaderValue;
use tower_dpop::testing::{unix_now, ClientKey, TestIssuer};
use tower_dpop::Algorithm;

use crate::driver::{dpop, Headers};
use crate::rng::{Rng, Zipf};
use crate::BoxError;

/// One access token and its `Authorization: DPoP` value.
pub struct Token {
    pub text: String,
    pub auth: HeaderValue,
}

/// One client: its key, its refresh phase, and its tokens so far (one per refresh period).
pub struct Client {
    pub key: ClientKey,
    /// Where this client is in its refresh period at the start of the run, in seconds.
    phase_s: f64,
    tokens: Vec<Token>,
    /// Tokens already used in a planned request (`tokens[..used]`).
    used: usize,
}

/// The requests of one phase, prepared before the clock starts.
pub struct Plan {
    pub list: Vec<Headers>,
    /// Per request: its proof's algorithm and whether its token is new to the server.
    pub meta: Vec<(Algorithm, bool)>,
    /// Minting stopped at the time budget before the planned count.
    pub capped: bool,
    pub mint_secs: f64,
    /// When the first proof was minted (its `iat`).
    pub minted_at: Instant,
}

impl Plan {
    /// Counts of requests per algorithm, and the new tokens, in `list[range]`.
    pub fn counts(&self, range: std::ops::Range<usize>) -> (BTreeMap<Algorithm, u64>, u64) {
        let mut by_alg = BTreeMap::new();
        let mut new_tokens = 0;
        for &(alg, new) in self.meta.get(range).unwrap_or_default() {
            *by_alg.entry(alg).or_insert(0u64) += 1;
            new_tokens += u64::from(new);
        }
        (by_alg, new_tokens)
    }
}

/// Every client, and how requests are spread over them.
pub struct Population {
    pub clients: Vec<Client>,
    pub zipf: Zipf,
    refresh_s: f64,
    pub url: String,
    rng: Rng,
}

/// The number of clients of each algorithm: `n` apportioned by the weights (largest remainder).
fn apportion(mix: &[(Algorithm, u32)], n: usize) -> Vec<(Algorithm, usize)> {
    let total: u64 = mix.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut out: Vec<(Algorithm, usize, u64)> = mix
        .iter()
        .map(|&(a, w)| {
            let exact = n as u128 * u128::from(w);
            let (q, r) = (exact / u128::from(total), exact % u128::from(total));
            (
                a,
                usize::try_from(q).unwrap_or(usize::MAX),
                u64::try_from(r).unwrap_or(0),
            )
        })
        .collect();
    let given: usize = out.iter().map(|(_, c, _)| c).sum();
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(out.get(i).map_or(0, |e| e.2)));
    for i in order.into_iter().cycle().take(n.saturating_sub(given)) {
        if let Some(entry) = out.get_mut(i) {
            entry.1 += 1;
        }
    }
    out.into_iter().map(|(a, c, _)| (a, c)).collect()
}

fn is_rsa(alg: Algorithm) -> bool {
    alg.as_str().starts_with("PS") || alg.as_str().starts_with("RS")
}

/// `count` RSA-2048 private keys in PKCS#8 PEM, from `dir` (generating the missing ones in
/// parallel and saving them there).
pub fn rsa_keys(dir: &Path, count: usize) -> Result<Vec<String>, BoxError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the key cache {}: {e}", dir.display()))?;
    let path = |i: usize| dir.join(format!("rsa2048-{i:05}.pem"));
    let missing: Vec<usize> = (0..count).filter(|&i| !path(i).is_file()).collect();
    if !missing.is_empty() {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        println!(
            "load: generating {} RSA-2048 keys into {} on {threads} thread(s) (cached for the \
             next runs)",
            missing.len(),
            dir.display()
        );
        let started = Instant::now();
        let chunks: Vec<&[usize]> = missing.chunks(missing.len().div_ceil(threads)).collect();
        std::thread::scope(|s| -> Result<(), BoxError> {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    s.spawn(move || -> Result<(), String> {
                        for &i in *chunk {
                            let key = openssl::rsa::Rsa::generate(2048)
                                .and_then(openssl::pkey::PKey::from_rsa)
                                .and_then(|k| k.private_key_to_pem_pkcs8())
                                .map_err(|e| format!("RSA key generation: {e}"))?;
                            let tmp = path(i).with_extension("tmp");
                            std::fs::write(&tmp, key)
                                .and_then(|()| std::fs::rename(&tmp, path(i)))
                                .map_err(|e| format!("writing {}: {e}", path(i).display()))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "a key generation thread panicked")??;
            }
            Ok(())
        })?;
        println!(
            "load: generated {} RSA keys in {:.1} s",
            missing.len(),
            started.elapsed().as_secs_f64()
        );
    }
    (0..count)
        .map(|i| {
            std::fs::read_to_string(path(i))
                .map_err(|e| format!("reading {}: {e}", path(i).display()).into())
        })
        .collect()
}

impl Population {
    /// `n` clients of `mix` (shuffled, so a client's algorithm does not follow its rank), each
    /// with a first token, sending to `url`.
    pub fn new(
        issuer: &TestIssuer,
        mix: &[(Algorithm, u32)],
        n: usize,
        zipf_s: f64,
        refresh: Duration,
        key_cache: &Path,
        url: String,
        seed: u64,
    ) -> Result<Self, BoxError> {
        let started = Instant::now();
        let mut rng = Rng::new(seed);
        let counts = apportion(mix, n);
        let rsa_needed: usize = counts
            .iter()
            .filter(|(a, _)| is_rsa(*a))
            .map(|(_, c)| c)
            .sum();
        let mut pems = rsa_keys(key_cache, rsa_needed)?.into_iter();
        let mut keys = Vec::with_capacity(n);
        for &(alg, count) in &counts {
            for _ in 0..count {
                let key = if is_rsa(alg) {
                    let pem = pems.next().ok_or("fewer RSA keys than needed")?;
                    ClientKey::from_pkcs8_pem(alg, &pem)?
                } else {
                    ClientKey::generate(alg)
                };
                keys.push(key);
            }
        }
        rng.shuffle(&mut keys);
        let refresh_s = refresh.as_secs_f64();
        let clients = keys
            .into_iter()
            .map(|key| Client {
                key,
                phase_s: rng.unit() * refresh_s,
                tokens: Vec::new(),
                used: 0,
            })
            .collect();
        let mut this = Self {
            clients,
            zipf: Zipf::new(n, zipf_s),
            refresh_s,
            url,
            rng,
        };
        for c in 0..n {
            this.token(issuer, c, 0)?;
        }
        println!(
            "load: {n} clients ({}) with their first tokens ready in {:.1} s; the busiest \
             client sends {:.2} % of the requests",
            counts
                .iter()
                .map(|(a, c)| format!("{c} {a}"))
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64(),
            100.0 * this.zipf.top_share()
        );
        Ok(this)
    }

    /// Client `c`'s token of refresh period `epoch` (minted, with the ones before, if new).
    fn token(&mut self, issuer: &TestIssuer, c: usize, epoch: usize) -> Result<&Token, BoxError> {
        let client = self.clients.get_mut(c).ok_or("no such client")?;
        while client.tokens.len() <= epoch {
            let text = issuer.token_for(client.key.jkt(), unix_now() + 3600);
            let auth = HeaderValue::try_from(format!("DPoP {text}"))?;
            client.tokens.push(Token { text, auth });
        }
        client.tokens.get(epoch).ok_or_else(|| "no token".into())
    }

    /// One request of client `c` at `t_s` seconds into the run: its headers, its algorithm,
    /// whether its token is new to the server.
    fn request(
        &mut self,
        issuer: &TestIssuer,
        c: usize,
        t_s: f64,
    ) -> Result<(Headers, Algorithm, bool), BoxError> {
        let phase = self.clients.get(c).ok_or("no such client")?.phase_s;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let epoch = ((phase + t_s.max(0.0)) / self.refresh_s).floor() as usize;
        let url = self.url.clone();
        let (proof, auth) = {
            let token = self.token(issuer, c, epoch)?;
            let auth = token.auth.clone();
            let text = token.text.clone();
            let client = self.clients.get(c).ok_or("no such client")?;
            (
                client.key.proof("GET", &url).access_token(&text).sign(),
                auth,
            )
        };
        let client = self.clients.get_mut(c).ok_or("no such client")?;
        let new = epoch >= client.used;
        client.used = client.used.max(epoch + 1);
        Ok((
            vec![
                (AUTHORIZATION, auth),
                (dpop(), HeaderValue::try_from(proof)?),
            ],
            client.key.alg(),
            new,
        ))
    }

    /// Every client's first request (a cold key and a new token), in a random order.
    pub fn first_requests(&mut self, issuer: &TestIssuer) -> Result<Plan, BoxError> {
        let minted_at = Instant::now();
        let mut order: Vec<usize> = (0..self.clients.len()).collect();
        self.rng.shuffle(&mut order);
        let mut plan = Plan {
            list: Vec::with_capacity(order.len()),
            meta: Vec::with_capacity(order.len()),
            capped: false,
            mint_secs: 0.0,
            minted_at,
        };
        for c in order {
            let (headers, alg, new) = self.request(issuer, c, 0.0)?;
            plan.list.push(headers);
            plan.meta.push((alg, new));
        }
        plan.mint_secs = minted_at.elapsed().as_secs_f64();
        Ok(plan)
    }

    /// `count` requests spread by the Zipf distribution, request `i` planned at
    /// `t0_s + i / rate` seconds into the run (which decides the token it uses); minting stops
    /// at `budget`.
    pub fn zipf_requests(
        &mut self,
        issuer: &TestIssuer,
        count: usize,
        rate: f64,
        t0_s: f64,
        budget: Duration,
    ) -> Result<Plan, BoxError> {
        let minted_at = Instant::now();
        let mut plan = Plan {
            list: Vec::with_capacity(count),
            meta: Vec::with_capacity(count),
            capped: false,
            mint_secs: 0.0,
            minted_at,
        };
        for i in 0..count {
            let c = self.zipf.sample(&mut self.rng);
            #[allow(clippy::cast_precision_loss)]
            let t = t0_s + i as f64 / rate;
            let (headers, alg, new) = self.request(issuer, c, t)?;
            plan.list.push(headers);
            plan.meta.push((alg, new));
            if i % 256 == 255 && minted_at.elapsed() >= budget {
                plan.capped = true;
                break;
            }
        }
        plan.mint_secs = minted_at.elapsed().as_secs_f64();
        Ok(plan)
    }

    /// The algorithms of the mix, for the floors.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self.clients.iter().map(|c| c.key.alg()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }
}

/// The floor of `list[range]` of `plan`, in CPU microseconds per request: the proof verify of
/// each request's algorithm plus an ES256 token verify per new token. `None` if a floor is
/// missing.
pub fn floor_us(
    plan: &Plan,
    range: std::ops::Range<usize>,
    floors: &crate::floor::Floors,
) -> Option<f64> {
    let (by_alg, new_tokens) = plan.counts(range);
    let mut total = 0.0;
    let mut n = 0u64;
    for (alg, count) in by_alg {
        #[allow(clippy::cast_precision_loss)]
        let add = floors.us(alg)? * count as f64;
        total += add;
        n += count;
    }
    #[allow(clippy::cast_precision_loss)]
    let tokens = floors.us(Algorithm::ES256)? * new_tokens as f64;
    #[allow(clippy::cast_precision_loss)]
    let per = (total + tokens) / n.max(1) as f64;
    Some(per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_gives_every_client_an_algorithm() {
        let mix = [
            (Algorithm::ES256, 50),
            (Algorithm::EdDSA, 40),
            (Algorithm::PS256, 10),
        ];
        let a = apportion(&mix, 10_001);
        assert_eq!(a.iter().map(|(_, c)| c).sum::<usize>(), 10_001);
        assert_eq!(a[2], (Algorithm::PS256, 1000));
    }
}
