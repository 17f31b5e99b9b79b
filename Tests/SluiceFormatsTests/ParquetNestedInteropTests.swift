import Foundation
import SluiceCore
import Testing
import SluiceTesting
@testable import SluiceFormats

/// Nested columns of files pyarrow and DuckDB write, read by ``ParquetReader`` as JSON text and
/// compared in python with the values pyarrow reads, for the leaf types `json.dumps`
/// cannot write directly: decimals (exact), timestamps and dates (ISO 8601), binary (base64),
/// NaN and infinities (strings), maps with integer keys (key/value pairs).
@Suite(.offCooperativePool) struct ParquetNestedInteropTests {
    /// argv: parquet path, Sluice's rows as NDJSON. pyarrow's values are turned into the JSON
    /// Sluice promises, following the column types.
    static let compare = #"""
        import sys, json, math, base64, datetime, decimal
        import pyarrow as pa, pyarrow.parquet as pq

        def norm(v, t):
            if v is None: return None
            if pa.types.is_map(t):
                if pa.types.is_string(t.key_type): return {k: norm(x, t.item_type) for k, x in v}
                return [{'key': norm(k, t.key_type), 'value': norm(x, t.item_type)} for k, x in v]
            if pa.types.is_struct(t): return {f.name: norm(v[f.name], f.type) for f in t}
            if pa.types.is_list(t) or pa.types.is_large_list(t): return [norm(x, t.value_type) for x in v]
            if isinstance(v, float):
                if math.isnan(v): return 'NaN'
                if math.isinf(v): return 'Infinity' if v > 0 else '-Infinity'
                return decimal.Decimal(repr(v))
            if isinstance(v, datetime.datetime):
                return v.replace(tzinfo=datetime.timezone.utc) if v.tzinfo is None else v
            if isinstance(v, datetime.date): return v.isoformat()
            if isinstance(v, bytes): return base64.b64encode(v).decode()
            return v

        def parse_sluice(v, want):
            # Timestamps come as ISO 8601 text; compare them as instants.
            if isinstance(want, datetime.datetime) and isinstance(v, str):
                return datetime.datetime.fromisoformat(v.replace('Z', '+00:00'))
            if isinstance(want, dict) and isinstance(v, dict): return {k: parse_sluice(x, want.get(k)) for k, x in v.items()}
            if isinstance(want, list) and isinstance(v, list) and len(v) == len(want):
                return [parse_sluice(a, b) for a, b in zip(v, want)]
            return v

