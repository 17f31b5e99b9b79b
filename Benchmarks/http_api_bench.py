#!/usr/bin/env python3
"""HTTP API pull benchmark: Sluice's `http_api` source against dlt's `rest_api` source.

Both pull the same items from the same local test API (`scripts/test_api_server.py`, Link-header
pagination, --per-page records a page) and write Parquet. It prints records/s of each, the
ratio, Sluice's peak RSS, and that both wrote every record. Then, with --latency-ms of server
latency a page, it measures Sluice alone (one page in flight: the ceiling is per_page / latency).

    python3 Benchmarks/http_api_bench.py [--items 1000000] [--per-page 1000] [--latency-ms 50]

Needs a release build (`swift build -c release --product sluice`, or SLUICE_BIN), pyarrow, and
dlt with Parquet support (`pip install "dlt[parquet]"`). The API server, Sluice and dlt share
this machine's cores: absolute numbers are noise, the ratio is the result.
"""
import argparse
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "scripts", "test_api_server.py")


def start_server(items, latency_ms=0):
    p = subprocess.Popen([sys.executable, SERVER, "--items", str(items), "--latency-ms", str(latency_ms)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.startswith("PORT "), line
    return p, f"http://127.0.0.1:{int(line.split()[1])}"


def parquet_rows(directory):
    import pyarrow.parquet as pq
    files = [f for f in glob.glob(f"{directory}/**/*.parquet", recursive=True)]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def run_sluice(binary, url, per_page, work):
    config = f"""
pipelines:
  api:
    source:
      http_api:
        url: "{url}/link/items?per_page={per_page}"
        pagination: {{ link_header: next }}
        columns: {{ amount: "decimal(12,2)" }}
    sink:
      parquet: {{ path: lake }}
"""
    with open(f"{work}/p.yaml", "w") as f:
        f.write(config)
    start = time.perf_counter()
    # GNU time gives the child's peak RSS.
    r = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "run", "p.yaml", "--no-progress", "--log-level", "warning"],
                       cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"sluice failed: {r.stderr}")
    rss_kb = int(r.stderr.strip().splitlines()[-1])
    return seconds, parquet_rows(f"{work}/lake"), rss_kb


def run_fan_out(binary, url, parents, parallel, work):
    """Child pages/s of a fan-out over `parents` parents (each with id % 4 orders, one page)."""
    config = f"""
pipelines:
  api:
    source:
      http_api:
        url: "{url}/page/items"
        records: items
        pagination: {{ page: {{ size_param: size, size: 1000 }} }}
        fan_out: {{ url: "/children/{{id}}/orders?size=10", records: data, pagination: {{ link_header: next }}, parallel: {parallel} }}
    sink:
      ndjson: {{ path: out }}
"""
    with open(f"{work}/p.yaml", "w") as f:
        f.write(config)
    start = time.perf_counter()
    r = subprocess.run([binary, "run", "p.yaml", "--no-progress", "--log-level", "warning"], cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"sluice failed: {r.stderr}")
    return seconds


def run_dlt(url, per_page, work):
    code = f"""
import dlt
from dlt.sources.rest_api import rest_api_source
source = rest_api_source({{
    "client": {{"base_url": "{url}/", "paginator": {{"type": "header_link"}}}},
    "resources": [{{"name": "items", "endpoint": {{"path": "link/items", "params": {{"per_page": {per_page}}}, "data_selector": "$"}}}}],
}})
pipeline = dlt.pipeline(pipeline_name="bench", pipelines_dir="{work}/.dlt",
                        destination=dlt.destinations.filesystem(bucket_url="file://{work}/lake"), dataset_name="api")
pipeline.run(source, loader_file_format="parquet")
"""
    start = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-c", code], cwd=work, capture_output=True, text=True,
                       env=dict(os.environ, RUNTIME__LOG_LEVEL="WARNING", DLT_TELEMETRY_DISABLED="1",
                                RUNTIME__DLTHUB_TELEMETRY="false"))
    seconds = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"dlt failed: {r.stderr[-2000:]}")
    rss_kb = int(r.stderr.strip().splitlines()[-1])
    return seconds, parquet_rows(f"{work}/lake"), rss_kb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--per-page", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--latency-items", type=int, default=100_000)
    ap.add_argument("--fan-out-parents", type=int, default=400)
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args()
    binary = os.environ.get("SLUICE_BIN") or os.path.join(ROOT, ".build/release/sluice")
    if not os.path.exists(binary):
        sys.exit(f"no release build at {binary}: swift build -c release --product sluice")

    server, url = start_server(args.items)
    results = {}
    try:
        for name, runner in (("sluice", lambda w: run_sluice(binary, url, args.per_page, w)), ("dlt", lambda w: run_dlt(url, args.per_page, w))):
            work = tempfile.mkdtemp(prefix=f"apibench-{name}-")
            try:
                results[name] = runner(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        server.kill()
    print(f"{args.items:,} records, {args.per_page} a page, Link-header pagination, to Parquet")
    for name, (seconds, rows, rss) in results.items():
        print(f"  {name:7s} {seconds:7.2f} s  {rows / seconds:>10,.0f} records/s  peak RSS {rss / 1024:6.0f} MB  rows written {rows:,}")
        if rows != args.items:
            print(f"  !! {name} wrote {rows:,} rows, not {args.items:,}")
    ratio = results["dlt"][0] / results["sluice"][0]
    print(f"  sluice / dlt: {ratio:.1f}x")

    server, url = start_server(args.latency_items, args.latency_ms)
    try:
        work = tempfile.mkdtemp(prefix="apibench-latency-")
        try:
            seconds, rows, rss = run_sluice(binary, url, args.per_page, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        server.kill()
    pages = args.latency_items / args.per_page
    ceiling = args.per_page / (args.latency_ms / 1000)
    print(f"{args.latency_items:,} records with {args.latency_ms} ms a page: {rows / seconds:,.0f} records/s "
          f"({pages / seconds:.1f} pages/s); one page in flight allows {ceiling:,.0f} records/s at most "
          f"({rows / seconds / ceiling:.2f} of it)")

    server, url = start_server(args.fan_out_parents, args.latency_ms)
    try:
        for parallel in (1, args.parallel):
            work = tempfile.mkdtemp(prefix="apibench-fan-")
            try:
                seconds = run_fan_out(binary, url, args.fan_out_parents, parallel, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            pages = args.fan_out_parents  # one child page a parent (id % 4 orders, 10 a page)
            ceiling = parallel / (args.latency_ms / 1000)
            print(f"fan-out over {args.fan_out_parents} parents with {args.latency_ms} ms a page, parallel {parallel}: "
                  f"{pages / seconds:.1f} child pages/s; {parallel} pages in flight allow {ceiling:.0f} ({pages / seconds / ceiling:.2f} of it)")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
