#!/usr/bin/env bash
# Throughput and peak memory of file ingestion, on a generated ~300 MB event file.
#
#   Benchmarks/ingest.sh            # default 300 MB
#   SIZE_MB=1000 Benchmarks/ingest.sh
#
# Runs a release build of `sluice` on: CSV → blackhole (parse only), CSV → NDJSON,
# NDJSON → blackhole, NDJSON → NDJSON. Prints rows/s, input MB/s, CPU seconds and peak RSS
# (from /usr/bin/time). Absolute times on a shared machine are noise: compare ratios, and
# MB/s per CPU-second (user+sys) as the one-core figure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
SIZE_MB="${SIZE_MB:-300}"
WORK="${WORK:-bench-work}"
mkdir -p "$WORK"
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

echo "==> release build"
nice swift build -c release --product sluice 2>&1 | tail -1
BIN="$(swift build -c release --show-bin-path)/sluice"

for fmt in csv ndjson; do
    f="$WORK/events-${SIZE_MB}mb.$fmt"
    [ -f "$f" ] || python3 scripts/generate_events.py --size-mb "$SIZE_MB" --format "$fmt" --out "$f"
done

run_case() { # name input sink
    local name="$1" input="$2" sink="$3" dir="$WORK/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    cat > "$dir/p.yaml" <<YAML
state: $dir/state.db
pipelines:
  bench:
    source: { file: { path: $input } }
    sink: $sink
YAML
    [ "$sink" = "ndjson" ] && sed -i "s|sink: ndjson|sink: { ndjson: { path: $dir/out, max_file_size: 256MB } }|" "$dir/p.yaml"
    [ "$sink" = "blackhole" ] && sed -i "s|sink: blackhole|sink: { blackhole: {} }|" "$dir/p.yaml"
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time" "$BIN" run "$dir/p.yaml" --no-progress --log-level error
    read -r wall user sys rss_kb < "$dir/time"
    local bytes rows
    bytes=$(stat -c %s "$input")
    rows=$(( $(wc -l < "$input") - ( [[ "$input" == *.csv ]] && echo 1 || echo 0 ) ))
    python3 - "$name" "$bytes" "$rows" "$wall" "$user" "$sys" "$rss_kb" <<'PY'
import sys
name, b, rows, wall, user, sys_, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:7]), int(sys.argv[7])
cpu = user + sys_
mb = b / 1048576
print(f"{name:<22} rows={rows:>9,}  wall={wall:6.2f}s  cpu={cpu:6.2f}s  "
      f"{rows/wall:>10,.0f} rows/s  {mb/wall:7.1f} MB/s (wall)  {mb/cpu:7.1f} MB/s per CPU-s  peak RSS {rss/1024:6.1f} MB")
PY
}

echo "==> input: $(du -h "$WORK/events-${SIZE_MB}mb.csv" | cut -f1) CSV, $(du -h "$WORK/events-${SIZE_MB}mb.ndjson" | cut -f1) NDJSON"
run_case csv_to_blackhole "$WORK/events-${SIZE_MB}mb.csv" blackhole
run_case csv_to_ndjson "$WORK/events-${SIZE_MB}mb.csv" ndjson
run_case ndjson_to_blackhole "$WORK/events-${SIZE_MB}mb.ndjson" blackhole
run_case ndjson_to_ndjson "$WORK/events-${SIZE_MB}mb.ndjson" ndjson
