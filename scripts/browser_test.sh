#!/usr/bin/env bash
# The browser test: examples/spa in the system's headless Chromium, driven by
# tests/browser/run.mjs (playwright-core, pinned by tests/browser/package-lock.json).
# Builds the example, installs the test's npm packages with `npm ci`, runs the test, and saves
# the page's screenshot to target/browser/spa.png (SPA_SCREENSHOT overrides; the one in
# docs/browsers/spa.png is a copy of such a run).
#
# Without Chromium or Node.js it prints why and exits 0, unless CI=true, where it fails.
# Environment: CHROMIUM (the browser; default: `chromium` on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "browser test: $1; required under CI=true" >&2
    exit 1
  fi
  echo "browser test SKIPPED: $1"
  exit 0
}

chromium="${CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
  skip "no Chromium found (apt-get install chromium, or set CHROMIUM=/path/to/chromium)"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  skip "no Node.js and npm found (Node.js 20 or later)"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  skip "Node.js $(node --version) is too old (20 or later)"
fi

echo "browser test: building examples/spa"
cargo build --locked --all-features --example spa
spa_bin="${CARGO_TARGET_DIR:-target}/debug/examples/spa"

echo "browser test: npm ci in tests/browser"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "browser test: $("$chromium" --version 2>/dev/null || echo "$chromium"), node $(node --version)"
SPA_BIN="$(realpath "$spa_bin")" CHROMIUM="$chromium" node tests/browser/run.mjs
