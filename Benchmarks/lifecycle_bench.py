#!/usr/bin/env python3
"""Lifecycle work on a lake of the benchmark's events, partitioned by day, single-threaded,
against DuckDB doing the same rewrite; every row is checked with DuckDB afterwards.

- compaction: the pipeline writes many small files (`target_file_size: 1MB`); `sluice lifecycle
  run --compact` rewrites each partition's files into one, against DuckDB's
  `COPY (SELECT * FROM read_parquet([files])) TO … (FORMAT parquet, COMPRESSION zstd)` per
  partition (`SET threads = 1`); time, peak RSS and files before/after;
- tiering: bytes saved from zstd level 3 (the sink's default) to level 19, against DuckDB
  rewriting the same files at level 19 (`COMPRESSION_LEVEL 19`).

    python3 Benchmarks/lifecycle_bench.py [--size-mb 100] [--cases compact,tier]

Needs a release build (`swift build -c release --product sluice`) and `pip install duckdb`.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, ".build/release/sluice")


def du(path):
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))


def count(path):
    import duckdb
    return duckdb.sql(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{path}/**/*.parquet')").fetchall()[0]


def timed(args, cwd):
    """Runs `args` under /usr/bin/time; returns (seconds, peak RSS in MB)."""
    start = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return time.monotonic() - start, int(r.stderr.strip().splitlines()[-1]) / 1024


def make_lake(a, src, name, sink_options=""):
    """A fresh work directory `name` whose pipeline wrote `src` into `lake/`, partitioned by day;
    returns (work directory, lake)."""
    work = os.path.join(a.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "p.yaml"), "w") as f:
        f.write(f"""pipelines:
  events:
    source: {{ file: {{ path: "{src}" }} }}
    sink: {{ parquet: {{ path: lake, partition_by: "day(created_at)"{sink_options} }} }}
""")
    subprocess.run([SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "error"], cwd=work, check=True)
    return work, os.path.join(work, "lake")


def compaction(a, src):
    work, lake = make_lake(a, src, "compaction", ", target_file_size: 1MB")
    rows = count(lake)
    peer = os.path.join(work, "duckdb")
    shutil.copytree(lake, peer)
    files_before = len(glob.glob(os.path.join(lake, "**", "*.parquet"), recursive=True))
    before = du(lake)
    sluice_s, sluice_rss = timed(["taskset", "-c", "0", SLUICE, "lifecycle", "run", "-c", "p.yaml", "--compact", "--target-file-size", "1GB"], work)
    assert count(lake) == rows, (count(lake), rows)
    files_after = len(glob.glob(os.path.join(lake, "**", "*.parquet"), recursive=True))
    after = du(lake)
    # DuckDB: each partition's files into one, one thread, in a process of its own.
    script = (
        "import duckdb, glob, os, sys\n"
        "con = duckdb.connect(); con.execute('SET threads = 1')\n"
        "for d in sorted(glob.glob(os.path.join(sys.argv[1], '*/'))):\n"
        "    files = sorted(glob.glob(d + '*.parquet'))\n"
        "    con.execute(f\"COPY (SELECT * FROM read_parquet({files!r})) TO '{d}compacted.parquet.new' (FORMAT parquet, COMPRESSION zstd)\")\n"
        "    for f in files: os.remove(f)\n"
        "    os.rename(d + 'compacted.parquet.new', d + 'compacted.parquet')\n"
    )
    duck_s, duck_rss = timed(["taskset", "-c", "0", sys.executable, "-c", script, peer], work)
    assert count(peer) == rows, (count(peer), rows)
    duck_after = du(peer)
    mb = lambda b: b / 1e6
    print(f"compaction: {rows[0]} rows, {files_before} files ({mb(before):.1f} MB) in {len(glob.glob(os.path.join(lake, '*/')))} partitions")
    print(f"{'':8} {'files':>6} {'MB after':>9} {'seconds':>8} {'peak RSS MB':>12}")
    print(f"{'sluice':8} {files_after:6} {mb(after):9.1f} {sluice_s:8.2f} {sluice_rss:12.0f}")
    print(f"{'duckdb':8} {len(glob.glob(os.path.join(peer, '**', '*.parquet'), recursive=True)):6} {mb(duck_after):9.1f} {duck_s:8.2f} {duck_rss:12.0f}")
    print(f"sluice throughput / duckdb: {duck_s / sluice_s:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=100)
    ap.add_argument("--cases", default="compact,tier")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench-work"))
    a = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("no release build: run `swift build -c release --product sluice`")
    os.makedirs(a.work, exist_ok=True)
    src = os.path.join(a.work, "events-%gmb.csv" % a.size_mb)
    if not os.path.exists(src):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/generate_events.py"), "--size-mb", str(a.size_mb), "--format", "csv", "--out", src], check=True)
    cases = a.cases.split(",")
    if "compact" in cases:
        compaction(a, src)
    if "tier" in cases:
        tiering(a, src)


def tiering(a, src):
    work, lake = make_lake(a, src, "lifecycle")
    rows = count(lake)
    peer = os.path.join(work, "duckdb")
    shutil.copytree(lake, peer)
    old = time.time() - 40 * 86400
    for f in glob.glob(os.path.join(lake, "**", "*.parquet"), recursive=True):
        os.utime(f, (old, old))
    before = du(lake)
    start = time.monotonic()
    subprocess.run(["taskset", "-c", "0", SLUICE, "lifecycle", "run", "-c", "p.yaml", "--tier-after", "30d", "--json"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    sluice_s = time.monotonic() - start
    after = du(lake)
    assert count(lake) == rows, (count(lake), rows)
    # DuckDB: each file rewritten at level 19, one thread.
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 1")
    files = glob.glob(os.path.join(peer, "**", "*.parquet"), recursive=True)
    start = time.monotonic()
    for f in files:
        con.execute(f"COPY (SELECT * FROM read_parquet('{f}')) TO '{f}.z19' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19)")
    duck_s = time.monotonic() - start
    duck_after = sum(os.path.getsize(f + ".z19") for f in files)
    mb = lambda b: b / 1e6
    print(f"lake: {rows[0]} rows, {len(files)} files, {mb(before):.1f} MB at zstd level 3")
    print(f"{'':8} {'MB after':>9} {'saved':>7} {'seconds':>8}")
    print(f"{'sluice':8} {mb(after):9.1f} {100 * (1 - after / before):6.1f}% {sluice_s:8.2f}")
    print(f"{'duckdb':8} {mb(duck_after):9.1f} {100 * (1 - duck_after / before):6.1f}% {duck_s:8.2f}")
    print(f"sluice / duckdb time: {sluice_s / duck_s:.2f}x")


if __name__ == "__main__":
    main()
