#!/usr/bin/env bash
# One command: install what is missing, build and install sluice (release), generate sample data,
# run examples/quickstart.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

# A release build, installed with its completions and man page (scripts/install.sh says where).
scripts/install.sh
BIN="$(swift build -c release --show-bin-path)/sluice"

echo "==> generating sample data in data/quickstart (deterministic)"
python3 scripts/generate_events.py --rows 200000 --format csv --bad-every 50000 --out data/quickstart/events-1.csv >/dev/null
python3 scripts/generate_events.py --rows 200000 --format csv --start-id 150000 --seed 8 --out data/quickstart/events-2.csv >/dev/null
python3 scripts/generate_events.py --rows 100000 --format ndjson --seed 9 --bad-every 40000 --out data/quickstart/clicks.ndjson >/dev/null
gzip -kf data/quickstart/clicks.ndjson && rm -f data/quickstart/clicks.ndjson

echo "==> sluice validate examples/quickstart.yaml"
"$BIN" validate examples/quickstart.yaml
echo "==> sluice run examples/quickstart.yaml"
"$BIN" run examples/quickstart.yaml
echo
echo "==> output"
find out/quickstart -name "*.parquet" | sort | sed -n 1,3p; echo "  … $(find out/quickstart -name "*.parquet" | wc -l) Parquet files"
printf '  out/quickstart/clicks: %s lines of NDJSON\n' "$(cat out/quickstart/clicks/*.ndjson | wc -l)"
echo "==> the lake, queried with DuckDB (partition directories become a column):"
echo "    SELECT created_at_day, count(*), round(sum(amount)) FROM read_parquet('out/quickstart/lake/events/*/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 1"
python3 - <<'PY'
import duckdb
print(duckdb.sql("SELECT created_at_day, count(*) AS events, round(sum(amount)) AS amount FROM read_parquet('out/quickstart/lake/events/*/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 1"))
PY
echo "==> one file's footer (sluice inspect)"
"$BIN" inspect "$(find out/quickstart/lake -name '*.parquet' | sort | sed -n 1p)" --row-groups 0
echo "==> dead-letter queue (sluice dlq list)"
"$BIN" dlq list --limit 10
echo
echo "Run it again: nothing new is read (each file is ingested once). Next: README.md, 'sluice --help', 'man sluice'."
