#!/usr/bin/env python3
"""JetStream benchmark: acked publishing against nats-py and the server's ceiling, and
end-to-end consumption into Parquet by 1, 2 and 3 Sluice workers, in one run.

    python3 Benchmarks/queue_bench.py                  # 1M records of 128 bytes
    python3 Benchmarks/queue_bench.py --records 200000

Publish (each into a fresh stream, one nats-server with file storage on loopback):
  ceiling       nats-py core PUB into the stream's subject, no acks, timed until the stream holds all
  nats-py       js.publish_async with at most 4,000 acks in flight, until every ack is in (the peer),
                without and with a Nats-Msg-Id per message
  sluice        `sluice run`: NDJSON file -> jetstream sink (window 4096, Nats-Msg-Id on every
                message, a commit waits for every PubAck), wall clock of the whole run: once
                packing records into messages (the default, up to 500 per message), once one
                record per message (`records_per_message: 1`, the same work as nats-py)
Consume (the packed stream Sluice published; a fresh durable consumer per case), timed until
the consumer has nothing pending and nothing unacknowledged (Parquet files close every second):
  file->parquet the same records read from the NDJSON file instead (no queue): the baseline
  blackhole     1 worker, jetstream -> blackhole sink: what the queue path alone delivers
                (timed until every message is delivered: the blackhole commits every 5 s)
  1 worker      jetstream -> parquet, SQLite state (the laptop setup); also from the stream of
                one record per message
  N workers     N = 1, 2, 3 `sluice run` processes sharing the consumer and a PostgreSQL state store
Every case reports records/s, CPU seconds of Sluice and of nats-server, and peak RSS (per
process; the largest worker for N).

Change events (`--change-events`, or only them with `--change-events-only`): the same number of
`postgres_cdc` change events (the envelope with `lsn` and `seq`, ~420 bytes, transactions of
1,000) published from an NDJSON file: packed with their ids in a `Sluice-Record-Ids` header
(the default) against one per message (`records_per_message: 1`, how change events went
before). The packed stream is read back and must hold every change once.

Needs a release build (`swift build -c release --product sluice`, or --sluice PATH), nats-server
(apt) and nats-py (pip install nats-py). Starts its own throwaway nats-server and PostgreSQL.
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from db_bench import start_server  # noqa: E402


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_nats(work):
    port, monitor = free_port(), free_port()
    store = os.path.join(work, "nats")
    p = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor), "-sd", store],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request
    for _ in range(200):
        try:
            if b"ok" in urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true", timeout=1).read():
                break
        except Exception:
            time.sleep(0.05)
    return f"nats://127.0.0.1:{port}", p


def stats(pid):
    cpu, rss = 0.0, 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return cpu, rss


def change_event(i, per_transaction=1000):
    tx, seq = divmod(i, per_transaction)
    lsn = f"0/{0x1000000 + tx * 0x10000:X}"
    after = {"id": i, "customer_id": i % 9973, "amount": f"{(i * 37) % 100000 / 100:.2f}", "status": "paid",
             "created_at": "2026-12-07 10:15:00.123456+00"}
    source = {"db": "shop", "schema": "public", "table": "orders", "lsn": lsn, "txId": 1000 + tx, "ts_ms": 1796000000000 + tx}
    return json.dumps({"op": "c", "table": "public.orders", "key": {"id": i}, "before": None, "after": after, "source": source,
                       "lsn": lsn, "tx_id": 1000 + tx, "ts_ms": 1796000000000 + tx, "seq": seq}, separators=(",", ":"))


async def stored_records(url, stream):
    """Every record of a stream (NDJSON lines of each message), by an ordered read."""
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream()
    last = (await js.stream_info(stream)).state.last_seq
    sub = await js.pull_subscribe(f"{stream.lower()}.>", durable="check", stream=stream)
    ids, seen = [], 0
    while seen < last:
        for m in await sub.fetch(20, timeout=10):
            seen = m.metadata.sequence.stream
            await m.ack()  # a pull consumer stops at 1,000 messages awaiting their ack
            ids.extend(json.loads(line)["after"]["id"] for line in m.data.split(b"\n") if line)
    await nc.close()
    return ids


def publish_file(a, url, server, work, data, stream, subject, per_message):
    """`sluice run`: the NDJSON file `data` into `stream` by the jetstream sink (records_per_message
    `per_message`, or the default); returns (seconds, Sluice CPU s, peak RSS MB, nats-server CPU s)."""
    d = os.path.join(work, "pub-" + stream)
    os.makedirs(d)
    extra = f", records_per_message: {per_message}" if per_message else ""
    with open(os.path.join(d, "p.yaml"), "w") as f:
        f.write(f"""pipelines:
  publish:
    source:
      file: {{ path: {data}, format: ndjson }}
    sink:
      jetstream: {{ url: "{url}", stream: {stream}, subject: "{subject}"{extra} }}
