#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (Fuzz/Corpus/<Target>/): small, meaningful inputs
from which libFuzzer mutates. Run from anywhere; needs pyarrow for the Parquet seeds (the files are
committed, so only to change them). The YAML seeds are written from examples/ separately (see below)."""
import io
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# CSV: quotes, doubled quotes, CRLF, line breaks inside quotes, multibyte text, a BOM, every
# inferred type, blank lines, bad rows; the `;` ones fit the harness's declared columns.
write("FuzzCSV", "basic.csv", "id,name,score\n1,alice,3.5\n2,bob,4\n")
write("FuzzCSV", "quotes.csv", 'id,text\n1,"a,b"\n2,"say ""hi"""\n3,"line1\nline2"\n4,""\n5,\n')
write("FuzzCSV", "crlf.csv", "a,b\r\n1,x\r\n2,\"y\r\nz\"\r\n3,w")
write("FuzzCSV", "multibyte.csv", "\ufeffville,prix\nZürich,12\n東京,7\nŁódź,\"3\"\n😀,-1\n")
write("FuzzCSV", "types.csv",
      "b,i,f,ts,d,s\ntrue,007,1e3,2026-01-02T03:04:05Z,2026-01-02,x\nfalse,-9223372036854775808,NaN,2026-01-02 03:04:05.123456+02:00,1970-01-01,\n")
write("FuzzCSV", "bad-rows.csv", 'a,b\n1,2,3\n\n"unterminated,4\n5,"x"y\n')
write("FuzzCSV", "declared.csv",
      "1;2.5;12.34;true;2026-01-02T03:04:05Z;2026-01-02;text;aGVsbG8=\n-7;1e-3;-0.01;false;2026-01-02;1999-12-31;\"a;b\";\n")

# NDJSON: every value kind, escapes and surrogates, new keys later, widening, bad lines, CRLF.
write("FuzzNDJSON", "basic.ndjson", '{"id":1,"name":"alice","ok":true}\n{"id":2,"name":"bob","ok":false,"extra":null}\n')
write("FuzzNDJSON", "types.ndjson",
      '{"i":1,"f":2.5,"big":123456789012345678901234567890,"s":"x","t":"2026-01-02T03:04:05Z","day":"2026-01-02","o":{"a":[1,{"b":null}]},"l":[1,2]}\n'
      '{"i":3.25,"f":1,"big":1.5,"s":"\\u00e9\\ud83d\\ude00\\n","t":"2026-01-02","day":"2026-13-01","o":[],"l":{}}\r\n')
write("FuzzNDJSON", "bad-lines.ndjson", '{"a":1}\n\n[1,2]\n{"a":\n{"a":"x"}\n{"a":1}{"b":2}\n{"a":1e400}\n{"a":"NaN"}\n\xef\xbb\xbf')
write("FuzzNDJSON", "declared.ndjson",
      '{"i":1,"f":2,"d":"12.34","b":true,"t":"2026-01-02T03:04:05.5Z","day":"2026-01-02","s":"s","bin":"aGVsbG8=","j":{"x":[1]}}\n'
      '{"i":null,"d":1.5,"bin":"!!","j":"text","unknown":0}\n')

# Push bodies: a JSON object, arrays of objects (valid, mixed, nested), NDJSON, the schema's fields.
write("FuzzPushSplitter", "object.json", '{"id":1,"s":"x","received_at":"no"}')
write("FuzzPushSplitter", "array.json", '[{"id":1,"f":1.5,"b":true},\n {"id":2,"j":{"a":[1,2,{"b":null}]}}, 7, {}]')
write("FuzzPushSplitter", "schema.json",
      '[{"id":1,"f":9007199254740993,"d":"99999999999999999999999999999999999.99","b":false,"t":"2026-01-02T03:04:05Z","day":"2026-01-02","s":"\\u0061","bin":"aGk=","j":null}]')
write("FuzzPushSplitter", "bodies.ndjson", '{"id":1}\r\n\n  {"id":2,"s":"a\\"b"}\n{"id":\n[1]\n{"a":1,"\\u0061":2}\n')
write("FuzzPushSplitter", "deep.json", '{"a":' + "[" * 20 + "]" * 20 + "}")

# pgoutput messages (protocol 1, big-endian) and replication frames.
def be(fmt, *v):
    return struct.pack(">" + fmt, *v)


def s(text):
    return text.encode() + b"\0"