        path, got_path = sys.argv[1], sys.argv[2]
        table = pq.read_table(path)
        types = {f.name: f.type for f in table.schema}
        want = table.to_pylist()
        got = [json.loads(line, parse_float=decimal.Decimal, parse_int=decimal.Decimal) for line in open(got_path)]
        assert len(got) == len(want), (len(got), len(want))
        bad = 0
        for i, (g, w) in enumerate(zip(got, want)):
            w = {k: norm(x, types[k]) for k, x in w.items()}
            g = {k: parse_sluice(x, w.get(k)) for k, x in g.items()}
            if g != w:
                bad += 1
                if bad <= 5: print('row %d:\n  sluice  %r\n  pyarrow %r' % (i, g, w), file=sys.stderr)
        if bad: sys.exit('%d of %d rows differ' % (bad, len(want)))
        print('ok', len(want))
        """#

    /// Reads `path` with Sluice and writes one JSON object per row (the raw JSON text of each
    /// column; the types here are all nested or numbers).
    static func dump(_ path: String, to out: String) throws {
        let reader = try ParquetReader(path: path)
        var text = ""
        for batch in try reader.readAll() {
            for r in 0..<batch.count {
                let members = batch.schema.fields.enumerated().map { c, field -> String in
                    let column = batch.columns[c]
                    var value = "null"
                    if !column.isNull(r) {
                        if case let .int64(v) = column.storage { value = String(v[r]) }
                        if column.type == .json { value = column.withBytes(at: r) { String(decoding: $0, as: UTF8.self) } }
                    }
                    return "\"\(field.name)\":\(value)"
                }
                text += "{" + members.joined(separator: ",") + "}\n"
            }
        }
        try text.write(toFile: out, atomically: true, encoding: .utf8)
    }

    @Test func pyarrowLeafTypesInsideNestedColumns() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            import sys, decimal, datetime, pyarrow as pa, pyarrow.parquet as pq
            D = decimal.Decimal
            ts = datetime.datetime(2026, 11, 25, 10, 0, 0, 123456)
            rows = 300
            def pick(i, options): return options[i % len(options)]
            t = pa.table({
                'id': pa.array(range(rows), pa.int64()),
                'dec': pa.array([pick(i, [None, [], [D('12.340'), None, D('-0.005')], [D('99999999.999')]]) for i in range(rows)], pa.list_(pa.decimal128(11, 3))),
                'bigdec': pa.array([pick(i, [[D('1234567890123456789012345.6789')], None]) for i in range(rows)], pa.list_(pa.decimal128(38, 4))),
                'ts': pa.array([pick(i, [[ts, None], [], None, [datetime.datetime(1969, 7, 20, 20, 17, 40)]]) for i in range(rows)], pa.list_(pa.timestamp('us'))),
                'ms': pa.array([pick(i, [[ts.replace(microsecond=123000)], None]) for i in range(rows)], pa.list_(pa.timestamp('ms', tz='UTC'))),
                'day': pa.array([pick(i, [[datetime.date(2026, 1, 2)], [None], None]) for i in range(rows)], pa.list_(pa.date32())),
                'bin': pa.array([pick(i, [[b'\\x00\\x01\\xff', b''], None, [None]]) for i in range(rows)], pa.list_(pa.binary())),
                'f': pa.array([pick(i, [[0.1, float('nan'), float('inf'), -float('inf'), -0.0, 1e300, 5e-324], [None], None]) for i in range(rows)], pa.list_(pa.float64())),
                'f32': pa.array([pick(i, [[0.1, 3.5], None]) for i in range(rows)], pa.list_(pa.float32())),
                'small': pa.array([pick(i, [[1, -128], None]) for i in range(rows)], pa.list_(pa.int8())),
                'u64': pa.array([pick(i, [[18446744073709551615], None]) for i in range(rows)], pa.list_(pa.uint64())),
                'imap': pa.array([pick(i, [[(1, 'a'), (2, None)], [], None]) for i in range(rows)], pa.map_(pa.int32(), pa.string())),
                'smap': pa.array([pick(i, [[('a', [1, 2]), ('b', None), ('c', [])], [], None]) for i in range(rows)], pa.map_(pa.string(), pa.list_(pa.int64()))),
            })
            pq.write_table(t, sys.argv[1] + '/v1.parquet', row_group_size=128, data_page_size=256)
            pq.write_table(t, sys.argv[1] + '/v2.parquet', row_group_size=100, data_page_version='2.0', compression='zstd',
                           column_encoding={'id': 'DELTA_BINARY_PACKED'}, use_dictionary=['bin', 'dec'])
            """
        let generated = try ParquetTestSupport.python(script, [dir.path])
        try #require(generated.status == 0, "\(generated.stderr)")
        for name in ["v1", "v2"] {
            let path = dir.appendingPathComponent("\(name).parquet").path
            let out = dir.appendingPathComponent("\(name).ndjson").path
            try Self.dump(path, to: out)
            let result = try ParquetTestSupport.python(Self.compare, [path, out])
            #expect(result.status == 0, "\(name): \(result.stderr)")
            #expect(result.stdout.contains("ok 300"), "\(name): \(result.stdout)")
        }
        // Maps with integer keys are arrays of key/value objects; decimals keep their digits.
        let reader = try ParquetReader(path: dir.appendingPathComponent("v1.parquet").path)
        let batch = try reader.readRowGroup(0)
        let imap = try #require(batch.schema.fields.firstIndex { $0.name == "imap" })
        #expect(batch.columns[imap].withBytes(at: 0) { String(decoding: $0, as: UTF8.self) } == #"[{"key":1,"value":"a"},{"key":2,"value":null}]"#)
        let dec = try #require(batch.schema.fields.firstIndex { $0.name == "dec" })
        #expect(batch.columns[dec].withBytes(at: 2) { String(decoding: $0, as: UTF8.self) } == "[12.340,null,-0.005]")
        let f = try #require(batch.schema.fields.firstIndex { $0.name == "f" })
        #expect(
            batch.columns[f].withBytes(at: 0) { String(decoding: $0, as: UTF8.self) }
                == #"[0.1,"NaN","Infinity","-Infinity",-0.0,1e+300,5e-324]"#)
    }

    @Test func duckDBNestedColumns() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("duck.parquet").path
        let script = """
            import sys, duckdb
            duckdb.sql('''
                select i as id,
                       case when i % 4 = 0 then null when i % 4 = 1 then [] else [i, null, i * 2] end as l,
                       case when i % 3 = 0 then null else {'a': i, 'b': [{'c': 'x' || i}, null], 'd': null::varchar} end as s,
                       case when i % 5 = 0 then null else map(['k' || i, 'z'], [i, null]) end as m,
                       [[i], [], null] as ll
                from range(5000) t(i)''').write_parquet(sys.argv[1], compression='snappy', row_group_size=2048)
            """
        let generated = try ParquetTestSupport.python(script, [path])
        try #require(generated.status == 0, "\(generated.stderr)")
        let out = dir.appendingPathComponent("duck.ndjson").path
        try Self.dump(path, to: out)
        let result = try ParquetTestSupport.python(Self.compare, [path, out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ok 5000"), "\(result.stdout)")
    }

    /// Corrupt pages and levels of nested columns give errors, never a crash or a hang.
    @Test func corruptNestedFilesNeverCrash() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("n.parquet").path
        let script = """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            r = range(200)
            pq.write_table(pa.table({
                'l': pa.array([None if i % 5 == 0 else [[i, None], [], None][: i % 4] for i in r], pa.list_(pa.list_(pa.int64()))),
                's': pa.array([None if i % 3 == 0 else {'a': [str(i)] * (i % 3), 'b': i} for i in r],
                              pa.struct([('a', pa.list_(pa.string())), ('b', pa.int32())])),
                'm': pa.array([[(str(i), i)] * (i % 2) for i in r], pa.map_(pa.string(), pa.int64())),
            }), sys.argv[1], compression='NONE', row_group_size=100, data_page_size=200)
            """
        let generated = try ParquetTestSupport.python(script, [path])
        try #require(generated.status == 0, "\(generated.stderr)")
        let sample = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        _ = try ParquetReader(bytes: sample).readAll()
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for _ in 0..<300 {
            var bytes = sample
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 4..<(sample.count / 2), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do { _ = try ParquetReader(bytes: bytes).readAll() } catch { failures += 1 }
        }
        #expect(failures > 0, "some corruptions are detected")
    }
}