""")
    before = stats(server.pid)[0]
    t, cpu, rss = run_processes([[a.sluice, "run", "p.yaml", "--no-progress", "--log-level", "error"]], d, None)
    return t, cpu, rss, stats(server.pid)[0] - before


def run_change_events(a, n):
    """The change-event cases on a nats-server of their own."""
    work = tempfile.mkdtemp(prefix="sluice-queue-bench-")
    url, server = start_nats(work)
    try:
        change_event_cases(a, url, server, work, n)
    finally:
        server.terminate()
        server.wait()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def change_event_cases(a, url, server, work, n):
    """Change events from a file into JetStream: packed with ids, and one per message."""
    data = os.path.join(work, "changes.ndjson")
    with open(data, "w") as f:
        for i in range(n):
            f.write(change_event(i) + "\n")
    results = []
    for stream, per_message, label in [("CHANGES", None, "packed with record ids (default: up to 500 per message)"),
                                        ("CHANGES1", 1, "one change per message (before: the only way)")]:
        t, cpu, rss, server_cpu = publish_file(a, url, server, work, data, stream, f"{stream.lower()}.{{table}}", per_message)
        messages = asyncio.run(last_sequence(url, stream))
        results.append((label, n / t, cpu, rss, server_cpu, messages))
        if per_message is None:
            ids = asyncio.run(stored_records(url, stream))
            if len(ids) != n or len(set(ids)) != n:
                sys.exit(f"{label}: the stream holds {len(ids)} changes ({len(set(ids))} distinct), expected {n}")
    asyncio.run(py_delete(url, ["CHANGES", "CHANGES1"]))
    base = results[1][1]
    print(f"\n{n:,} change events (~{len(change_event(n // 2))} bytes each), one run, {os.cpu_count()} cores shared by every process\n")
    print("| case | changes/s | × one per message | CPU s | nats-server CPU s | peak RSS MB | messages |")
    print("|---|---|---|---|---|---|---|")
    for label, rate, cpu, rss, server_cpu, messages in results:
        print(f"| sluice file -> jetstream, {label} | {rate:,.0f} | {rate / base:.2f} | {cpu:.1f} | {server_cpu:.1f} | {rss:.0f} | {messages:,} |")


def record(i):
    body = json.dumps({"n": i, "pad": "x" * 100}, separators=(",", ":"))
    return body + " " * (128 - len(body))


async def py_publish(url, stream, subject, n, acked, message_ids=False):
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    try:
        await js.delete_stream(stream)
    except Exception:
        pass
    await js.add_stream(name=stream, subjects=[subject])
    payloads = [record(i).encode() for i in range(n)]
    start = time.monotonic()
    if acked:
        # nats-py's fastest acked path: futures, at most 4,000 unacknowledged, then wait for all.
        if message_ids:  # the same work as Sluice: the server tracks every id for de-duplication
            for i, p in enumerate(payloads):
                await js.publish_async(subject, p, headers={"Nats-Msg-Id": f"py:{i}"})
        else:
            for p in payloads:
                await js.publish_async(subject, p)
        await js.publish_async_completed()
    else:
        for i, p in enumerate(payloads):
            await nc.publish(subject, p)
            if i % 10000 == 0:
                await nc.flush()
        await nc.flush()
        while (await js.stream_info(stream)).state.messages < n:
            await asyncio.sleep(0.01)
    elapsed = time.monotonic() - start
    if not acked:
        # Let the server finish writing before the next case starts.
        await js.delete_stream(stream)
        await asyncio.sleep(2)
    await nc.close()
    return elapsed


async def last_sequence(url, stream):
    import nats
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state.last_seq
    finally:
        await nc.close()


async def consumer_done(url, stream, consumer, last_seq, acked=True):
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        info = await js.consumer_info(stream, consumer)
        return info.num_pending == 0 and (info.num_ack_pending == 0 or not acked) and info.delivered.stream_seq >= last_seq
    except Exception:
        return False
    finally:
        await nc.close()


def run_processes(cmds, cwd, done, timeout=3600):
    """Starts every command, waits for done() (or all to exit), then SIGTERMs them.
    Returns (wall seconds, total CPU seconds, max peak RSS MB)."""
    start = time.monotonic()
    procs = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(cwd, f"log{i}.txt"), "w"))
             for i, c in enumerate(cmds)]
    peak = {p.pid: (0.0, 0.0) for p in procs}
    while time.monotonic() - start < timeout:
        for p in procs:
            if p.poll() is None:
                sample = stats(p.pid)  # (0, 0) when the process ended meanwhile: keep the last sample
                peak[p.pid] = (max(peak[p.pid][0], sample[0]), max(peak[p.pid][1], sample[1]))
        if all(p.poll() is not None for p in procs) or (done is not None and done()):
            break
        time.sleep(0.02)  # short runs (a packed publish takes about a second) must be sampled too
    elapsed = time.monotonic() - start
    for p in procs:
        if p.poll() is None:
            sample = stats(p.pid)
            peak[p.pid] = (max(peak[p.pid][0], sample[0]), max(peak[p.pid][1], sample[1]))
            p.terminate()
    for p in procs:
        p.wait()
        if p.returncode != 0:
            sys.exit(f"a sluice process failed; see {cwd}/log*.txt")
    return elapsed, sum(c for c, _ in peak.values()), max(r for _, r in peak.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--change-events", action="store_true", help="also publish change events, packed and one per message")
    ap.add_argument("--change-events-only", action="store_true", help="only the change events")
    a = ap.parse_args()
    n = a.records
    if a.change_events_only:
        run_change_events(a, n)
        return
    work = tempfile.mkdtemp(prefix="sluice-queue-bench-")
    url, server = start_nats(work)
    pg_url, pg_stop = start_server(work)
    results = []
    try:
        data = os.path.join(work, "in.ndjson")
        with open(data, "w") as f:
            for i in range(n):
                f.write(record(i) + "\n")

        t = asyncio.run(py_publish(url, "CEIL", "ceil", n, acked=False))
        results.append(("publish", "ceiling: core PUB, stored without acks (nats-py)", n / t, None, None, None))
        t = asyncio.run(py_publish(url, "PY", "py", n, acked=True))
        results.append(("publish", "nats-py publish_async, acked (4,000 in flight)", n / t, None, None, None))
        asyncio.run(py_delete(url, ["CEIL", "PY"]))
        t = asyncio.run(py_publish(url, "PYID", "pyid", n, acked=True, message_ids=True))
        results.append(("publish", "nats-py publish_async, acked, Nats-Msg-Id (the same work as Sluice)", n / t, None, None, None))
        asyncio.run(py_delete(url, ["PYID"]))

        for stream, per_message, label in [("EVENTS", None, "packed (default: up to 500 records per message)"),
                                            ("EVENTS1", 1, "one record per message (the same work as nats-py)")]:
            t, cpu, rss, server_cpu = publish_file(a, url, server, work, data, stream, f"{stream.lower()}.in", per_message)
            results.append(("publish", f"sluice file -> jetstream, acked, Nats-Msg-Id, {label}", n / t, cpu, rss, server_cpu))

        d = os.path.join(work, "file")
        os.makedirs(d)
        with open(os.path.join(d, "p.yaml"), "w") as f:
            f.write(f"""pipelines:
  lake:
    source:
      file: {{ path: {data}, format: ndjson }}
    sink:
      parquet: {{ path: lake }}