tup = be("h", 4) + b"t" + be("I", 2) + b"42" + b"n" + b"u" + b"b" + be("I", 1) + b"\x09"
msgs = {
    "begin": b"B" + be("Q", 0x15172D0) + be("q", 0x3041E51BD3135) + be("I", 728),
    "commit": b"C" + b"\0" + be("Q", 10) + be("Q", 20) + be("q", 30),
    "origin": b"O" + be("Q", 99) + s("node-a"),
    "relation": b"R" + be("I", 16384) + s("public") + s("orders") + b"d" + be("h", 2)
    + b"\x01" + s("id") + be("I", 20) + be("i", -1) + b"\x00" + s("total") + be("I", 1700) + be("i", 786438),
    "type": b"Y" + be("I", 16390) + s("public") + s("mood"),
    "insert": b"I" + be("I", 16384) + b"N" + tup,
    "update": b"U" + be("I", 7) + b"O" + tup + b"N" + tup,
    "update-key": b"U" + be("I", 7) + b"K" + tup + b"N" + tup,
    "update-new": b"U" + be("I", 7) + b"N" + tup,
    "delete": b"D" + be("I", 7) + b"K" + tup,
    "truncate": b"T" + be("I", 2) + b"\x03" + be("I", 5) + be("I", 6),
    "message": b"M" + b"\x01" + be("Q", 5) + s("sluice.snapshot") + be("I", 2) + b"\xff\x00",
}
for name, m in msgs.items():
    write("FuzzPgOutput", name, m)
write("FuzzPgOutput", "frame-xlogdata-insert", b"w" + be("Q", 1) + be("Q", 2) + be("q", 3) + msgs["insert"])
write("FuzzPgOutput", "frame-keepalive", b"k" + be("Q", 0x16B374D848) + be("q", 7) + b"\x01")

# What a NATS server sends.
write("FuzzNATS", "session.txt",
      'INFO {"server_id":"N1","max_payload":1048576,"headers":true,"connect_urls":["10.0.0.1:4222"]}\r\n'
      "PING\r\nPONG\r\n+OK\r\n"
      "MSG _INBOX.x 1  5\r\nhello\r\n"
      "MSG events.a 22 _INBOX.r.7 0\r\n\r\n"
      "HMSG orders 3 $JS.ACK.S.C.1.5.5.1700000000000000000.0 33 36\r\nNATS/1.0\r\nNats-Msg-Id: 0/1A:2\r\n\r\nabc\r\n"
      "HMSG _INBOX.p.1 9 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n"
      "-ERR 'Authorization Violation'\r\n")
