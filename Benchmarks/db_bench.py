#!/usr/bin/env python3
"""Database-extract benchmark: Sluice and its peers pulling the same PostgreSQL table, in one run.

    python3 Benchmarks/db_bench.py                       # 2M rows, starts a throwaway server
    python3 Benchmarks/db_bench.py --rows 500000 --url postgres://user:pw@127.0.0.1:5432/db

Cases (each its own process under /usr/bin/time: wall, CPU, peak RSS):
  copy-ceiling   psql -c "\\copy (SELECT …) TO '/dev/null'"  (getting the data out, nothing else)
  sluice-parquet sluice run: postgres source (full) → Parquet, zstd
  sluice-parallel  the same with `parallel: 2`
  sluice-postgres  sluice run: postgres source (full) → postgres sink (append, another table)
  dlt-parquet    dlt sql_database (pyarrow backend) → filesystem destination, Parquet
  load (--cases load): loading the same rows into PostgreSQL
    copy-from-ceiling  psql "\copy bench_ceiling FROM 'rows.txt'": the rows exported once to a
                   file, loaded into a table like the one Sluice created (the ceiling of loading)
    sluice-append  the same rows from a Parquet copy of the table (written by Sluice first,
                   untimed; reading it is cheap) → postgres sink, append, into a new table
    sluice-upsert  the same into an empty table with `mode: upsert, key: [id]`
    copy-from-ceiling into the upsert's table: the ceiling again, into a table like the
                   upsert's target, primary key included (the ceiling for upsert's table)

The table has ~10 columns of the usual types (bigint, int, numeric(12,2), float8, text, varchar,
bool, date, timestamptz, jsonb). The machine is shared: read ratios within one run.

Needs a release build (`swift build -c release --product sluice`, or --sluice PATH) and, for the
peer, `pip install "dlt[parquet]" sqlalchemy psycopg2-binary`.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_bench import run_timed, du  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"


def start_server(work):
    """A throwaway PostgreSQL server (as scripts/pg-test-server.sh starts it); returns (url, stop)."""
    env = {k: v for k, v in os.environ.items() if k != "SLUICE_TEST_PG_URL"}
    out = subprocess.run(["bash", "-c", f"source {ROOT}/scripts/pg-test-server.sh >/dev/null && echo $SLUICE_TEST_PG_URL && echo $PG_TEST_DIR"],
                         capture_output=True, text=True, check=True, env=env).stdout.split()
    url, data = out[0], out[1]

    def stop():
        subprocess.run(["bash", "-c", f"source {ROOT}/scripts/pg-test-server.sh; PG_TEST_DIR={data} pg_test_server_stop"],
                       env={**os.environ, "SLUICE_TEST_PG_URL": url}, capture_output=True)
    return url, stop


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          capture_output=True, text=True, check=True).stdout.strip()


def make_table(url, rows):
    psql(url, f"""
        DROP TABLE IF EXISTS public.bench_orders;
        CREATE TABLE public.bench_orders (
            id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2), ratio float8, customer text,
            country varchar(2), paid bool, order_date date, updated_at timestamptz NOT NULL, attributes jsonb);
        INSERT INTO public.bench_orders
        SELECT i, i % 50000, (i % 100000) / 100.0, i / 7.0, 'customer ' || (i % 50000), (ARRAY['DE','FR','US','JP'])[1 + i % 4],
               i % 3 = 0, date '2024-01-01' + i % 700, timestamptz '2024-01-01' + i * interval '1 second',
               jsonb_build_object('k', i % 10, 'tag', 't' || i % 100)
        FROM generate_series(1, {rows}) i;
        """)
    psql(url, "VACUUM ANALYZE public.bench_orders")


def sluice_case(binary, work, name, url, sink, extra_source=""):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  bench:
    source:
      postgres: {{ url: "{url}", table: public.bench_orders{extra_source} }}
    sink:
      {sink.replace("OUT", os.path.join(d, "out"))}
""")
    return run_timed([binary, "run", os.path.join(d, "p.yaml"), "--no-progress", "--log-level", "error"], pin=False) + (
        du(os.path.join(d, "out")) if os.path.exists(os.path.join(d, "out")) else 0,)


def sluice_from_lake(binary, work, name, lake, sink):
    """sluice run: the Parquet files under `lake` → `sink`."""
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  bench:
    source:
      file: {{ path: "{lake}", format: parquet }}
    sink:
      {sink}
""")
    return run_timed([binary, "run", os.path.join(d, "p.yaml"), "--no-progress", "--log-level", "error"], pin=False) + (0,)


def dlt_case(work, url):
    d = os.path.join(work, "dlt")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    script = os.path.join(d, "run.py")
    with open(script, "w") as f:
        f.write(f"""
import dlt, os
from dlt.sources.sql_database import sql_table
os.environ["DESTINATION__FILESYSTEM__BUCKET_URL"] = "file://{d}/out"
os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "false"
source = sql_table(credentials="{url.replace('postgres://', 'postgresql+psycopg2://')}", table="bench_orders", schema="public", backend="pyarrow",
                   chunk_size=100000)
