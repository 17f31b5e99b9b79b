#!/usr/bin/env python3
"""MySQL/MariaDB binlog CDC benchmark: Sluice and the server's own binlog client on the same backlog, in one run.

    python3 Benchmarks/mysql_cdc_bench.py                  # 1M changes, starts a throwaway MariaDB
    python3 Benchmarks/mysql_cdc_bench.py --changes 200000 --latency-seconds 20

Throughput: --changes row changes are written in transactions of 1,000 (inserts, then updates,
then deletes of the same rows, cycling) while nobody reads. Then each reader reads the binlog
from before the first of them to after the last:
  mariadb-binlog --read-from-remote-server --raw   (the ceiling: the server's dump protocol,
                                                   bytes only, written to a tmpfs file)
  mariadb-binlog --read-from-remote-server -v      (a peer that decodes every row, as Sluice
                                                   does, rendering it as text, to /dev/null)
  sluice   mysql_cdc → NDJSON audit trail (one envelope per change), exactly once; done when
           its committed checkpoint reaches the end position
Each is measured wall-clock, with CPU seconds and peak RSS; Sluice's RSS is also measured on a
fifth of the changes, to show that it does not grow with their number.

Latency: a writer commits 5,000 changes/s (transactions of 50 rows every 10 ms, each row stamped
with NOW(6)) for --latency-seconds while Sluice writes them to an NDJSON trail (batch
max_latency 20ms, files rolled every 50 ms: each roll is a commit). A poller notes when each
transaction's rows become visible in a published file; latency = visible - stamped, p50/p99.

Needs a release build (`swift build -c release --product sluice`, or --sluice PATH) and
mariadb-server (apt).
"""
import argparse
import glob
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


