#!/usr/bin/env bash
# Builds the libFuzzer harnesses (Fuzz/) and runs each for a bounded time; fails on a crash, a
# hang (an input slower than the timeout), or running out of memory, and prints the reproducer.
#
#   scripts/fuzz.sh --debug --seconds 10  # every target, 10 s each (what CI runs)
#   scripts/fuzz.sh --seconds 600         # the long run (release build: 2-3x the executions)
#   scripts/fuzz.sh --seconds 3600 FuzzParquet FuzzCSV
#   scripts/fuzz.sh --build-only
#
# Linux only (libFuzzer ships with the Swift toolchain there). New corpus entries and crash
# artifacts go to a temporary directory (kept and printed on failure; SLUICE_FUZZ_WORK sets it),
# never into the repository: add a crash's reproducer to Fuzz/Regressions/<Target>/ once fixed.
# The build goes to .build-fuzz (SLUICE_FUZZ_BUILD sets it), apart from the main build.
# See docs/guides/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

all_targets=(FuzzCSV FuzzNDJSON FuzzPushSplitter FuzzParquet FuzzPgOutput FuzzNATS FuzzMySQL FuzzYAML)
seconds=30
build_only=0
config=release
targets=()
while (($#)); do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --build-only) build_only=1; shift ;;
    # A debug build: half the clean build time (about 3 minutes instead of 5.5 on 2 cores, for
    # CI), a half to a third of the executions per second, and the parsers' assertions on.
    --debug) config=debug; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    Fuzz*) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (targets: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (targets: ${all_targets[*]})" >&2; exit 2; }
done

scratch="${SLUICE_FUZZ_BUILD:-$root/.build-fuzz}"
# The same dependency versions as the main build.
[ -f Fuzz/Package.resolved ] || [ ! -f Package.resolved ] || cp Package.resolved Fuzz/Package.resolved
build=(swift build -c "$config" --package-path Fuzz --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address)
# SwiftPM replans a build when the root package changes, not when a file is added to the main
# package it depends on by path: without its build manifest it plans again (a few seconds).
rm -f "$scratch/$config.yaml"
echo "==> building the fuzz harnesses ($config: ${targets[*]})"
start=$(date +%s)
# A failed build stops here: binaries of an earlier build must not be fuzzed instead.
quiet() { grep -vE "ld.gold: warning|'swift-distributed-tracing'|unhandled; explicitly" || true; }
if ((${#targets[@]} == ${#all_targets[@]})); then
    "${build[@]}" 2>&1 | quiet
    ((PIPESTATUS[0] == 0)) || { echo "fuzz.sh: the build failed" >&2; exit 1; }
else
    for t in "${targets[@]}"; do
        "${build[@]}" --product "$t" 2>&1 | quiet
        ((PIPESTATUS[0] == 0)) || { echo "fuzz.sh: the build of $t failed" >&2; exit 1; }
    done
fi
bin="$("${build[@]}" --show-bin-path)"
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || { echo "fuzz.sh: the build failed ($bin/$t is missing)" >&2; exit 1; }
done
echo "    built in $(($(date +%s) - start)) s"
((build_only)) && exit 0

work="${SLUICE_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")}"
mkdir -p "$work"
# Leaks are not failures here: the harnesses look for crashes, hangs and unbounded memory.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}"

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "$work/artifacts"
    log="$work/$t.log"
    seeds=("Fuzz/Corpus/$t")
    [ -d "Fuzz/Regressions/$t" ] && seeds+=("Fuzz/Regressions/$t")
    dict=()
    [ -f "Fuzz/Dictionaries/$t.dict" ] && dict=("-dict=Fuzz/Dictionaries/$t.dict")
    echo "==> $t: ${seconds} s"
    set +e
    "$bin/$t" "$corpus" "${seeds[@]}" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" >"$log" 2>&1
    status=$?
    set -e
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)"
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
    units="$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")"
    result=ok
    if ((status != 0)); then
        failed=1
        if grep -q "ERROR: libFuzzer: timeout" "$log"; then result=HANG
        elif grep -qE "ERROR: libFuzzer: (out-of-memory|malloc)" "$log"; then result=OOM
        else result=CRASH; fi
        echo "    $t: $result (exit $status); from its log ($log):"
        if grep -qE "^\*\*\* Swift runtime failure|^Fatal error|Swift/.*: Fatal error|crashed:$" "$log"; then
            # A Swift trap: the message and the crashed thread's frames (what follows is noise
            # from the backtracer running under AddressSanitizer).
            grep -m 1 -A 24 -E "^\*\*\* Swift runtime failure|Fatal error" "$log" | sed 's/^/    | /'
        else
            grep -vE "^(#[0-9]+|INFO:|MS:|base unit:|stat::|0x)" "$log" | tail -n 40 | sed 's/^/    | /'
        fi
        artifact="$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)"
        [ -n "$artifact" ] && echo "    reproducer: $artifact (replay: $bin/$t $artifact)"
    fi
    rows+=("$(printf '%-17s %11s %9s %7s %8s %7s %8s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${units:-?}" "${rss:-?}" "$result")")
done

echo
echo "==> fuzzing summary ($config build, ${seconds} s per target; exec/s is the average over the run)"
printf '%-17s %11s %9s %7s %8s %7s %8s  %s\n' target execs exec/s cov features corpus rss_mb result
printf '%s\n' "${rows[@]}"
if ((failed)); then
    echo "fuzz.sh: a target failed; its log, artifacts and corpus are in $work" >&2
    exit 1
fi
rm -rf "$work"
