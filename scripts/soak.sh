#!/usr/bin/env bash
# Soak and chaos run: two instances of the layer sharing one Redis behind one public origin,
# under many clients, while Redis is killed and restarted, the authorization server's signing
# key and the nonce secret rotate, the JWKS endpoint fails and hangs, and one instance's clock
# jumps (tools/soak, a workspace member). Prints one summary line; exits non-zero when an
# invariant breaks. Arguments go to the soak binary:
#   scripts/soak.sh [--seconds N] [--clients N] [--workers N] [--redis-persistence aof|none]
# Environment: SOAK_PROFILE=release (default) or dev (what .ci/run uses: no release build).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
    echo "soak.sh: redis-server is required (apt-get install redis-server)" >&2
    exit 2
fi

profile="${SOAK_PROFILE:-release}"
case "$profile" in
    release) cargo build --locked --release -p tower-dpop-soak --bin soak; bin=target/release/soak ;;
    dev) cargo build --locked -p tower-dpop-soak --bin soak; bin=target/debug/soak ;;
    *) echo "soak.sh: SOAK_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac

echo "soak.sh: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), profile $profile, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >&2
exec "$bin" "$@"
