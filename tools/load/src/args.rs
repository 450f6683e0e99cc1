//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use tower_dpop::Algorithm;

/// The usage text printed on a bad option.
pub const USAGE: &str = "usage: load [--mode classic|realistic|hostile] [options]
  common:    --connections N --duration S --warmup N --server-core K --server-bin PATH
             --raw-seconds S --seed N
  classic:   --proofs N --rate R --target dpop|health|both
  realistic: --clients N --mix es256=50,eddsa=40,ps256=10 --zipf S --refresh-minutes M
             --key-cache DIR
  hostile:   (the realistic options) --attacks LIST --capacity R --attacker-alg ALG
       load raw-verify [--alg es256|eddsa|ps256|...] [--seconds S]";

/// Which workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One client key, one token, unique ES256 proofs; then `/health`; then the raw floor.
    Classic,
    /// Many clients, mixed algorithms, Zipf-distributed, tokens refreshed.
    Realistic,
    /// Legitimate clients at half capacity beside each attack at the same rate.
    Hostile,
}

/// What the classic mode measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSel {
    Dpop,
    Health,
    Both,
}

/// Every option; the mode-specific ones are ignored by the other modes.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub connections: usize,
    /// `None`: the mode's default (classic 10 s, realistic 20 s, hostile 6 s per mix).
    pub duration: Option<Duration>,
    pub proofs: Option<usize>,
    pub rate: Option<f64>,
    /// `None`: the mode's default (classic 500, realistic 2 000, hostile 0).
    pub warmup: Option<usize>,
    pub server_core: usize,
    pub server_bin: PathBuf,
    pub target: TargetSel,
    pub raw_seconds: f64,
    pub seed: u64,
    pub clients: usize,
    pub mix: Vec<(Algorithm, u32)>,
    pub zipf: f64,
    pub refresh_minutes: f64,
    pub key_cache: PathBuf,
    pub attacks: Vec<String>,
    pub capacity: Option<f64>,
    pub attacker_alg: Algorithm,
}

/// The default algorithm mix of the realistic and hostile modes (per cent of the clients).
pub const DEFAULT_MIX: &str = "es256=50,eddsa=40,ps256=10";

/// Parses `es256=50,eddsa=40,ps256=10` (weights, not necessarily summing to 100).
pub fn parse_mix(s: &str) -> Result<Vec<(Algorithm, u32)>, String> {
    let mut mix = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix entry {part:?} is not alg=weight"))?;
        let alg = parse_alg(name)?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|e| format!("--mix weight {weight:?}: {e}"))?;
        if weight > 0 {
            mix.push((alg, weight));
        }
    }
    if mix.is_empty() {
        return Err("--mix names no algorithm with a positive weight".into());
    }
    Ok(mix)
}

/// An algorithm by its JOSE name, case-insensitive (`es256`, `EdDSA`, `ps256`, ...).
pub fn parse_alg(name: &str) -> Result<Algorithm, String> {
    Algorithm::ALL
        .iter()
        .copied()
        .find(|a| a.as_str().eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| format!("unknown algorithm {name:?}"))
}