p = dlt.pipeline(pipeline_name="bench", destination="filesystem", pipelines_dir="{d}/pipelines", dataset_name="bench")
p.run(source, loader_file_format="parquet")
""")
    return run_timed([sys.executable, script], pin=False) + (du(os.path.join(d, "out")),)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--url", help="an existing server (default: start a throwaway one)")
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--cases", default="copy,sluice,dlt", help="comma-separated: copy, sluice, dlt, load")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-dbbench-")
    stop = None
    url = args.url
    if not url:
        url, stop = start_server(work)
    try:
        print(f"generating {args.rows:,} rows…", flush=True)
        make_table(url, args.rows)
        cases = args.cases.split(",")
        results = []
        if "copy" in cases:
            results.append(("copy-ceiling (psql \\copy → /dev/null)",) + run_timed(
                ["psql", "-X", "-q", url, "-c", "\\copy (SELECT * FROM public.bench_orders) TO '/dev/null'"], pin=False) + (0,))
        if "sluice" in cases:
            results.append(("sluice → Parquet zstd",) + sluice_case(args.sluice, work, "parquet", url, "parquet: { path: OUT, compression: zstd }"))
            results.append(("sluice → Parquet zstd, parallel: 2",) + sluice_case(args.sluice, work, "parallel", url,
                                                                                  "parquet: { path: OUT, compression: zstd }", ", parallel: 2"))
            psql(url, "DROP TABLE IF EXISTS public.bench_copy")
            results.append(("sluice → PostgreSQL (append)",) + sluice_case(args.sluice, work, "postgres", url,
                                                                            f'postgres: {{ url: "{url}", table: public.bench_copy }}'))
            assert psql(url, "SELECT count(*) FROM public.bench_copy") == str(args.rows), "the copy is incomplete"
        if "dlt" in cases:
            results.append(("dlt sql_database (pyarrow) → Parquet",) + dlt_case(work, url))
        if "load" in cases:
            # Loading: Sluice's append and upsert against psql's \copy FROM of the same rows
            # into a table of the same definition (the one Sluice creates), in one run.
            load = []
            psql(url, "DROP TABLE IF EXISTS public.bench_append, public.bench_upsert, public.bench_ceiling")
            sluice_case(args.sluice, work, "export", url, "parquet: { path: OUT, compression: snappy }")
            lake = os.path.join(work, "export", "out")
            load.append(("sluice Parquet → PostgreSQL append",) + sluice_from_lake(args.sluice, work, "append", lake,
                                                                             f'postgres: {{ url: "{url}", table: public.bench_append }}'))
            assert psql(url, "SELECT count(*) FROM public.bench_append") == str(args.rows), "the append is incomplete"
            rows_file = os.path.join(work, "rows.txt")
            psql(url, f"\\copy (SELECT * FROM public.bench_append) TO '{rows_file}'")
            psql(url, "CREATE TABLE public.bench_ceiling (LIKE public.bench_append)")
            load.insert(0, ("copy-from-ceiling (psql \\copy FROM file)",) + run_timed(
                ["psql", "-X", "-q", url, "-c", f"\\copy public.bench_ceiling FROM '{rows_file}'"], pin=False) + (0,))
            assert psql(url, "SELECT count(*) FROM public.bench_ceiling") == str(args.rows)
            load.append(("sluice Parquet → PostgreSQL upsert (key id)",) + sluice_from_lake(
                args.sluice, work, "upsert", lake, f'postgres: {{ url: "{url}", table: public.bench_upsert, mode: upsert, key: [id] }}'))
            assert psql(url, "SELECT count(*) FROM public.bench_upsert") == str(args.rows), "the upsert is incomplete"
            # The same ceiling into a table like the upsert's target, with its primary key.
            psql(url, "DROP TABLE IF EXISTS public.bench_ceiling_keyed; CREATE TABLE public.bench_ceiling_keyed (LIKE public.bench_upsert INCLUDING ALL)")
            keyed = ("copy-from-ceiling into the upsert's table (primary key)",) + run_timed(
                ["psql", "-X", "-q", url, "-c", f"\\copy public.bench_ceiling_keyed FROM '{rows_file}'"], pin=False) + (0,)
            load.insert(1, keyed)
            print(f"\nloading {args.rows:,} rows into PostgreSQL\n")
            print(f"{'case':56} {'wall s':>7} {'cpu s':>7} {'rows/s':>10} {'RSS MB':>7} {'×copy FROM':>10} {'×keyed copy':>11}")
            for name, wall, cpu, rss, _ in load:
                print(f"{name:56} {wall:7.2f} {cpu:7.2f} {args.rows / wall:10,.0f} {rss:7.0f} {load[0][1] / wall:10.2f} {keyed[1] / wall:11.2f}")
        ceiling = next((r for r in results if r[0].startswith("copy")), None)
        dlt = next((r for r in results if r[0].startswith("dlt")), None)
        print(f"\n{args.rows:,} rows, 10 columns\n")
        print(f"{'case':44} {'wall s':>7} {'cpu s':>7} {'rows/s':>10} {'RSS MB':>7} {'out MB':>7} {'×ceiling':>8} {'×dlt':>6}")
        for name, wall, cpu, rss, size in results:
            rate = args.rows / wall
            vs_ceiling = f"{(ceiling[1] / wall):.2f}" if ceiling else "-"
            vs_dlt = f"{(dlt[1] / wall):.1f}" if dlt else "-"
            print(f"{name:44} {wall:7.2f} {cpu:7.2f} {rate:10,.0f} {rss:7.0f} {size / 1e6:7.1f} {vs_ceiling:>8} {vs_dlt:>6}")
    finally:
        if stop:
            stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