""")
        t, cpu, rss = run_processes([[a.sluice, "run", "p.yaml", "--no-progress", "--log-level", "error"]], d, None)
        results.append(("consume", "file -> parquet (no queue, the baseline)", n / t, cpu, rss, None))

        # Files close (and their records are acked) every second: the run ends within about a
        # second of the last record; packed, the whole stream takes only a few seconds.
        lake = "parquet: { path: lake, max_file_age: 1s }"
        cases = [("1 worker -> blackhole, SQLite state (the queue alone)", "EVENTS", 1, ".sluice/state.db", "blackhole: {}"),
                 ("1 worker, SQLite state", "EVENTS", 1, ".sluice/state.db", lake),
                 ("1 worker, SQLite state, one record per message", "EVENTS1", 1, ".sluice/state.db", lake)]
        cases += [(f"{k} worker{'s' if k > 1 else ''}, PostgreSQL state", "EVENTS", k, pg_url, lake) for k in (1, 2, 3)]
        last = {s: asyncio.run(last_sequence(url, s)) for s in ("EVENTS", "EVENTS1")}
        for label, stream, workers, state, sink in cases:
            consumer = f"c{len(results)}"
            d = os.path.join(work, consumer)
            os.makedirs(d)
            with open(os.path.join(d, "p.yaml"), "w") as f:
                f.write(f"""state: "{state}"
