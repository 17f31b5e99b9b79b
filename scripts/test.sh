#!/usr/bin/env bash
# One command: install what is missing, build, run the whole test suite (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium: the real browser the dashboard tests load the page in (headless).
export SLUICE_EXTRA_APT_PACKAGES="chromium"
source scripts/setup.sh

echo "==> swift format (scripts/format.sh --check)"
scripts/format.sh --check

echo "==> swift build"
swift build 2>&1 | grep --line-buffered -vE "'swift-distributed-tracing'|unhandled; explicitly" || true
export SLUICE_BIN="$(swift build --show-bin-path)/sluice"
[ -x "$SLUICE_BIN" ] || { echo "error: the build failed" >&2; swift build; exit 1; }

# A throwaway PostgreSQL server for the database tests (stopped and deleted on exit).
source scripts/pg-test-server.sh
trap pg_test_server_stop EXIT

echo "==> swift test"
set +e
swift test "$@" 2>&1 | grep --line-buffered -vE "'swift-distributed-tracing'|unhandled; explicitly"
status="${PIPESTATUS[0]}"
exit "$status"
