#!/usr/bin/env python3
"""Log-based CDC benchmark: Sluice and its peers reading the same logical replication backlog, in one run.

    python3 Benchmarks/cdc_bench.py                 # 1M changes, starts a throwaway server
    python3 Benchmarks/cdc_bench.py --changes 200000 --latency-seconds 20
    python3 Benchmarks/cdc_bench.py --one-transaction 5000000   # one transaction of 5M inserts

One transaction (--one-transaction ROWS): a single INSERT of ROWS rows, read by pg_recvlogical
(the ceiling) and by Sluice into an NDJSON audit trail, with peak RSS: Sluice keeps a large
transaction's changes in a temporary file until its commit, so its memory must not grow with ROWS.

Throughput: --changes row changes are written in transactions of 1,000 (inserts, then updates,
then deletes of the same rows, cycling), while one slot per reader holds them. Then each reader
drains its slot up to the same end LSN:
  pg_recvlogical + pgoutput   → /dev/null  (the ceiling: decoding the WAL and shipping it)
  pg_recvlogical + wal2json   → /dev/null  (the popular JSON plugin)
  sluice                      postgres_cdc → NDJSON audit trail (envelope per change), exactly once
  sluice apply                postgres_cdc → a current-state table on the same server (postgres
                              sink, mode: apply), checked equal to the source table at the end
  with --jetstream, also (a throwaway nats-server on loopback):
  sluice → JetStream          postgres_cdc → jetstream sink, changes packed with their ids
                              (default), and one change per message (`records_per_message: 1`)
Each is measured wall-clock from start until its position reaches the end LSN (for Sluice: the
committed checkpoint), with CPU seconds and peak RSS.

Latency: a writer commits 5,000 changes/s (transactions of 50 rows every 10 ms) for
--latency-seconds while Sluice applies them to a current-state table (postgres sink, mode: apply,
commit_interval 50ms, batch max_latency 20ms). A poller on another connection notes when each transaction's rows become
visible there; latency = visible - committed, reported as p50/p99 (poll resolution ~5 ms).

Needs a release build (`swift build -c release --product sluice`, or --sluice PATH),
postgresql-15-wal2json (apt) and psycopg2 (pip).
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from db_bench import start_server, psql  # noqa: E402


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def proc_stats(pid):
    """(cpu seconds, peak RSS MB) of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return cpu, rss


def run_until(cmd, done, cwd=None, timeout=1800):
    """Starts cmd, polls done() every 50 ms; returns (wall s, cpu s, peak RSS MB) when it holds."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stats = (0, 0)
    try:
        while time.monotonic() - start < timeout:
            if p.poll() is not None:
                if done():
                    break
                raise RuntimeError("%s exited early:\n%s" % (" ".join(cmd), p.stderr.read()[-3000:]))
            stats = proc_stats(p.pid)
            if done():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("timed out: " + " ".join(cmd))
        wall = time.monotonic() - start
        return wall, stats[0], stats[1]
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=60)


def write_changes(url, changes):
    """changes row changes in transactions of 1,000: insert 1,000 rows, update them, delete them."""
    psql(url, "CREATE TABLE bench_cdc (id bigint PRIMARY KEY, v text, n numeric(12,2), at timestamptz)")
    psql(url, "CREATE PUBLICATION bench_pub FOR TABLE bench_cdc")
    txs = changes // 1000
    sql = []
    for t in range(txs):
        base = (t // 3) * 1000
        kind = t % 3
        if kind == 0:
            sql.append(f"INSERT INTO bench_cdc SELECT i, 'value ' || i, i / 100.0, now() FROM generate_series({base}, {base + 999}) i;")
        elif kind == 1:
            sql.append(f"UPDATE bench_cdc SET v = v || '+', n = n + 1 WHERE id BETWEEN {base} AND {base + 999};")
        else:
            sql.append(f"DELETE FROM bench_cdc WHERE id BETWEEN {base} AND {base + 999};")
    # `psql -c` runs a multi-statement string as one transaction: each statement gets its own
    # BEGIN/COMMIT, or 200 of them would be one transaction of 200,000 changes (earlier runs of
    # this benchmark measured that by mistake).
    for i in range(0, len(sql), 200):
        psql(url, " ".join(f"BEGIN; {statement} COMMIT;" for statement in sql[i:i + 200]))
    return psql(url, "SELECT pg_current_wal_lsn()")


def sluice_throughput(binary, work, url, slot, end, sink=None, name="sluice"):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sink = sink or f"ndjson: {{ path: {d}/out, max_file_size: 256MB, max_file_age: 2s }}"
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  trail:
    source:
      postgres_cdc: {{ url: "{url}", slot: {slot}, publication: bench_pub, snapshot: never }}
    sink:
      {sink}
""")
    state = os.path.join(d, "state.db")

    def done():
        if not os.path.exists(state):
            return False
        try:
            with sqlite3.connect(state, timeout=1) as c:
                row = c.execute("SELECT value FROM checkpoints WHERE pipeline = 'trail'").fetchone()
        except sqlite3.Error:
            return False
        if not row:
            return False
        value = row[0]
        position = value if "/" in value and "{" not in value else __import__("json").loads(value)["lsn"]
        return lsn(position) >= end

    result = run_until([binary, "run", os.path.join(d, "p.yaml"), "--no-progress", "--log-level", "error"], done)
    lines = 0
    for name in os.listdir(os.path.join(d, "out")) if os.path.exists(os.path.join(d, "out")) else []:
        if name.endswith(".ndjson"):
            with open(os.path.join(d, "out", name), "rb") as f:
                lines += sum(1 for _ in f)
    return result, lines


