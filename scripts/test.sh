#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then checks formatting and
# lints, builds the release binaries and the panel bundle, and runs every test: unit and
# integration tests (SQLite), the service and fault tests again on PostgreSQL, the data-plane
# interop tests with ss-local / ss-tunnel / sslocal, and the Playwright suite in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH" RUSTC=/usr/bin/rustc
step() { printf '\n== %s (at %d s) ==\n' "$*" "$SECONDS"; }

step setup
scripts/setup.sh

step format
cargo fmt --all -- --check

step "clippy (ssr and hydrate)"
# `app` with `ssr` is linted here, in the same build as the server that uses it (server
# functions and app/src/ssr.rs); with `hydrate` below.
cargo clippy --release -p xray -p engine -p migration -p manager -p node -p server -p daemon -p testkit -p rules -p site -p subscription -p app --features app/ssr --all-targets -- -D warnings
cargo clippy --release -p app --features hydrate,every-bundle -- -D warnings

step "build (panel bundles, then the release binaries that embed them)"
scripts/build-site.sh
cargo build --release -p server -p node

step "self-contained manager (panel bundles built in)"
# arch-manager from a directory with no target/site in reach must serve the bundle it embeds.
scripts/check-embedded-site.sh

step "tests (SQLite)"
# A test that hangs fails the run after this long instead of holding CI until its own limit.
bounded() { timeout --kill-after=10 "${ARCH_TEST_STEP_LIMIT:-1500}" "$@" || {
  rc=$?; [ "$rc" -ge 124 ] && echo "error: '$*' did not finish within ${ARCH_TEST_STEP_LIMIT:-1500} s" >&2; exit "$rc"; }; }
bounded cargo test --release --workspace --exclude frontend

step "service and fault tests (PostgreSQL)"
pg_url=$(scripts/postgres.sh start)
trap 'scripts/postgres.sh stop' EXIT
# Same package selection as above, so cargo resolves the same features and rebuilds nothing.
ARCH_TEST_DATABASE_URL=$pg_url bounded cargo test --release --workspace --exclude frontend --test services --test faults

step "end-to-end (Playwright, Chromium)"
(cd end2end && npx playwright test)

echo
echo "artifacts:"
echo "  end2end/test-results/screenshots/  $(find end2end/test-results/screenshots -name '*.png' 2>/dev/null | wc -l) page screenshots (light and dark, 1280 and 375 px)"
echo "  end2end/playwright-report/index.html  the Playwright report"
echo "all tests passed in $SECONDS s"
