#!/usr/bin/env python3
"""File-ingestion benchmarks: Sluice and its peers on the same generated input, in one run.

    python3 Benchmarks/ingest_bench.py                      # all cases, ~300 MB inputs
    python3 Benchmarks/ingest_bench.py --size-mb 100 --cases sluice
    python3 Benchmarks/ingest_bench.py --cases parquet      # Sluice vs DuckDB, pyarrow, polars → Parquet

Every case runs as its own process under /usr/bin/time, so wall time, CPU time and peak RSS
are measured the same way for everyone. "1 core" runs are pinned with `taskset -c 0` (and
the peers are also told to use one thread); "all cores" runs are not pinned. The machine is
shared: read ratios between rows of one run, not absolute times.

Needs a release build of sluice (`swift build -c release --product sluice`, or --sluice PATH)
and, for the peers, `pip install duckdb pyarrow polars` (dlt only with --dlt).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_timed(cmd, pin, env=None):
    """Runs cmd; returns (wall s, cpu s, peak RSS MB)."""
    timing = "/tmp/sluice-bench-time"
    full = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", timing]
    if pin:
        full += ["taskset", "-c", "0"]
    full += cmd
    r = subprocess.run(full, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), r.stderr[-3000:]))
    wall, user, sys_, rss = open(timing).read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss) / 1024


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for d, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files if not f.startswith("."))
    return total


def sluice_case(binary, work, name, source, sink_yaml, pin, extra=""):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write("state: %s/state.db\npipelines:\n  bench:\n    source: { file: { path: %s } }\n    sink: %s\n%s"
                % (d, source, sink_yaml.replace("OUT", os.path.join(d, "out")), extra))
    t = run_timed([binary, "run", os.path.join(d, "p.yaml"), "--no-progress", "--log-level", "error"], pin)
    return t + (du(os.path.join(d, "out")) if os.path.exists(os.path.join(d, "out")) else 0,)


PY_PEERS = {
    "duckdb": """
        import duckdb, sys
        con = duckdb.connect()
        con.execute("SET threads=%d" % THREADS)
        fn = "read_csv_auto" if SRC.endswith(".csv") else "read_json_auto"
        con.execute(f"COPY (SELECT * FROM {fn}('{SRC}')) TO '{OUT}' (FORMAT parquet, COMPRESSION zstd)")
    """,
    "pyarrow": """
        import pyarrow as pa, pyarrow.csv as pc, pyarrow.json as pj, pyarrow.parquet as pq
        pa.set_cpu_count(THREADS); pa.set_io_thread_count(THREADS)
        if SRC.endswith(".csv"):
            reader = pc.open_csv(SRC, read_options=pc.ReadOptions(use_threads=THREADS > 1, block_size=8 << 20))
            writer = None
            for batch in reader:
                if writer is None:
                    writer = pq.ParquetWriter(OUT, batch.schema, compression="zstd")
                writer.write_batch(batch)
            writer.close()
        else:
            t = pj.read_json(SRC, read_options=pj.ReadOptions(use_threads=THREADS > 1, block_size=8 << 20))
            pq.write_table(t, OUT, compression="zstd")
    """,
    "polars": """
        import polars as pl
        lf = pl.scan_csv(SRC) if SRC.endswith(".csv") else pl.scan_ndjson(SRC)
        lf.sink_parquet(OUT, compression="zstd")
    """,
    # polars leaves CSV timestamps as strings unless asked; Sluice and DuckDB type them. This
    # case types them too, for the like-for-like comparison (NDJSON: the same as "polars").
    "polars-typed": """
        import polars as pl
        lf = pl.scan_csv(SRC, try_parse_dates=True) if SRC.endswith(".csv") else pl.scan_ndjson(SRC)
        lf.sink_parquet(OUT, compression="zstd")
    """,
}


def peer_case(peer, src, out, threads, pin):
    script = textwrap.dedent(PY_PEERS[peer]).replace("THREADS", str(threads)).replace("SRC", repr(src)).replace("OUT", repr(out))
    if os.path.exists(out):
        os.remove(out)
    env = {"POLARS_MAX_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    t = run_timed([sys.executable, "-c", script], pin, env)
    return t + (du(out),)


def dlt_case(src_csv, work, rows):
    """dlt's filesystem destination writing Parquet from a CSV reader (for completeness)."""
    d = os.path.join(work, "dlt")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    script = textwrap.dedent(f"""
        import csv, itertools, dlt
        def rows():
            with open({src_csv!r}) as f:
                yield from itertools.islice(csv.DictReader(f), {rows})
        p = dlt.pipeline("bench", destination=dlt.destinations.filesystem({('file://' + d)!r}), dataset_name="ds",
                         pipelines_dir={os.path.join(d, 'state')!r})
        p.run(rows(), table_name="events", loader_file_format="parquet")
    """)
    return run_timed([sys.executable, "-c", script], True) + (du(d),)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=300)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench-work"))
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--cases", default="sluice,parquet",
                    help="sluice (file→NDJSON/blackhole), parquet (→Parquet with peers), schema (CSV→Parquet with schema checking off/detect/freeze)")
    ap.add_argument("--dlt", action="store_true", help="also run dlt on 100k rows")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not os.path.exists(a.sluice):
        sys.exit("no release build at %s: run `swift build -c release --product sluice`" % a.sluice)
    inputs = {}
    for fmt in ("csv", "ndjson"):
        path = os.path.join(a.work, "events-%gmb.%s" % (a.size_mb, fmt))
        if not os.path.exists(path):
            subprocess.run([sys.executable, os.path.join(ROOT, "scripts/generate_events.py"), "--size-mb", str(a.size_mb),
                            "--format", fmt, "--out", path], check=True)
        rows = sum(1 for _ in open(path, "rb")) - (1 if fmt == "csv" else 0)
        inputs[fmt] = (path, rows, os.path.getsize(path))
    results = []

    def report(name, fmt, cores, t):
        wall, cpu, rss, out = t
        path, rows, size = inputs[fmt]
        results.append(dict(case=name, input=fmt, cores=cores, rows=rows, wall_s=wall, cpu_s=cpu, rss_mb=rss, out_bytes=out))
        print("%-28s %-6s %-4s %9.0f rows/s %7.1f MB/s  cpu %6.2fs  %7.1f MB/cpu-s  RSS %6.1f MB  out %7.1f MB  (wall %.2fs)"
              % (name, fmt, cores, rows / wall, size / 1048576 / wall, cpu, size / 1048576 / cpu, rss, out / 1048576, wall),
              flush=True)

    cases = a.cases.split(",")
    print("inputs: " + ", ".join("%s %s rows %.0f MB" % (f, r, s / 1048576) for f, (p, r, s) in inputs.items()))
    if "sluice" in cases:
        for fmt in ("csv", "ndjson"):
            src = inputs[fmt][0]
            for sink, yaml in (("blackhole", "{ blackhole: {} }"), ("ndjson", "{ ndjson: { path: OUT, max_file_size: 256MB } }")):
                for pin in (True, False):
                    report("sluice %s→%s" % (fmt, sink), fmt, "1" if pin else "all",
                           sluice_case(a.sluice, a.work, "s-%s-%s" % (fmt, sink), src, yaml, pin))
        # Idempotent ingestion: every row's key is looked up and stored in the state store.
        report("sluice csv→blackhole+dedupe", "csv", "all",
               sluice_case(a.sluice, a.work, "s-csv-dedupe", inputs["csv"][0], "{ blackhole: {} }", False,
                           "    dedupe: { key: [event_id], ttl: 7d }\n"))
    if "parquet" in cases:
        for fmt in ("csv", "ndjson"):
            src = inputs[fmt][0]
            for pin in (True, False):
                cores = "1" if pin else "all"
                threads = 1 if pin else os.cpu_count()
                report("sluice %s→parquet" % fmt, fmt, cores,
                       sluice_case(a.sluice, a.work, "s-%s-parquet" % fmt, src, "{ parquet: { path: OUT, compression: zstd } }", pin))
                for peer in ("duckdb", "pyarrow", "polars") + (("polars-typed",) if fmt == "csv" else ()):
                    try:
                        report("%s %s→parquet" % (peer, fmt), fmt, cores,
                               peer_case(peer, src, os.path.join(a.work, "%s-%s.parquet" % (peer, fmt)), threads, pin))
                    except Exception as e:  # a missing peer must not hide the others
                        print("%s %s: %s" % (peer, fmt, str(e).splitlines()[-1]))
    if "schema" in cases:
        # Schema checking's cost on CSV → Parquet (1 core, alternating, 3 rounds): off (`on_change: ignore`),
        # the default detection, and `freeze` (every batch conformed to the registered schema).
        src = inputs["csv"][0]
        for round_ in range(3):
            for name, extra in (("off", "    schema: { on_change: ignore }\n"), ("detect", ""), ("freeze", "    schema: { on_change: freeze }\n")):
                report("sluice csv→parquet schema=%s" % name, "csv", "1",
                       sluice_case(a.sluice, a.work, "s-schema-%s" % name, src, "{ parquet: { path: OUT, compression: zstd } }", True, extra))
    if a.dlt:
        try:
            wall, cpu, rss, out = dlt_case(inputs["csv"][0], a.work, 100_000)
            print("%-28s %-6s %-4s %9.0f rows/s  cpu %6.2fs  RSS %6.1f MB  (100k rows, wall %.2fs)"
                  % ("dlt csv→parquet", "csv", "1", 100_000 / wall, cpu, rss, wall))
        except Exception as e:
            print("dlt: %s" % str(e).splitlines()[-1])
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
