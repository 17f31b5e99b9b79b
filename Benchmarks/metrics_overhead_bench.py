#!/usr/bin/env python3
"""Overhead of metrics and alert evaluation on the file → Parquet pipeline.

The same CSV (scripts/generate_events.py) is ingested into a Parquet lake (zstd) by
`sluice run` in two ways, interleaved over several rounds on one machine:

  on   every metric, `/metrics` served and scraped once a second (as Prometheus would), and
       the alert rules evaluated every second (`alerts.evaluate_every: 1s`, all rules on);
  off  `--benchmark-no-telemetry`: swift-metrics' no-op handler, no alert engine;
  dash as `on`, with the dashboard open: `/api/v1/status` read every two seconds, as the page
       does (its cost is `dash` against `on`; the goal is under 2%).

CPU time (user + system, from the child's rusage) is what the goal is about (< 3% more with
telemetry on); wall time and peak RSS are reported too. Each round starts from an empty state
store and lake. The median of the rounds of each way is compared.

    python3 Benchmarks/metrics_overhead_bench.py [--csv-mb 300] [--rounds 5]

Needs a release build (`swift build -c release --product sluice`).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, ".build/release/sluice")

CONFIG = """
alerts:
  evaluate_every: 1s
pipelines:
  bench:
    source: { file: { path: events.csv, format: csv } }
    sink: { parquet: { path: lake, compression: zstd } }
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(work, telemetry, dashboard=False):
    for d in ("lake", ".sluice"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    args = [SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "warning"]
    port = None
    if telemetry:
        port = free_port()
        args += ["--metrics-port", str(port)]
    else:
        args += ["--benchmark-no-telemetry"]
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scrapes = [0]
    stop = threading.Event()

    def scrape():
        tick = 0
        while not stop.wait(1.0):
            tick += 1
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
                scrapes[0] += 1
                if dashboard and tick % 2 == 0:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=2).read()
            except OSError:
                pass

    scraper = threading.Thread(target=scrape, daemon=True) if telemetry else None
    if scraper:
        scraper.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    stop.set()
    if scraper:
        scraper.join()
    err = proc.stderr.read().decode()
    if status != 0:
        sys.exit(f"sluice failed ({status}): {err[-2000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mb": usage.ru_maxrss / 1024, "scrapes": scrapes[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv-mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: swift build -c release --product sluice")
    work = tempfile.mkdtemp(prefix="sluice-metrics-bench-")
    try:
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/generate_events.py"), "--size-mb", str(a.csv_mb),
                        "--format", "csv", "--out", os.path.join(work, "events.csv")], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(work, "p.yaml"), "w") as f:
            f.write(CONFIG)
        run(work, True)  # warm-up (page cache)
        results = {"on": [], "off": [], "dash": []}
        modes = {"on": (True, False), "off": (False, False), "dash": (True, True)}
        for r in range(a.rounds):
            order = ("on", "off", "dash") if r % 2 == 0 else ("dash", "off", "on")
            for mode in order:
                results[mode].append(run(work, *modes[mode]))
        print(f"input: {a.csv_mb} MB CSV, {a.rounds} rounds each, interleaved")
        print(f"{'':4} {'cpu s (median)':>15} {'wall s (median)':>16} {'peak RSS MB':>12}  rounds (cpu s)")
        med = {}
        for name in ("off", "on", "dash"):
            rs = results[name]
            med[name] = statistics.median(x["cpu"] for x in rs)
            rounds = " ".join("%.2f" % x["cpu"] for x in rs)
            wall = statistics.median(x["wall"] for x in rs)
            rss = max(x["rss_mb"] for x in rs)
            print(f"{name:4} {med[name]:15.2f} {wall:16.2f} {rss:12.0f}  {rounds}")
        scrapes = sum(x["scrapes"] for x in results["on"])
        print(f"/metrics scraped {scrapes} times during the 'on' rounds")
        print(f"CPU overhead of metrics + alerts (on / off): {100 * (med['on'] / med['off'] - 1):+.1f}%")
        print(f"CPU overhead of the open dashboard (dash / on): {100 * (med['dash'] / med['on'] - 1):+.1f}%")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
