#!/usr/bin/env python3
"""Idempotent-ingestion benchmark: the same CSV → blackhole pipeline with and without `dedupe`,
on both state stores, with 10M live keys already stored, in one run.

    python3 Benchmarks/dedupe_bench.py                   # 300 MB CSV (~2.9M rows), 10M live keys
    python3 Benchmarks/dedupe_bench.py --live-keys 1000000 --size-mb 100

Cases (each its own process under /usr/bin/time: wall, CPU, peak RSS):
  no-dedupe          the pipeline without dedupe (the baseline)
  sqlite-empty       dedupe on `event_id`, embedded state, no key stored yet
  sqlite-10M         the same with 10M other keys live in the state (loaded first, untimed)
  postgres-10M       the same with the state in PostgreSQL (a throwaway server)
  sqlite-replay      the same file again under another name: every row a duplicate
  postgres-replay    the same in the PostgreSQL state

The live keys come from a pipeline that ingested 10M one-column rows with other ids; each
timed case starts from a copy of that state. The machine is shared: read ratios within a run.

Needs a release build (`swift build -c release --product sluice`, or --sluice PATH).
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_bench import run_timed  # noqa: E402
from db_bench import start_server, psql  # noqa: E402

PIPELINE = """state: {state}
pipelines:
  bench:
    source: {{ file: {{ path: {path} }} }}
    sink: {{ blackhole: {{}} }}
{dedupe}"""
DEDUPE = "    dedupe: { key: [event_id], ttl: 7d }\n"


def config(d, name, state, path, dedupe):
    p = os.path.join(d, name + ".yaml")
    with open(p, "w") as f:
        f.write(PIPELINE.format(state=state, path=path, dedupe=DEDUPE if dedupe else ""))
    return p


def run(binary, cfg):
    return run_timed([binary, "run", cfg, "--no-progress", "--log-level", "error"], False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=300)
    ap.add_argument("--live-keys", type=int, default=10_000_000)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench-work"))
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--no-postgres", action="store_true")
    a = ap.parse_args()
    d = os.path.join(a.work, "dedupe")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    events = os.path.join(a.work, "events-%gmb.csv" % a.size_mb)
    if not os.path.exists(events):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/generate_events.py"), "--size-mb", str(a.size_mb),
                        "--format", "csv", "--out", events], check=True)
    rows = sum(1 for _ in open(events, "rb")) - 1
    # The live keys: ids far above the events' (event_id counts from 0).
    live = os.path.join(d, "live.csv")
    with open(live, "w") as f:
        f.write("event_id\n")
        for start in range(0, a.live_keys, 1_000_000):
            f.write("".join("%d\n" % (1_000_000_000 + i) for i in range(start, min(start + 1_000_000, a.live_keys))))
    replay = os.path.join(d, "replay.csv")
    os.link(events, replay)

    results = []

    def report(name, t):
        wall, cpu, rss = t
        results.append((name, wall))
        base = results[0][1]
        print("%-16s %9.0f rows/s  wall %6.2fs  cpu %6.2fs  RSS %6.1f MB  %.2fx the no-dedupe speed"
              % (name, rows / wall, wall, cpu, rss, base / wall), flush=True)

    print("input: %d rows; %d live keys" % (rows, a.live_keys))
    report("no-dedupe", run(a.sluice, config(d, "none", os.path.join(d, "none.db"), events, False)))
    report("sqlite-empty", run(a.sluice, config(d, "empty", os.path.join(d, "empty.db"), events, True)))
    seeded = os.path.join(d, "seeded.db")
    run(a.sluice, config(d, "seed", seeded, live, True))
    shutil.copy(seeded, os.path.join(d, "live.db"))
    report("sqlite-10M", run(a.sluice, config(d, "live", os.path.join(d, "live.db"), events, True)))
    report("sqlite-replay", run(a.sluice, config(d, "replay", os.path.join(d, "live.db"), replay, True)))
    if not a.no_postgres:
        url, stop = start_server(a.work)
        try:
            run(a.sluice, config(d, "pg-seed", url, live, True))
            report("postgres-10M", run(a.sluice, config(d, "pg-live", url, events, True)))
            report("postgres-replay", run(a.sluice, config(d, "pg-replay", url, replay, True)))
            size = psql(url, "SELECT pg_size_pretty(pg_total_relation_size('sluice.dedupe_runs'))")
            print("postgres: sluice.dedupe_runs holds %s" % size)
        finally:
            stop()
    print("sqlite state with the live keys: %.0f MB" % (os.path.getsize(seeded) / 1048576))


if __name__ == "__main__":
    main()