write("FuzzNATS", "lowercase-tabs.txt", "msg\tsubj\t\t4 3\r\nabc\r\nping\r\nhmsg s 1 r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
write("FuzzNATS", "status.txt",
      "HMSG _INBOX.a 2 75 75\r\nNATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n\r\n"
      "HMSG _INBOX.b 2 32 32\r\nNATS/1.0 409 Request Timeout\r\n\r\n\r\n")
write("FuzzNATS", "error.txt", "-ERR 'Unknown Protocol Operation'\r\nFOO bar\r\n")

# Configuration files: every example without its comments, and a few using the components the
# harness registers (PostgreSQL, JetStream, blackhole) so decoding reaches their options.
for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
    if not name.endswith(".yaml"):
        continue
    text = open(os.path.join(ROOT, "examples", name)).read()
    lines = [re.sub(r"\s+#(?![^\"']*[\"']\s*$).*$", "", l) for l in text.splitlines() if not l.lstrip().startswith("#")]
    write("FuzzYAML", name, "\n".join(l for l in lines if l.strip()) + "\n")
write("FuzzYAML", "full-postgres.yaml", """state: postgres://s@h/db
shutdown_timeout: 45s
pipelines:
  orders:
    source:
      postgres: { url: "${PGURL}", table: public.orders, cursor: [updated_at], key: [id], lookback: 5m, batch_rows: 1000 }
    sink:
      postgres: { url: "${PGURL}", table: out.orders, mode: upsert, key: [id] }
    schema: { evolution: additive }
    dedupe: { key: [id], ttl: 1h }
    dead_letter: { max_rows: 100 }
    alerts: { lag: 5m }
  cdc.x:
    source:
      postgres_cdc: { url: "${PGURL:-postgres://a@b/c}", slot: s1, publication: p1, tables: [public.t] }
    sink:
      jetstream: { url: "nats://127.0.0.1:4222", stream: S, subject: "cdc.${EMPTY}x" }
serve: { listen: "0.0.0.0:8080" }
""")
write("FuzzYAML", "anchors.yaml", """defaults: &pg
  url: postgres://u@h/d
pipelines:
  a:
    source: { jetstream: { url: "nats://h:4222", stream: IN, columns: { id: int64, at: timestamp, amount: "decimal(10,2)" } } }
    sink: { blackhole: {} }
  b:
    source: { postgres: { <<: *pg, table: t, cursor: [id] } }
    sink: !!map { blackhole: {} }
""")

if __name__ == "__main__":
    pass


def parquet_seeds():
    """Tiny Parquet files from pyarrow: the types, encodings, codecs and page versions Sluice reads."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    def save(name, table, **kw):
        buf = io.BytesIO()
        pq.write_table(table, buf, store_schema=False, **kw)
        write("FuzzParquet", name, buf.getvalue())

    flat = pa.table({
        "i64": pa.array([1, None, -3], pa.int64()),
        "i32": pa.array([7, 8, None], pa.int32()),
        "f64": pa.array([1.5, float("nan"), None], pa.float64()),
        "f32": pa.array([0.25, None, -1.0], pa.float32()),
        "s": pa.array(["a", "é😀", None], pa.string()),
        "b": pa.array([True, None, False]),
        "d": pa.array([datetime.date(2026, 1, 2), None, datetime.date(1970, 1, 1)], pa.date32()),
        "ts": pa.array([datetime.datetime(2026, 1, 2, 3, 4, 5), None, datetime.datetime(1999, 12, 31)], pa.timestamp("us", tz="UTC")),
        "dec": pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-0.01")], pa.decimal128(10, 2)),
        "bin": pa.array([b"\x00\xff", None, b""], pa.binary()),
    })
    save("flat-plain.parquet", flat, compression="none", use_dictionary=False, write_statistics=False)
    save("flat-dict-snappy-v2.parquet", flat, compression="snappy", data_page_version="2.0")
    small = flat.select(["i64", "s", "ts"])
    save("gzip.parquet", small, compression="gzip", write_statistics=False)
    save("zstd-rowgroups.parquet", small, compression="zstd", row_group_size=1, write_statistics=False)
    save("ms-timestamps.parquet", pa.table({"t": pa.array([1, 2], pa.timestamp("ms")), "u": pa.array([1, 2], pa.uint64())}),
         compression="none", write_statistics=False)
    save("int96.parquet", pa.table({"t": pa.array([1_700_000_000_123_456_000, None], pa.timestamp("ns"))}), compression="none",
         use_deprecated_int96_timestamps=True, write_statistics=False)
    enc = pa.table({
        "i": pa.array([1, 2, 3, 100, -5], pa.int64()),
        "s": pa.array(["ab", "abc", "abd", None, "x"], pa.string()),
        "t": pa.array(["p", "q", "r", "s", "t"], pa.string()),
        "f": pa.array([1.0, 2.5, None, 4.0, 5.0], pa.float64()),
    })
    save("delta-bss.parquet", enc, compression="none", use_dictionary=False, write_statistics=False,
         column_encoding={"i": "DELTA_BINARY_PACKED", "s": "DELTA_BYTE_ARRAY", "t": "DELTA_LENGTH_BYTE_ARRAY", "f": "BYTE_STREAM_SPLIT"})
    nested = pa.table({
        "l": pa.array([[1, 2], None, [], [None]], pa.list_(pa.int64())),
        "st": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}, {"a": 2, "b": None}], pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "m": pa.array([[("k", 1)], None, [], [("a", None), ("b", 2)]], pa.map_(pa.string(), pa.int64())),
        "ll": pa.array([[[1], []], None, [None], [[2, 3]]], pa.list_(pa.list_(pa.int32()))),
    })
    save("nested.parquet", nested, compression="none", write_statistics=False)
    save("nested-snappy-v2.parquet", nested, compression="snappy", data_page_version="2.0", write_statistics=False)


try:
    parquet_seeds()
except ImportError:
    print("pyarrow is not installed: the Parquet seeds are left as they are")


# MySQL (FuzzMySQL): the first byte picks the parser. The binlog seeds (binlog-*.bin, mode 0)
# were cut from a MariaDB 10.11 binlog of the test server (a format description, then table
# maps with full metadata and their rows events); these are the hand-made ones.
def mysql_packet(payload, seq):
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def lenenc(b):
    return bytes([len(b)]) + b


column = b"".join(lenenc(x) for x in [b"def", b"db", b"t", b"t", b"c", b"c"]) + b"\x0c" + (45).to_bytes(2, "little") \
    + (11).to_bytes(4, "little") + b"\x08" + (0).to_bytes(2, "little") + b"\x00\x00\x00"
write("FuzzMySQL", "query-answer.bin", b"\x02" + mysql_packet(b"\x01", 1) + mysql_packet(column, 2)
      + mysql_packet(b"\x0242" + b"\xfb"[:0], 3) + mysql_packet(b"\xfe\x00\x00\x02\x00\x00\x00", 4))
write("FuzzMySQL", "query-ok.bin", b"\x02" + mysql_packet(b"\x00\x01\x00\x02\x00\x00\x00", 1))
write("FuzzMySQL", "query-error.bin", b"\x02" + mysql_packet(b"\xff\x7a\x04#42S02Table 'x' doesn't exist", 1))
greeting = b"\x0a" + b"10.11.19-MariaDB\x00" + (7).to_bytes(4, "little") + b"abcdefgh\x00" + (0xf7fe).to_bytes(2, "little") \
    + b"\x2d" + (2).to_bytes(2, "little") + (0x81bf).to_bytes(2, "little") + b"\x15" + b"\x00" * 6 + (0x1d).to_bytes(4, "little") \
    + b"ijklmnopqrst\x00" + b"mysql_native_password\x00"
write("FuzzMySQL", "greeting.bin", b"\x01" + greeting)
write("FuzzMySQL", "auth-switch.bin", b"\x03\xfe" + b"caching_sha2_password\x00" + b"0123456789abcdefghij\x00")
write("FuzzMySQL", "auth-more.bin", b"\x03\x01\x04")
write("FuzzMySQL", "auth-ok.bin", b"\x03\x00\x00\x00\x02\x00\x00\x00")
# MySQL binary JSON (mode 4): {"a": 1, "b": [true, null]}, a large array with an inlined int32
# and a string, and opaque DECIMAL and DATETIME values in an array.
write("FuzzMySQL", "json-object.bin", b"\x04" + bytes.fromhex("00 0200 1e00 1200 0100 1300 0100 050100 021400 61 62 0200 0a00 040100 040000"))
write("FuzzMySQL", "json-large-array.bin", b"\x04" + bytes.fromhex("03 02000000 14000000 0770110100 0c12000000 0178"))
write("FuzzMySQL", "json-opaque.bin", b"\x04" + bytes.fromhex("02 0200 1b00 0f0a00 0f1100 f6050502807b2d 0c08 20a10719761f9519"))


# MySQL 8 compressed transactions (mode 0): binlog-rows-0's table map and rows event, packed into
# a TRANSACTION_PAYLOAD event (type 40) as MySQL packs them: fields as length-encoded (type,
# length, value) triples, an end mark, then the events without checksums, in a zstd frame of raw
# blocks with its size (payload-zstd) or without (payload-zstd-streamed), or uncompressed
# (payload-none).
def binlog_events(data):
    out, o = [], 0
    while o + 19 <= len(data):
        size = int.from_bytes(data[o + 9:o + 13], "little")
        out.append(data[o:o + size])
        o += size
    return out


def crc32_event(event):
    import zlib
    return event + zlib.crc32(event).to_bytes(4, "little")


def payload_event(inner, zstd, like, sized=True):
    if zstd:
        # With its size (single segment, 4-byte size), or without it as MySQL 8.0.20 streams
        # (a window descriptor instead: 128 KiB).
        frame = b"\x28\xb5\x2f\xfd" + (b"\xa0" + len(inner).to_bytes(4, "little") if sized else b"\x00\x38")
        frame += (1 | len(inner) << 3).to_bytes(3, "little") + inner  # one raw block, the last
        fields = b"\x02\x01\x00" + b"\x03\x01" + bytes([len(inner)]) if len(inner) < 251 else b"\x02\x01\x00" + b"\x03\x03\xfc" + len(inner).to_bytes(2, "little")
        payload = frame
    else:
        fields, payload = b"\x02\x03\xfc\xff\x00", inner  # 255 (none) takes 3 bytes
    fields += (b"\x01\x01" + bytes([len(payload)])) if len(payload) < 251 else (b"\x01\x03\xfc" + len(payload).to_bytes(2, "little"))
    body = fields + b"\x00" + payload
    header = bytearray(like[:19])
    header[4] = 40
    header[9:13] = (19 + len(body) + 4).to_bytes(4, "little")
    return crc32_event(bytes(header) + body)


rows_seed = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "FuzzMySQL", "binlog-rows-0.bin"), "rb").read()[1:]
events = binlog_events(rows_seed)
inner = b""
for e in events[1:]:
    plain = bytearray(e[:-4])  # without the checksum
    plain[9:13] = len(plain).to_bytes(4, "little")
    inner += bytes(plain)
for name, zstd, sized in (("payload-zstd.bin", True, True), ("payload-zstd-streamed.bin", True, False), ("payload-none.bin", False, True)):
    write("FuzzMySQL", name, b"\x00" + events[0] + payload_event(inner, zstd, events[-1], sized))
