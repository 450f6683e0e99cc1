#!/usr/bin/env bash
# Runs one cargo-fuzz (libFuzzer) target for a while on the stable toolchain.
#
#   scripts/fuzz.sh <target> <seconds> [extra libFuzzer flags...]
#   scripts/fuzz.sh list
#
# Targets: verify_request, htu, thumbprint, nonce, jwks, redis_key, discovery (see fuzz/fuzz_targets/).
#
# cargo-fuzz builds with `-Zsanitizer=address` and other unstable flags, which stable rustc
# refuses. RUSTC_BOOTSTRAP=1 lets the stable compiler accept them; no nightly is needed:
#
#   cargo install cargo-fuzz        # once
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a <target> corpus/<target> -- -max_total_time=<s>
#   (run from fuzz/)
#
# A crash is written to fuzz/artifacts/<target>/crash-*; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/crash-...
# New corpus entries land in fuzz/corpus/<target>/; minimize with `cargo fuzz cmin` before committing
# them (the seed-* files are the hand-made seeds; cmin renames files, so restore those after it).
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

if [[ "${1:-}" == "list" ]]; then
    exec env RUSTC_BOOTSTRAP=1 cargo fuzz list
fi
if [[ $# -lt 2 ]]; then
    echo "usage: $0 <target> <seconds> [libFuzzer flags...] | $0 list" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 1
}

mkdir -p "corpus/$target"
# Optimized build with debug assertions on (-a), so integer overflow and debug_assert! fail
# as crashes; AddressSanitizer (the cargo-fuzz default) checks the unsafe code in dependencies.
exec env RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "$@"
