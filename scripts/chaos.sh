#!/usr/bin/env bash
# The chaos suite: the tests that inject faults a production deployment meets (kill -9 at random
# moments, PostgreSQL stopped mid-run (under a pull and under CDC → apply), a full disk (a lake,
# a push lake, the SQLite state), nats-server killed, a JetStream node lost or partitioned,
# a slow sink, a stop that must be bounded) and check the output exactly each time. A short
# run of each is part of scripts/test.sh (CI); this runs only them, again and again:
#
#   scripts/chaos.sh              # one round
#   scripts/chaos.sh --rounds 20  # a long run: 20 rounds, stops at the first failing one
#
# It prints what each round injected and checked (the tests' "chaos:" lines) and a total.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$rounds" -ge 1 ] 2>/dev/null || { echo "error: --rounds takes a positive number" >&2; exit 2; }

suites='PostgresOutageTests|DiskFullTests|NATSOutageTests|SlowSinkTests|BoundedStopTests|JetStreamClusterTests|CrashRecoveryTests|PostgresCrashTests|PushCrashTests|JetStreamScaleOutTests|CDCApplyOutageTests|PushDiskFullTests|JetStreamPartitionTests|CDCJetStreamSnapshotCrashTests|ObjectStorageReplayTests|DLQReplayTests|FileTailCrashTests'

export SLUICE_EXTRA_APT_PACKAGES="chromium gdb procps"
source scripts/setup.sh
swift build --build-tests > "${TMPDIR:-/tmp}/sluice-chaos-build.log" 2>&1 \
    || { grep -E "error:" "${TMPDIR:-/tmp}/sluice-chaos-build.log" >&2; echo "error: the build failed" >&2; exit 1; }
export SLUICE_BIN="$(swift build --show-bin-path)/sluice"
source scripts/pg-test-server.sh
trap pg_test_server_stop EXIT

log="$(mktemp)"
for round in $(seq "$rounds"); do
    echo "==> chaos round $round of $rounds"
    set +e
    swift test --skip-build --filter "$suites" 2>&1 | tee -a "$log" | grep --line-buffered -E "^chaos:|push crash test:|✘|Test run with"
    status="${PIPESTATUS[0]}"
    set -e
    # A crashed test process prints no failing test: its exit status says it.
    if [ "$status" -ne 0 ] || grep -q "✘ Test run" "$log"; then
        echo "==> round $round failed (exit status $status); the log is in $log" >&2
        exit 1
    fi
done
faults=$(grep -c "^chaos:" "$log" || true)
[ "$faults" -gt 0 ] || { echo "error: no chaos scenario ran (the filter matched nothing?); the log is in $log" >&2; exit 1; }
echo "==> $rounds round(s) passed; $faults fault scenarios checked exactly (log: $log)"