class Server:
    """A throwaway MariaDB from scripts/mariadb-test-server.sh (or an existing one, --url)."""

    def __init__(self, url=None):
        self.dir = None
        if url:
            self.url = url
        else:
            out = subprocess.run(["bash", "-c", 'unset SLUICE_TEST_MYSQL_URL; source scripts/mariadb-test-server.sh >/dev/null && echo "$MARIADB_TEST_DIR $SLUICE_TEST_MYSQL_URL"'],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
            self.dir, self.url = out[0], out[1]
        rest = self.url.split("://", 1)[1]
        creds, hostpart = rest.rsplit("@", 1)
        self.user, self.password = creds.split(":", 1)
        host, self.database = hostpart.split("/", 1)
        self.host, self.port = host.split(":")

    def args(self):
        return ["--no-defaults", "-h", self.host, "-P", self.port, "-u", self.user, f"-p{self.password}"]

    def sql(self, statement, database=True):
        cmd = ["mariadb"] + self.args() + ["-N", "-B"] + ([self.database] if database else []) + ["-e", statement]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def position(self):
        file, pos = self.sql("SHOW MASTER STATUS").split()[:2]
        return file, int(pos)

    def stop(self):
        if self.dir:
            subprocess.run(["bash", "-c", f'SLUICE_TEST_MYSQL_URL=x; source scripts/mariadb-test-server.sh; MARIADB_TEST_DIR="{self.dir}" mariadb_test_server_stop'], cwd=ROOT)


def write_changes(server, changes, table):
    """changes row changes in transactions of 1,000: insert 1,000 rows, update them, delete them."""
    statements = []
    for t in range(changes // 1000):
        base = (t // 3) * 1000
        kind = t % 3
        if kind == 0:
            statements.append(f"INSERT INTO {table} SELECT seq, CONCAT('value ', seq), seq / 100, NOW(6) FROM seq_{base}_to_{base + 999};")
        elif kind == 1:
            statements.append(f"UPDATE {table} SET v = CONCAT(v, '+'), n = n + 1 WHERE id BETWEEN {base} AND {base + 999};")
        else:
            statements.append(f"DELETE FROM {table} WHERE id BETWEEN {base} AND {base + 999};")
    for i in range(0, len(statements), 200):
        server.sql(" ".join(statements[i:i + 200]))


def timed(cmd, work):
    """Runs `cmd` under /usr/bin/time: wall seconds, CPU seconds, peak RSS in MB."""
    t = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", f"{work}/time.txt"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    user, system, rss = open(f"{work}/time.txt").read().split()[-3:]
    return wall, float(user) + float(system), int(rss) / 1024


def ceiling(server, start, work):
    """mariadb-binlog reading the same binlog range raw (bytes only) into a tmpfs directory."""
    out = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        cmd = ["mariadb-binlog"] + server.args() + ["--read-from-remote-server", "--raw", "--to-last-log",
                                                    f"--start-position={start[1]}", f"--result-file={out}/", start[0]]
        wall, cpu, rss = timed(cmd, work)
        return wall, cpu, rss, sum(os.path.getsize(f) for f in glob.glob(f"{out}/*"))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def decoder(server, start, work):
    """mariadb-binlog decoding every row of the same range to text (`-v`), into /dev/null: a
    peer that, like Sluice, reads each row's values (it renders them as pseudo-SQL)."""
    return timed(["mariadb-binlog"] + server.args() + ["--read-from-remote-server", "--to-last-log", "--base64-output=decode-rows", "-v",
                                                       f"--start-position={start[1]}", "--result-file=/dev/null", start[0]], work)


def sluice_trail(binary, server, work, name, tables, until=None, server_id=4242):
    """Runs a mysql_cdc → NDJSON pipeline until its committed checkpoint reaches `until`
    ((file, pos)); with until=None, until it has committed any checkpoint. (wall, cpu, rss, lines)."""
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  trail:
    source:
      mysql_cdc: {{ url: "{server.url}", tables: [{", ".join(tables)}], snapshot: never, server_id: {server_id} }}
    sink:
      ndjson: {{ path: {d}/out, max_file_size: 256MB, max_file_age: 500ms }}
""")

    def checkpoint():
        try:
            with sqlite3.connect(f"{d}/state.db", timeout=1) as c:
                row = c.execute("SELECT value FROM checkpoints WHERE pipeline = 'trail'").fetchone()
        except sqlite3.Error:
            return None
        if not row:
            return None
        p = json.loads(row[0])
        return p["file"], p["pos"]

    def seq(place):
        return int(place[0].rsplit(".", 1)[1]), place[1]

    p = subprocess.Popen([binary, "run", f"{d}/p.yaml", "--no-progress", "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    stats = (0, 0)
    try:
        while True:
            if p.poll() is not None:
                raise RuntimeError("sluice exited early:\n" + p.stderr.read()[-3000:])
            stats = proc_stats(p.pid)
            c = checkpoint()
            if c and (until is None or seq(c) >= seq(until)):
                break
            if time.monotonic() - start > 1800:
                raise RuntimeError("timed out")
            time.sleep(0.05)
        wall = time.monotonic() - start
    finally:
        p.terminate()
        p.wait(timeout=60)
    lines = 0
    for f in glob.glob(f"{d}/out/**/*.ndjson", recursive=True):
        with open(f, "rb") as h:
            lines += sum(1 for _ in h)
    return wall, stats[0], stats[1], lines


def throughput(binary, server, work, changes, table, server_id):
    """Sluice and the ceiling over `changes` backlogged changes of `table`."""
    server.sql(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, v VARCHAR(40), n DECIMAL(12,2), at DATETIME(6))")
    server.sql(f"CREATE TABLE {table}_marker (id INT PRIMARY KEY)")
    # A first run leaves a checkpoint just before the backlog (it starts at the server's end).
    runner = threading.Thread(target=lambda: (time.sleep(1.5), server.sql(f"INSERT INTO {table}_marker VALUES (1)")))
    runner.start()
    first = sluice_trail(binary, server, work, table, [f"{server.database}.{table}", f"{server.database}.{table}_marker"], server_id=server_id)
    runner.join()
    start = server.position()
    t = time.monotonic()
    write_changes(server, changes, table)
    written = time.monotonic() - t
    end = server.position()
    top = ceiling(server, start, work) + decoder(server, start, work)
    wall, cpu, rss, lines = sluice_trail(binary, server, work, table, [f"{server.database}.{table}", f"{server.database}.{table}_marker"], until=end, server_id=server_id)
    # The trail's lines of this run: those of the first (the marker) are already there.
    return written, top, (wall, cpu, rss, lines - first[3])


def latency(binary, server, work, seconds):
    server.sql("CREATE TABLE lat (id BIGINT PRIMARY KEY, tx INT, at DATETIME(6))")
    d = os.path.join(work, "latency")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""state: {d}/state.db
pipelines:
  lat:
    source:
      mysql_cdc: {{ url: "{server.url}", tables: [{server.database}.lat], snapshot: never, server_id: 4343 }}
    batch: {{ max_latency: 20ms }}
    sink:
      ndjson: {{ path: {d}/out, max_file_age: 50ms }}
""")
    p = subprocess.Popen([binary, "run", f"{d}/p.yaml", "--no-progress", "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        # The writer: one client, a transaction of 50 rows every 10 ms, each stamped NOW(6) (UTC).
        txs = int(seconds * 100)
        script = ["SET time_zone = '+00:00';"]
        for tx in range(txs):
            script.append(f"INSERT INTO lat SELECT seq + {tx * 50}, {tx}, NOW(6) FROM seq_0_to_49; DO SLEEP(0.0085);")
        visible = {}
        stamped = {}
        stop = threading.Event()

        def poll():
            seen = set()
            while not stop.is_set() or len(visible) < txs:
                now = time.time()
                for f in glob.glob(f"{d}/out/**/*.ndjson", recursive=True):
                    if f in seen:
                        continue
                    seen.add(f)
                    with open(f) as h:
                        for line in h:
                            after = json.loads(line)["after"]
                            tx = after["tx"]
                            if tx not in visible:
                                visible[tx] = now
                                stamped[tx] = after["at"]
                if stop.is_set() and time.time() - stopped[0] > 30:
                    break
                time.sleep(0.005)

        stopped = [0.0]
        t = threading.Thread(target=poll)
        t.start()
        started = time.monotonic()
        subprocess.run(["mariadb"] + server.args() + [server.database], input="\n".join(script), text=True, check=True)
        elapsed = time.monotonic() - started
        stopped[0] = time.time()
        stop.set()
        t.join()
        import datetime
        lat = []
        for tx, seen_at in visible.items():
            at = datetime.datetime.strptime(stamped[tx], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
            lat.append((seen_at - at) * 1000)
        lat.sort()
        return txs * 50 / elapsed, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat), txs, proc_stats(p.pid)[1]
    finally:
        p.terminate()
        p.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--latency-seconds", type=int, default=30)
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--url", help="an existing server (binlog_format=ROW, binlog_row_metadata=FULL); default: start one")
    args = ap.parse_args()
    server = Server(args.url)
    work = tempfile.mkdtemp(prefix="mysql-cdc-bench-")
    try:
        version = server.sql("SELECT VERSION()").strip()
        print(f"server: MariaDB/MySQL {version}; Sluice: {args.sluice}")
        small = max(1000, args.changes // 5 // 1000 * 1000)
        _, _, (s_wall, s_cpu, s_rss, s_lines) = throughput(args.sluice, server, work, small, "bench_small", 5151)
        written, (c_wall, c_cpu, c_rss, c_bytes, d_wall, d_cpu, d_rss), (wall, cpu, rss, lines) = throughput(args.sluice, server, work, args.changes, "bench", 5252)
        n = args.changes
        print(f"\n{n:,} row changes in {n // 1000:,} transactions (written in {written:.1f} s), binlog {c_bytes / 1e6:.0f} MB")
        print(f"{'reader':<52} {'wall s':>8} {'changes/s':>11} {'CPU s':>7} {'peak RSS MB':>12}")
        print(f"{'mariadb-binlog --read-from-remote-server --raw':<52} {c_wall:>8.2f} {n / c_wall:>11,.0f} {c_cpu:>7.2f} {c_rss:>12.0f}")
        print(f"{'mariadb-binlog -v (every row decoded to text)':<52} {d_wall:>8.2f} {n / d_wall:>11,.0f} {d_cpu:>7.2f} {d_rss:>12.0f}")
        print(f"{'sluice mysql_cdc -> NDJSON audit trail':<52} {wall:>8.2f} {n / wall:>11,.0f} {cpu:>7.2f} {rss:>12.0f}")
        print(f"{'sluice, a fifth of the changes (' + format(small, ',') + ')':<52} {s_wall:>8.2f} {small / s_wall:>11,.0f} {s_cpu:>7.2f} {s_rss:>12.0f}")
        print(f"ratio: Sluice at {c_wall / wall:.2f}x the ceiling's changes/s and {d_wall / wall:.2f}x the row-decoding client's; "
              f"trail lines {lines:,} (expected {n:,})")
        if args.latency_seconds > 0:
            rate, p50, p99, seen, txs, lrss = latency(args.sluice, server, work, args.latency_seconds)
            print(f"\nlatency at {rate:,.0f} changes/s for {args.latency_seconds} s: commit -> visible in the trail p50 {p50:.0f} ms, "
                  f"p99 {p99:.0f} ms ({seen}/{txs} transactions), peak RSS {lrss:.0f} MB")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
