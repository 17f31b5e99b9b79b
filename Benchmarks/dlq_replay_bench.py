#!/usr/bin/env python3
"""Dead-letter replay throughput against the pipeline's normal throughput on the same rows.

N NDJSON rows whose `amount` has more decimals than the declared column: a first run
dead-letters every one of them. Then the column is fixed and:

  replay  `sluice dlq replay` sends the N dead letters through the fixed pipeline (Parquet);
  normal  the fixed pipeline ingests the same N rows from the file, fresh state.

Wall time, rows/s, CPU time and peak RSS of each; the goal is replay >= 0.5x normal. The lake
is checked with DuckDB (every row once).

    python3 Benchmarks/dlq_replay_bench.py [--rows 1000000]

Needs a release build (`swift build -c release --product sluice`) and `pip install duckdb`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, ".build/release/sluice")


def config(amount):
    return f"""pipelines:
  p:
    source: {{ file: {{ path: "in/*.ndjson", format: ndjson, columns: {{ id: int64, amount: "{amount}" }} }} }}
    sink: {{ parquet: {{ path: lake, compression: zstd }} }}
"""


def timed(args, cwd):
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if status != 0:
        sys.exit(f"{' '.join(args)} failed: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def lake_rows(cwd):
    import duckdb
    return duckdb.sql(f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{cwd}/lake/*.parquet', union_by_name=true)").fetchall()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: swift build -c release --product sluice")
    work = tempfile.mkdtemp(prefix="sluice-replay-bench-")
    try:
        os.makedirs(f"{work}/in")
        with open(f"{work}/in/rows.ndjson", "w") as f:
            for i in range(1, a.rows + 1):
                f.write(f'{{"id":{i},"amount":"{i}.125","note":"row {i} of the benchmark"}}\n')
        with open(f"{work}/p.yaml", "w") as f:
            f.write(config("decimal(12,2)"))
        wall, cpu, rss, _ = timed([SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "error"], work)
        print(f"first run: {a.rows} rows dead-lettered in {wall:.1f} s")
        with open(f"{work}/p.yaml", "w") as f:
            f.write(config("decimal(12,3)"))
        rwall, rcpu, rrss, out = timed([SLUICE, "dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--no-progress", "--log-level", "error"], work)
        print(out.strip())
        replayed = lake_rows(work)
        # The same rows through the fixed pipeline, from a fresh state.
        for d in ("lake", ".sluice"):
            shutil.rmtree(f"{work}/{d}", ignore_errors=True)
        nwall, ncpu, nrss, _ = timed([SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "error"], work)
        normal = lake_rows(work)
        print(f"{'':8} {'wall s':>8} {'rows/s':>10} {'cpu s':>7} {'peak RSS MB':>12}  lake (rows, distinct ids)")
        print(f"{'replay':8} {rwall:8.2f} {a.rows / rwall:10.0f} {rcpu:7.2f} {rrss:12.0f}  {replayed}")
        print(f"{'normal':8} {nwall:8.2f} {a.rows / nwall:10.0f} {ncpu:7.2f} {nrss:12.0f}  {normal}")
        print(f"replay / normal throughput: {nwall / rwall:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