def recvlogical(url, slot, plugin_options, end_text):
    cmd = ["pg_recvlogical", "-d", url, "--slot", slot, "--start", "-f", "/dev/null", "--endpos", end_text, "--no-loop"]
    for o in plugin_options:
        cmd += ["-o", o]
    start = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", "/tmp/cdc-bench-time"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    user, sys_, rss = open("/tmp/cdc-bench-time").read().split()[-3:]
    return wall, float(user) + float(sys_), int(rss) / 1024


def latency(binary, work, url, seconds):
    import psycopg2
    psql(url, "CREATE TABLE lat_src (id bigint PRIMARY KEY, v text); CREATE PUBLICATION lat_pub FOR TABLE lat_src")
    d = os.path.join(work, "latency")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  current:
    source:
      postgres_cdc: {{ url: "{url}", slot: lat_slot, publication: lat_pub }}
    sink:
      postgres: {{ url: "{url}", table: public.lat_current, mode: apply, commit_interval: 50ms }}
    batch: {{ max_latency: 20ms }}
""")
    p = subprocess.Popen([binary, "run", os.path.join(d, "p.yaml"), "--no-progress", "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        writer = psycopg2.connect(url)
        writer.autocommit = False
        cur = writer.cursor()
        # Wait for the pipeline to stream (its first change creates the table).
        cur.execute("INSERT INTO lat_src VALUES (-1, 'warmup')")
        writer.commit()
        reader = psycopg2.connect(url)
        reader.autocommit = True
        rcur = reader.cursor()
        for _ in range(600):
            try:
                rcur.execute("SELECT count(*) FROM public.lat_current")
                if rcur.fetchone()[0] == 1:
                    break
            except psycopg2.Error:
                pass
            time.sleep(0.1)
        committed = {}
        visible = {}
        stop = threading.Event()

        def poll():
            # Transactions are applied whole and in commit order: tx is visible once max(id) covers it.
            next_tx = 0
            while True:
                rcur.execute("SELECT max(id) FROM public.lat_current")
                top = rcur.fetchone()[0] or 0
                now = time.monotonic()
                while next_tx in committed and top >= next_tx * 50 + 49:
                    visible[next_tx] = now
                    next_tx += 1
                if stop.is_set() and (next_tx >= len(committed) or now - stopped[0] > 30):
                    break
                time.sleep(0.005)

        stopped = [0.0]
        t = threading.Thread(target=poll)
        t.start()
        start = time.monotonic()
        tx = 0
        while time.monotonic() - start < seconds:
            due = start + tx * 0.01
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            cur.execute("INSERT INTO lat_src SELECT i, 'v' FROM generate_series(%s, %s) i", (tx * 50, tx * 50 + 49))
            writer.commit()
            committed[tx] = time.monotonic()
            tx += 1
        rate = tx * 50 / (time.monotonic() - start)
        stopped[0] = time.monotonic()
        stop.set()
        t.join()
        lat = sorted((visible[i] - committed[i]) * 1000 for i in committed if i in visible)
        if not lat:
            raise RuntimeError("no transaction became visible")
        return rate, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat), len(committed), proc_stats(p.pid)[1]
    finally:
        p.terminate()
        p.wait(timeout=60)


def one_transaction(args, work, url):
    rows = args.one_transaction
    psql(url, "CREATE TABLE bench_cdc (id bigint PRIMARY KEY, v text, n numeric(12,2), at timestamptz)")
    psql(url, "CREATE PUBLICATION bench_pub FOR TABLE bench_cdc")
    for slot in ["bench_pgoutput", "bench_sluice"]:
        psql(url, f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
    psql(url, f"INSERT INTO bench_cdc SELECT i, 'value ' || i, i / 100.0, now() FROM generate_series(1, {rows}) i")
    end_text = psql(url, "SELECT pg_current_wal_lsn()")
    print(f"one transaction of {rows:,} inserts (end LSN {end_text})\n")
    print(f"{'case':34} {'wall s':>8} {'changes/s':>11} {'cpu s':>7} {'peak RSS MB':>12} {'vs ceiling':>11}")
    ceiling = recvlogical(url, "bench_pgoutput", ["proto_version=1", "publication_names=bench_pub"], end_text)
    (result, lines) = sluice_throughput(args.sluice, work, url, "bench_sluice", lsn(end_text))
    for name, (wall, cpu, rss) in [("pg_recvlogical + pgoutput (ceiling)", ceiling), ("sluice → NDJSON audit trail", result)]:
        print(f"{name:34} {wall:8.2f} {rows / wall:11,.0f} {cpu:7.2f} {rss:12.0f} {ceiling[0] / wall:10.2f}x")
    print(f"\nsluice wrote {lines:,} change events (expected {rows:,})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--latency-seconds", type=int, default=30)
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--url", help="an existing server (wal_level=logical, wal2json installed); default: start one")
    ap.add_argument("--one-transaction", type=int, metavar="ROWS", help="only the case of one transaction of ROWS inserts")
    ap.add_argument("--jetstream", action="store_true", help="also into JetStream, packed and one change per message")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-cdc-bench-")
    url, stop = (args.url, None) if args.url else start_server(work)
    try:
        if args.one_transaction:
            one_transaction(args, work, url)
            return
        slots = [("bench_pgoutput", "pgoutput"), ("bench_wal2json", "wal2json"), ("bench_sluice", "pgoutput"), ("bench_apply", "pgoutput")]
        if args.jetstream:
            slots += [("bench_js", "pgoutput"), ("bench_js1", "pgoutput")]
        for slot, plugin in slots:
            psql(url, f"SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')")
        end_text = write_changes(url, args.changes)
        end = lsn(end_text)
        print(f"{args.changes} row changes in transactions of 1,000 (end LSN {end_text})\n")
        print(f"{'case':34} {'wall s':>8} {'changes/s':>11} {'cpu s':>7} {'peak RSS MB':>12} {'vs ceiling':>11}")
        ceiling = recvlogical(url, "bench_pgoutput", ["proto_version=1", "publication_names=bench_pub"], end_text)
        rows = [("pg_recvlogical + pgoutput (ceiling)", ceiling)]
        rows.append(("pg_recvlogical + wal2json", recvlogical(url, "bench_wal2json", [], end_text)))
        (result, lines) = sluice_throughput(args.sluice, work, url, "bench_sluice", end)
        rows.append(("sluice → NDJSON audit trail", result))
        (applied, _) = sluice_throughput(args.sluice, work, url, "bench_apply", end, name="apply",
                                         sink=f'postgres: {{ url: "{url}", table: public.bench_current, mode: apply }}')
        rows.append(("sluice → current-state table (apply)", applied))
        same = psql(url, "SELECT (SELECT count(*) FROM (SELECT * FROM bench_cdc EXCEPT SELECT id, v, n, at FROM bench_current) a)"
                         " + (SELECT count(*) FROM (SELECT id, v, n, at FROM bench_current EXCEPT SELECT * FROM bench_cdc) b)")
        assert same == "0", f"the current-state table differs from the source in {same} rows"
        if args.jetstream:
            from queue_bench import start_nats
            nats_url, nats = start_nats(work)
            try:
                for slot, stream, extra, label in [("bench_js", "CDC", "", "sluice → JetStream, packed"),
                                                   ("bench_js1", "CDC1", ", records_per_message: 1", "sluice → JetStream, one per message")]:
                    (result, _) = sluice_throughput(args.sluice, work, url, slot, end, name=slot,
                                                    sink=f'jetstream: {{ url: "{nats_url}", stream: {stream}, subject: "{stream.lower()}.{{table}}"{extra} }}')
                    rows.append((label, result))
            finally:
                nats.terminate()
                nats.wait()
        for name, (wall, cpu, rss) in rows:
            print(f"{name:34} {wall:8.2f} {args.changes / wall:11,.0f} {cpu:7.2f} {rss:12.0f} {ceiling[0] / wall:10.2f}x")
        print(f"\nsluice wrote {lines:,} change events (expected {args.changes:,})")
        if args.latency_seconds > 0:
            rate, p50, p99, seen, sent, rss = latency(args.sluice, work, url, args.latency_seconds)
            print(f"\ncommit-to-sink latency into a current-state table at {rate:,.0f} changes/s for {args.latency_seconds}s: "
                  f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({seen}/{sent} transactions seen), sluice peak RSS {rss:.0f} MB")
    finally:
        if stop:
            stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
