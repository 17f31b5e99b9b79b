#!/usr/bin/env python3
"""Deterministic generator of event rows for examples, tests and benchmarks.

    python3 scripts/generate_events.py --rows 200000 --format csv --out data/events.csv
    python3 scripts/generate_events.py --size-mb 300 --format ndjson --out bench/events.ndjson
    python3 scripts/generate_events.py --rows 1000 --format csv --bad-every 250 --out data/x.csv

Columns: event_id, user_id, amount (float, ~10% empty/null), currency, country, url,
is_mobile, session, created_at (ISO 8601 UTC). The same arguments always give the same bytes.
"""
import argparse
import json
import os
import random

CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF"]
COUNTRIES = ["DE", "FR", "US", "GB", "JP", "CH", "NL", "ES", "IT", "SE"]
PATHS = ["home", "search", "product", "cart", "checkout", "account", "help", "blog"]


def rows(seed, start_id):
    rnd = random.Random(seed)
    base = 1_795_000_000  # 2026-11-18T...Z
    i = start_id
    while True:
        r = rnd.getrandbits(48)
        amount = None if r % 10 == 0 else round((r % 1_000_000) / 100.0, 2)
        ts = base + (i * 37) % 604_800
        yield {
            "event_id": i,
            "user_id": r % 50_000,
            "amount": amount,
            "currency": CURRENCIES[r % 5],
            "country": COUNTRIES[(r >> 8) % 10],
            "url": "https://shop.example.com/%s/%d?ref=%x" % (PATHS[(r >> 4) % 8], r % 9973, r % 65521),
            "is_mobile": bool(r & 1),
            "session": "%08x" % (r & 0xFFFFFFFF),
            "created_at": "%sZ" % iso(ts),
        }
        i += 1


def iso(epoch):
    import datetime
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, help="number of rows")
    ap.add_argument("--size-mb", type=float, help="stop once the output reaches this size")
    ap.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start-id", type=int, default=0)
    ap.add_argument("--bad-every", type=int, default=0, help="make every Nth row malformed (for DLQ demos)")
    a = ap.parse_args()
    if not a.rows and not a.size_mb:
        ap.error("give --rows or --size-mb")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    limit_rows = a.rows or 10**12
    limit_bytes = int(a.size_mb * 1024 * 1024) if a.size_mb else 10**15
    written = 0
    buf = []
    size = 0
    with open(a.out + ".part", "w", encoding="utf-8", newline="") as f:
        if a.format == "csv":
            header = "event_id,user_id,amount,currency,country,url,is_mobile,session,created_at\n"
            f.write(header)
            size += len(header)
        for n, row in enumerate(rows(a.seed, a.start_id)):
            if n >= limit_rows or size >= limit_bytes:
                break
            bad = a.bad_every and n % a.bad_every == a.bad_every - 1
            if a.format == "csv":
                amount = "" if row["amount"] is None else repr(row["amount"])
                if bad:
                    line = "%d,not-a-number,%s\n" % (row["event_id"], amount)
                else:
                    line = "%d,%d,%s,%s,%s,%s,%s,%s,%s\n" % (
                        row["event_id"], row["user_id"], amount, row["currency"], row["country"], row["url"],
                        "true" if row["is_mobile"] else "false", row["session"], row["created_at"])
            else:
                line = ('{"event_id": %d, "broken": \n' % row["event_id"]) if bad else json.dumps(row, separators=(",", ":")) + "\n"
            buf.append(line)
            size += len(line)
            written += 1
            if len(buf) >= 10000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    os.replace(a.out + ".part", a.out)
    print("wrote %d rows, %.1f MB to %s" % (written, size / 1048576, a.out))


if __name__ == "__main__":
    main()