pipelines:
  {consumer}:
    source:
      jetstream: {{ url: "{url}", stream: {stream}, consumer: {consumer} }}
    sink:
      {sink}
""")
            before = stats(server.pid)[0]
            t, cpu, rss = run_processes([[a.sluice, "run", "p.yaml", "--no-progress", "--log-level", "error"]] * workers, d,
                                        lambda: asyncio.run(consumer_done(url, stream, consumer, last[stream], acked="blackhole" not in sink)))
            server_cpu = stats(server.pid)[0] - before
            rows = subprocess.run([sys.executable, "-c", "import duckdb; print(duckdb.sql(\"select count(*), count(distinct n) from read_parquet('lake/*.parquet')\").fetchall()[0])"],
                                  cwd=d, capture_output=True, text=True).stdout.strip() if "parquet" in sink else f"({n}, {n})"
            if rows != f"({n}, {n})":
                sys.exit(f"{label}: the lake holds (rows, distinct) {rows}, expected {n} of each")
            results.append(("consume", f"jetstream -> {'blackhole' if 'blackhole' in sink else 'parquet'}, {label}", n / t, cpu, rss, server_cpu))
    finally:
        server.terminate()
        server.wait()
        pg_stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    ceiling = results[0][2]
    peer = results[2][2]  # nats-py with message ids: the same work
    baseline = next(r[2] for r in results if r[1].startswith("file -> parquet"))
    print(f"\n{n:,} records of 128 bytes, one run, {os.cpu_count()} cores shared by every process\n")
    print("| case | records/s | × ceiling | × nats-py | × file→parquet | CPU s | nats-server CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, label, rate, cpu, rss, server_cpu in results:
        vs_file = f"{rate / baseline:.2f}" if kind == "consume" else ""
        print(f"| {label} | {rate:,.0f} | {rate / ceiling:.2f} | {rate / peer:.1f} | {vs_file} | "
              f"{'' if cpu is None else f'{cpu:.1f}'} | {'' if server_cpu is None else f'{server_cpu:.1f}'} | "
              f"{'' if rss is None else f'{rss:.0f}'} |")
    if a.change_events:
        run_change_events(a, n)


async def py_delete(url, streams):
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream()
    for s in streams:
        try:
            await js.delete_stream(s)
        except Exception:
            pass
    await nc.close()


if __name__ == "__main__":
    main()
