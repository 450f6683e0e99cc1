#!/usr/bin/env bash
# End-to-end load benchmark: examples/resource_server pinned to one core, the load generator
# (tools/load, a workspace member) pinned to another. Extra arguments go to the generator, e.g.
#   scripts/load.sh --duration 5 --connections 32 --target dpop     # one client, as fast as it goes
#   scripts/load.sh --mode realistic                                # 10 000 clients, mixed algorithms, Zipf
#   scripts/load.sh --mode realistic --clients 2000 --mix es256=1 --zipf 1.2 --refresh-minutes 1
#   scripts/load.sh --mode hostile                                  # every attack beside legitimate traffic
#   scripts/load.sh --mode hostile --attacks replay,cold-keys --duration 10
# Options and the summary lines (`load: ...`): tools/load/src/main.rs, docs/performance.md.
# The first realistic or hostile run generates RSA keys into target/load-keys (on every core).
# Environment: SERVER_CORE (default 0), CLIENT_CORE (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_CORE="${SERVER_CORE:-0}"
CLIENT_CORE="${CLIENT_CORE:-1}"

if ! command -v taskset >/dev/null; then
    echo "load.sh: taskset (util-linux) is required" >&2
    exit 1
fi
if [ "$(nproc --all)" -lt 2 ]; then
    echo "load.sh: needs at least 2 cores (server and generator on separate cores)" >&2
    exit 1
fi

cargo build --release -p tower-dpop --example resource_server
cargo build --release -p tower-dpop-load --bin load

echo "load.sh: nproc $(nproc), server core ${SERVER_CORE}, generator core ${CLIENT_CORE}"
exec taskset -c "${CLIENT_CORE}" target/release/load \
    --server-core "${SERVER_CORE}" \
    --server-bin target/release/examples/resource_server \
    "$@"
