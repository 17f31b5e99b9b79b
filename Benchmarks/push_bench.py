#!/usr/bin/env python3
"""HTTP push benchmark: `sluice serve` under wrk, side by side with a no-op Hummingbird route.

Runs one `sluice serve` (release build) with a stream feeding the NDJSON sink (or Parquet with
--sink parquet) and its hidden no-op route (`POST /bench/noop`, answered 204 by the same
Hummingbird server without reading anything: the ceiling of the HTTP stack), then wrk against:

  noop     the no-op route
  single   one JSON record per request
  batch    NDJSON batches of 100 records per request
  half     single-record requests paced at half the measured single-record maximum (latency)

It prints requests/s, records/s (2xx only), latency p50/p99 and the server's CPU time per request
for each, the ratios the goals are stated in, and the server's peak RSS. wrk and the server share this machine's cores, so
absolute numbers are noise; the ratios are the result.

    python3 Benchmarks/push_bench.py [--duration 10] [--connections 64] [--sink ndjson|parquet]

Needs wrk (`apt-get install wrk`) and a release build (`swift build -c release`), or SLUICE_BIN.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORD = '{"user_id": 123456, "url": "/products/8812/reviews", "referrer": "https://example.com/campaign/abc", "ms": 183}'

LUA = {
    "noop": 'wrk.method = "POST"\nwrk.path = "/bench/noop"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' % RECORD,
    "single": 'wrk.method = "POST"\nwrk.path = "/v1/streams/bench/records"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' % RECORD,
    "batch": 'wrk.method = "POST"\nwrk.path = "/v1/streams/bench/records"\nwrk.headers["Content-Type"] = "application/x-ndjson"\nwrk.body = [[%s]]\n'
             % "\n".join([RECORD] * 100),
}

CONFIG = """
serve:
  max_inflight_bytes: 256MB
pipelines:
  bench:
    source:
      http: {{ stream: bench, max_queue_records: 5000000, max_queue_bytes: 2GB }}
    sink:
      {sink}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(text):
    def latency(label):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, text, re.M)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(m.group(1)) if m else 0
    errors = re.search(r"Socket errors: (.*)", text)
    return {"rps": rps, "total": total, "non2xx": non2xx, "p50": latency("50"), "p99": latency("99"),
            "errors": errors.group(1) if errors else ""}


def run_wrk(port, name, duration, connections, threads=2, rate=None):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        script = LUA["single" if name == "half" else name]
        if rate:
            # wrk's delay() paces each connection: connections / rate seconds between its requests.
            script += "function delay()\n  return %d\nend\n" % max(1, int(connections * 1000 / rate))
        f.write(script)
        path = f.name
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency", "-s", path,
                          "http://127.0.0.1:%d" % port], capture_output=True, text=True, check=True).stdout
    os.unlink(path)
    r = parse_wrk(out)
    r["ok_rps"] = r["rps"] * (1 - r["non2xx"] / max(r["total"], 1))
    return r


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--sink", choices=["ndjson", "parquet"], default="ndjson")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    binary = os.environ.get("SLUICE_BIN") or os.path.join(ROOT, ".build/release/sluice")
    if not os.path.exists(binary):
        sys.exit("no release build at %s: run `swift build -c release` or set SLUICE_BIN" % binary)

    sink = "ndjson: { path: out, max_file_size: 256MB }" if args.sink == "ndjson" else "parquet: { path: out }"

    def serve_and_run(name, rate=None):
        """One case on a fresh server and state (cases must not drain each other's backlog)."""
        work = tempfile.mkdtemp(prefix="sluice-push-bench-")
        with open(os.path.join(work, "p.yaml"), "w") as f:
            f.write(CONFIG.format(sink=sink))
        port = free_port()
        log = open(os.path.join(work, "serve.log"), "w")
        server = subprocess.Popen([binary, "serve", "p.yaml", "--port", str(port), "--benchmark-noop-route", "--log-level", "warning"],
                                  cwd=work, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1)
                    break
                except Exception:
                    time.sleep(0.05)
            cpu_before = cpu_seconds(server.pid)
            result = run_wrk(port, name, args.duration, args.connections, rate=rate)
            # The server's CPU per request: steadier than requests/s on a shared machine.
            result["cpu_us"] = (cpu_seconds(server.pid) - cpu_before) * 1e6 / max(result["total"], 1)
            result["rss"] = peak_rss(server.pid)
            return result
        finally:
            server.terminate()
            server.wait(timeout=120)
            log.close()
            shutil.rmtree(work, ignore_errors=True)

    results = {}
    for name in ["noop", "single", "batch"]:
        results[name] = serve_and_run(name)
    half_rate = results["single"]["ok_rps"] / 2
    results["half"] = serve_and_run("half", rate=half_rate)
    rss = max(r["rss"] or 0 for r in results.values())

    print("\nsluice serve, %d connections, %ds per run, sink %s (wrk and server share the machine)\n"
          % (args.connections, args.duration, args.sink))
    print("%-34s %12s %14s %9s %9s %13s %8s" % ("case", "requests/s", "records/s", "p50 ms", "p99 ms", "server µs/req", "non-2xx"))
    labels = {"noop": "no-op Hummingbird route (ceiling)", "single": "single-record requests",
              "batch": "NDJSON batches of 100 records", "half": "single records at half load (%.0f/s)" % half_rate}
    for name in ["noop", "single", "batch", "half"]:
        r = results[name]
        records = "-" if name == "noop" else "%.0f" % (r["ok_rps"] * (100 if name == "batch" else 1))
        print("%-34s %12.0f %14s %9.2f %9.2f %13.1f %8d %s" % (labels[name], r["rps"], records, r["p50"] or 0, r["p99"] or 0,
                                                              r["cpu_us"], r["non2xx"], r["errors"]))
    batch_records = results["batch"]["ok_rps"] * 100
    ratio = results["single"]["ok_rps"] / results["noop"]["rps"]
    print("\ngoals:")
    print("  batched ingest >= 100,000 records/s:            %.0f records/s  %s" % (batch_records, "met" if batch_records >= 100_000 else "NOT met"))
    print("  single-record >= 0.7x the no-op route:          %.2fx  %s (server CPU per request: %.0f µs against %.0f µs)"
          % (ratio, "met" if ratio >= 0.7 else "NOT met", results["single"]["cpu_us"], results["noop"]["cpu_us"]))
    p99 = results["half"]["p99"] or 0
    print("  p99 < 50 ms at half of the maximum load:        %.2f ms  %s" % (p99, "met" if p99 < 50 else "NOT met"))
    print("  server peak RSS (largest of the runs): %s MB" % rss)


if __name__ == "__main__":
    main()
