#!/usr/bin/env python3
"""Tailing (`file: { tail: true }`) against plain file reading, on the same NDJSON lines, each
into the `blackhole` sink (so the source and the decoder are what is measured):

- read: `file: { path: app.log }`, a run that ends when the file is read;
- tail, catching up: `tail: true` on the same file, from the start; timed until
  `sluice_records_in_total` (polled every 10 ms on `--metrics-port`) counts every line;
- tail, live: the lines appended by a writer in 4 MB writes while Sluice follows, the log
  renamed (rotated) every quarter of the lines; timed from the writer's first write until every
  line was counted.

Peak RSS is each process's VmHWM. Absolute times on a shared machine are noise; the ratios of
one run are the result.

    python3 Benchmarks/tail_bench.py [--lines 2000000]

Needs a release build (`swift build -c release --product sluice`).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, ".build/release/sluice")


def line(i):
    return ('{"ts":"2026-12-06T10:%02d:%02d.%06dZ","level":"%s","seq":%d,"message":"request served in %d ms path=/api/v1/items/%d"}\n'
            % (i // 60000 % 60, i // 1000 % 60, i % 1000000, ("info", "warn", "error")[i % 3], i, i % 997, i % 10007))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    return 0.0


def records_in(port):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1
    m = re.search(r'^sluice_records_in_total\{[^}]*pipeline="t"[^}]*\} (\S+)$', text, re.M)
    return int(float(m.group(1))) if m else 0


def pipeline(work, source):
    with open(os.path.join(work, "p.yaml"), "w") as f:
        f.write(f"pipelines:\n  t:\n    source: {{ file: {source} }}\n    sink: {{ blackhole: {{}} }}\n")


def follow(work, lines, write=None):
    """Starts a tailing run, calls `write` (if any), and waits until every line was counted.
    Returns (seconds from the start of the writing or of the run, peak RSS in MB)."""
    port = free_port()
    p = subprocess.Popen([SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "error", "--metrics-port", str(port)], cwd=work)
    try:
        while records_in(port) < 0:
            time.sleep(0.01)
        start = time.monotonic()
        if write:
            write()
        while records_in(port) < lines:
            time.sleep(0.01)
        seconds = time.monotonic() - start
        rss = peak_rss_mb(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()
    return seconds, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--work", default="/tmp/sluice-tail-bench")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    data = os.path.join(a.work, "data")
    os.makedirs(data)
    text = "".join(line(i) for i in range(a.lines)).encode()
    with open(os.path.join(data, "app.log"), "wb") as f:
        f.write(text)
    mb = len(text) / 1e6
    print(f"{a.lines:,} lines, {mb:.0f} MB of NDJSON")
    columns = "{ ts: timestamp, level: string, seq: int64, message: string }"
    results = []

    # Plain reading: the run ends when the file is read.
    read_dir = os.path.join(a.work, "read")
    os.makedirs(read_dir)
    pipeline(read_dir, f'{{ path: "{data}/app.log", format: ndjson, columns: {columns} }}')
    start = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", SLUICE, "run", "p.yaml", "--no-progress", "--log-level", "error"],
                       cwd=read_dir, check=True, stderr=subprocess.PIPE, text=True)
    results.append(("read (plain `file`)", time.monotonic() - start, int(r.stderr.strip().splitlines()[-1]) / 1024))

    # Tailing the same file from its start.
    tail_dir = os.path.join(a.work, "tail")
    os.makedirs(tail_dir)
    pipeline(tail_dir, f'{{ path: "{data}/app.log*", format: ndjson, tail: true, poll_interval: 100ms, columns: {columns} }}')
    seconds, rss = follow(tail_dir, a.lines)
    results.append(("tail, catching up", seconds, rss))

    # Tailing while a writer appends and rotates.
    live = os.path.join(a.work, "live")
    os.makedirs(live)
    live_dir = os.path.join(a.work, "live-run")
    os.makedirs(live_dir)
    pipeline(live_dir, f'{{ path: "{live}/app.log*", format: ndjson, tail: true, poll_interval: 100ms, columns: {columns} }}')

    def write():
        quarter = len(text) // 4
        cut = 0
        for k in range(4):
            end = len(text) if k == 3 else text.index(b"\n", cut + quarter) + 1
            with open(os.path.join(live, "app.log"), "ab") as f:
                for at in range(cut, end, 4 << 20):
                    f.write(text[at:min(at + (4 << 20), end)])
                    f.flush()
            if k < 3:
                os.rename(os.path.join(live, "app.log"), os.path.join(live, f"app.log.{k + 1}"))
            cut = end

    seconds, rss = follow(live_dir, a.lines, write)
    results.append(("tail, live writer rotating 3 times", seconds, rss))

    base = results[0][1]
    print(f"| case | wall s | lines/s | x plain read | peak RSS |")
    print(f"|---|---|---|---|---|")
    for name, seconds, rss in results:
        print(f"| {name} | {seconds:.2f} | {a.lines / seconds:,.0f} | {base / seconds:.2f} | {rss:.0f} MB |")


if __name__ == "__main__":
    main()
