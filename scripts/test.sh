#!/usr/bin/env bash
# One command: install what is missing, build, run the whole test suite (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium: the real browser the dashboard tests load the page in (headless).
# gdb and procps (pgrep): the stall watchdog below prints the threads of a test process that
# stopped making progress. mariadb-server: the throwaway MariaDB of the MySQL CDC tests
# (scripts/mariadb-test-server.sh), with mariadb-binlog, their independent binlog reader.
export SLUICE_EXTRA_APT_PACKAGES="chromium gdb procps mariadb-server"
source scripts/setup.sh

echo "==> swift format (scripts/format.sh --check)"
scripts/format.sh --check

echo "==> swift build"
swift build 2>&1 | grep --line-buffered -vE "'swift-distributed-tracing'|unhandled; explicitly" || true
export SLUICE_BIN="$(swift build --show-bin-path)/sluice"
[ -x "$SLUICE_BIN" ] || { echo "error: the build failed" >&2; swift build; exit 1; }

# Every parser of outside bytes under libFuzzer (AddressSanitizer), a bounded run each; the long
# run is `scripts/fuzz.sh --seconds 600` (docs/guides/fuzzing.md).
echo "==> fuzz (bounded: every parser 10 s, debug build)"
scripts/fuzz.sh --debug --seconds 10

# Throwaway PostgreSQL and MariaDB servers for the database tests (stopped and deleted on exit).
source scripts/pg-test-server.sh
source scripts/mariadb-test-server.sh
trap 'pg_test_server_stop; mariadb_test_server_stop' EXIT

# The stall watchdog: when the tests print nothing for SLUICE_TEST_STALL_S seconds (default 600;
# the longest test prints its result within ~7 minutes on a loaded run), it prints every thread's
# stack of the test process, so a hang can be diagnosed from the CI log, and stops it, so the run
# fails at once instead of using up CI's time.
test_log="$(mktemp)"
stall_watchdog() {
    local limit="${SLUICE_TEST_STALL_S:-600}" age pid
    while sleep 20; do
        age=$(( $(date +%s) - $(stat -c %Y "$test_log") ))
        (( age < limit )) && continue
        pid="$(pgrep -f 'sluicePackageTests.xctest' | head -n 1 || true)"
        [ -n "$pid" ] || continue
        echo "==> no test output for ${age} s: the threads of the test process (pid $pid), then it is stopped" >&2
        timeout 120 gdb -p "$pid" -batch -ex "thread apply all bt 40" 2>&1 | grep -E '^(Thread|#)' | head -n 4000 >&2 || true
        pgrep -f "sluicePackageTests.xctest" | xargs -r kill -9
        return
    done
}

# At most six tests at once. Swift Testing starts every test at once by default: the end-to-end
# tests each run `sluice`, servers and checkers, and a full run on two cores reached a load of 56;
# tests then failed on time limits, kills that landed too late and leaders not elected in time.
# Six keeps the load near 10 and the run shorter (655 s against 785 s unbounded, same machine).
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-6}"

echo "==> swift test"
stall_watchdog &
watchdog=$!
set +e
swift test "$@" 2>&1 | grep --line-buffered -vE "'swift-distributed-tracing'|unhandled; explicitly" | tee "$test_log"
status="${PIPESTATUS[0]}"
kill "$watchdog" 2>/dev/null
rm -f "$test_log"
exit "$status"