/// The mix as `es256:50,eddsa:40,ps256:10` (no `=`, so it fits a `key=value` summary line).
pub fn mix_label(mix: &[(Algorithm, u32)]) -> String {
    mix.iter()
        .map(|(a, w)| format!("{}:{w}", a.as_str().to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            mode: Mode::Classic,
            connections: 64,
            duration: None,
            proofs: None,
            rate: None,
            warmup: None,
            server_core: 0,
            server_bin: PathBuf::from("target/release/examples/resource_server"),
            target: TargetSel::Both,
            raw_seconds: 3.0,
            seed: 1,
            clients: 10_000,
            mix: parse_mix(DEFAULT_MIX)?,
            zipf: 1.0,
            refresh_minutes: 5.0,
            key_cache: PathBuf::from("target/load-keys"),
            attacks: Vec::new(),
            capacity: None,
            attacker_alg: Algorithm::ES256,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                return Err("help requested".into());
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value:?}: {e}");
            let positive = |v: f64, what: &str| {
                if v > 0.0 && v.is_finite() {
                    Ok(v)
                } else {
                    Err(format!("{flag} must be a positive {what}"))
                }
            };
            match flag.as_str() {
                "--mode" => {
                    o.mode = match value {
                        "classic" => Mode::Classic,
                        "realistic" => Mode::Realistic,
                        "hostile" => Mode::Hostile,
                        _ => return Err(bad(&"expected classic, realistic or hostile")),
                    }
                }
                "--connections" => {
                    o.connections = value.parse().map_err(|e| bad(&e))?;
                    if o.connections == 0 {
                        return Err("--connections must be at least 1".into());
                    }
                }
                "--duration" => {
                    let s = positive(value.parse().map_err(|e| bad(&e))?, "number of seconds")?;
                    if s >= 3600.0 {
                        return Err("--duration must be under an hour".into());
                    }
                    o.duration = Some(Duration::from_secs_f64(s));
                }
                "--proofs" => o.proofs = Some(value.parse().map_err(|e| bad(&e))?),
                "--rate" => o.rate = Some(positive(value.parse().map_err(|e| bad(&e))?, "rate")?),
                "--warmup" => o.warmup = Some(value.parse().map_err(|e| bad(&e))?),
                "--server-core" => o.server_core = value.parse().map_err(|e| bad(&e))?,
                "--server-bin" => o.server_bin = PathBuf::from(value),
                "--target" => {
                    o.target = match value {
                        "dpop" => TargetSel::Dpop,
                        "health" => TargetSel::Health,
                        "both" => TargetSel::Both,
                        _ => return Err(bad(&"expected dpop, health or both")),
                    }
                }
                "--raw-seconds" => {
                    o.raw_seconds = value.parse().map_err(|e| bad(&e))?;
                    if !(o.raw_seconds >= 0.0 && o.raw_seconds < 600.0) {
                        return Err("--raw-seconds must be between 0 and 600".into());
                    }
                }
                "--seed" => o.seed = value.parse().map_err(|e| bad(&e))?,
                "--clients" => {
                    o.clients = value.parse().map_err(|e| bad(&e))?;
                    if o.clients == 0 || o.clients > 1_000_000 {
                        return Err("--clients must be between 1 and 1 000 000".into());
                    }
                }
                "--mix" => o.mix = parse_mix(value)?,
                "--zipf" => {
                    o.zipf = value.parse().map_err(|e| bad(&e))?;
                    if !(o.zipf >= 0.0 && o.zipf <= 5.0) {
                        return Err("--zipf must be between 0 (uniform) and 5".into());
                    }
                }
                "--refresh-minutes" => {
                    o.refresh_minutes =
                        positive(value.parse().map_err(|e| bad(&e))?, "number of minutes")?;
                }
                "--key-cache" => o.key_cache = PathBuf::from(value),
                "--attacks" => {
                    o.attacks = value
                        .split(',')
                        .map(|a| a.trim().to_owned())
                        .filter(|a| !a.is_empty())
                        .collect();
                }
                "--capacity" => {
                    o.capacity = Some(positive(value.parse().map_err(|e| bad(&e))?, "rate")?);
                }
                "--attacker-alg" => o.attacker_alg = parse_alg(value)?,
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }

    /// The measured run's length (per mix in the hostile mode).
    pub fn duration(&self) -> Duration {
        self.duration.unwrap_or(match self.mode {
            Mode::Classic => Duration::from_secs(10),
            Mode::Realistic => Duration::from_secs(20),
            Mode::Hostile => Duration::from_secs(6),
        })
    }

    /// Uncounted requests before the measured run.
    pub fn warmup(&self) -> usize {
        self.warmup.unwrap_or(match self.mode {
            Mode::Classic => 500,
            Mode::Realistic => 2_000,
            Mode::Hostile => 0,
        })
    }

    /// Proofs the classic mode mints, warm-up included.
    pub fn proof_count(&self) -> usize {
        match (self.proofs, self.rate) {
            (Some(n), _) => n,
            (None, Some(rate)) => {
                // Truncation is fine: this is an estimate with 10 % headroom.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = (rate * self.duration().as_secs_f64() * 1.1).ceil() as usize;
                n + self.warmup()
            }
            (None, None) => 200_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn mix_weights_and_names() {
        assert_eq!(
            parse_mix("es256=50, EdDSA=40,ps256=10,rs256=0").unwrap(),
            vec![
                (Algorithm::ES256, 50),
                (Algorithm::EdDSA, 40),
                (Algorithm::PS256, 10)
            ]
        );
        assert!(parse_mix("es256").is_err());
        assert!(parse_mix("hs256=1").is_err());
        assert!(parse_mix("es256=0").is_err());
        assert_eq!(
            mix_label(&parse_mix(DEFAULT_MIX).unwrap()),
            "es256:50,eddsa:40,ps256:10"
        );
    }

    #[test]
    fn defaults_follow_the_mode() {
        let classic = parse(&[]).unwrap();
        assert_eq!(classic.mode, Mode::Classic);
        assert_eq!(classic.duration(), Duration::from_secs(10));
        assert_eq!(classic.warmup(), 500);
        let realistic = parse(&["--mode", "realistic"]).unwrap();
        assert_eq!(realistic.duration(), Duration::from_secs(20));
        assert_eq!(realistic.clients, 10_000);
        assert_eq!(realistic.zipf, 1.0);
        assert_eq!(realistic.refresh_minutes, 5.0);
        let hostile = parse(&["--mode", "hostile", "--duration", "4", "--warmup", "7"]).unwrap();
        assert_eq!(hostile.duration(), Duration::from_secs(4));
        assert_eq!(hostile.warmup(), 7);
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--mode", "fast"][..],
            &["--clients", "0"],
            &["--zipf", "-1"],
            &["--refresh-minutes", "0"],
            &["--connections", "0"],
            &["--duration", "7200"],
            &["--attacker-alg", "none"],
            &["--clients"],
            &["--frobnicate", "1"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
