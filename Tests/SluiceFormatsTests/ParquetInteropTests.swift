import Foundation
import SluiceCore
import Testing
import SluiceTesting
@testable import SluiceFormats

/// Python helpers: canonical text of values as pyarrow and DuckDB read them, matching
/// ``ParquetTestSupport/canonical(_:_:)``.
enum ParquetInteropScripts {
    static let canonical = #"""
        import json, struct, decimal, sys
        import pyarrow as pa
        decimal.getcontext().prec = 100

        def canon_double(v):
            return 'nan' if v != v else str(struct.unpack('<q', struct.pack('<d', v))[0])

        def canon_array(arr):
            t = arr.type
            if isinstance(t, pa.BaseExtensionType):
                arr = pa.chunked_array([c.storage for c in arr.chunks], type=t.storage_type)
                t = t.storage_type
            if pa.types.is_timestamp(t):
                ints = arr.cast(pa.int64()).to_pylist()
                if t.unit == 'ns':
                    return [None if v is None else str(v // 1000) for v in ints]
                mul = {'s': 1000000, 'ms': 1000, 'us': 1}[t.unit]
                return [None if v is None else str(v * mul) for v in ints]
            if pa.types.is_date32(t):
                return [None if v is None else str(v) for v in arr.cast(pa.int32()).to_pylist()]
            out = []
            for v in arr.to_pylist():
                if v is None: out.append(None)
                elif pa.types.is_boolean(t): out.append('true' if v else 'false')
                elif pa.types.is_integer(t): out.append(str(v))
                elif pa.types.is_floating(t): out.append(canon_double(v))
                elif pa.types.is_decimal(t): out.append(str(int(v.scaleb(t.scale))))
                elif pa.types.is_string(t) or pa.types.is_large_string(t): out.append(v)
                elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t): out.append(v.hex())
                else: raise Exception('unexpected type %s' % t)
            return out
        """#

    /// argv: parquet path, output JSON path. Reads with pyarrow.
    static let readWithPyarrow =
        canonical + "\n" + #"""
            import pyarrow.parquet as pq
            t = pq.read_table(sys.argv[1])
            result = {'types': {f.name: str(f.type) + ('' if f.nullable else ' not null') for f in t.schema},
                      'columns': {name: canon_array(t.column(name)) for name in t.column_names}}
            json.dump(result, open(sys.argv[2], 'w'))
            """#

    /// argv: parquet path, output JSON path. Reads with DuckDB.
    static let readWithDuckDB =
        canonical + "\n" + #"""
            import duckdb, re
            con = duckdb.connect()
            path = sys.argv[1]
            described = con.execute('DESCRIBE SELECT * FROM read_parquet(?)', [path]).fetchall()
            exprs = []
            for row in described:
                name, typ = row[0], row[1]
                q = '"' + name.replace('"', '""') + '"'
                if typ == 'DATE': exprs.append("CAST(%s - DATE '1970-01-01' AS BIGINT)" % q)
                elif typ.startswith('TIMESTAMP'): exprs.append('epoch_us(%s)' % q)
                elif typ == 'JSON': exprs.append('CAST(%s AS VARCHAR)' % q)
                else: exprs.append(q)
            rows = con.execute('SELECT %s FROM read_parquet(?)' % ', '.join(exprs), [path]).fetchall()
            columns = {}
            for i, row in enumerate(described):
                name, typ = row[0], row[1]
                values = []
                for r in rows:
                    v = r[i]
                    if v is None: values.append(None)
                    elif typ == 'BOOLEAN': values.append('true' if v else 'false')
                    elif typ in ('DOUBLE', 'FLOAT'): values.append(canon_double(v))
                    elif typ.startswith('DECIMAL'):
                        scale = int(re.match(r'DECIMAL\(\d+,(\d+)\)', typ).group(1))
                        values.append(str(int(v.scaleb(scale))))
                    elif typ == 'BLOB': values.append(bytes(v).hex())
                    else: values.append(str(v) if not isinstance(v, str) else v)
                columns[name] = values
            json.dump({'types': {row[0]: row[1] for row in described}, 'columns': columns}, open(sys.argv[2], 'w'))
            """#

    /// argv: output directory. Writes the same table with pyarrow (many settings) and DuckDB, and
    /// prints the expected Sluice types and canonical values to `expected.json`.
    static let writeWithPyarrow =
        canonical + "\n" + #"""
            import os, random, duckdb
            import pyarrow.parquet as pq
            out = sys.argv[1]
            n = 2500
            def col(values, typ, every):
                return pa.array([None if i % every == 1 else values(i) for i in range(n)], typ)
            f32s = [0.0, -0.0, 1.5, float('nan'), float('inf'), float('-inf'), 3.4028234663852886e38, 1e-45]
            f64s = [0.0, -0.0, 1.5, float('nan'), float('inf'), float('-inf'), 1.7976931348623157e308, 5e-324, 0.1]
            strs = ['', 'a', 'héllo', '日本語', '🚀 rocket', 'z' * 300, 'tab\tand\nnewline']
            big = 10 ** 38 - 1
            cols = {
                'i8': (col(lambda i: (i * 37) % 256 - 128, pa.int8(), 5), 'int64'),
                'i16': (col(lambda i: [-32768, 32767, i][i % 3], pa.int16(), 6), 'int64'),
                'i32': (col(lambda i: [-2**31, 2**31 - 1, i * 1000, -i][i % 4], pa.int32(), 7), 'int64'),
                'i64': (col(lambda i: [-2**63, 2**63 - 1, i * 10**12, -i, i % 10][i % 5], pa.int64(), 8), 'int64'),
                'u8': (col(lambda i: i % 256, pa.uint8(), 9), 'int64'),
                'u16': (col(lambda i: (i * 31) % 65536, pa.uint16(), 10), 'int64'),
                'u32': (col(lambda i: [2**32 - 1, i, 2**31][i % 3], pa.uint32(), 11), 'int64'),
                'u64': (col(lambda i: [2**64 - 1, i, 2**63][i % 3], pa.uint64(), 12), 'decimal(20,0)'),
                'f32': (col(lambda i: f32s[i % len(f32s)] if i < 50 else i / 8, pa.float32(), 13), 'float64'),
                'f64': (col(lambda i: f64s[i % len(f64s)] if i < 50 else i / 7, pa.float64(), 14), 'float64'),
                'flag': (col(lambda i: i % 3 == 0, pa.bool_(), 4), 'bool'),
                's': (col(lambda i: strs[i % len(strs)] + str(i % 40), pa.string(), 3), 'string'),
                'ls': (col(lambda i: 'large-%d' % (i * 7919 % 1000), pa.large_string(), 15), 'string'),
                'bin': (col(lambda i: bytes([i % 256, 0, (i * 3) % 256])[: i % 4], pa.binary(), 16), 'binary'),
                'fsb': (col(lambda i: bytes([i % 256, 1, 2, (i * 7) % 256]), pa.binary(4), 17), 'binary'),
                'day': (col(lambda i: [-719162, 0, 2932896, -1, i][i % 5], pa.date32(), 18), 'date'),
                'ts_s': (col(lambda i: [-2208988800, 4102444800, i * 1000][i % 3], pa.timestamp('s'), 19), 'timestamp'),
                'ts_ms': (col(lambda i: [-2208988800123, 4102444800999, i][i % 3], pa.timestamp('ms', tz='UTC'), 20), 'timestamp'),
                'ts_us': (col(lambda i: [-2208988800123456, 4102444800999999, i][i % 3], pa.timestamp('us', tz='UTC'), 21), 'timestamp'),
                'ts_ns': (col(lambda i: [-2208988800123456000, 4102444800999999000, i * 1001000, -1000][i % 4], pa.timestamp('ns'), 22), 'timestamp'),
                'dec9': (col(lambda i: decimal.Decimal(i * 1013 % 9999999 - 5000000).scaleb(-2), pa.decimal128(9, 2), 23), 'decimal(9,2)'),
                'dec18': (col(lambda i: decimal.Decimal([10**18 - 1, -(10**18 - 1), i][i % 3]).scaleb(-4), pa.decimal128(18, 4), 24), 'decimal(18,4)'),
                'dec25': (col(lambda i: decimal.Decimal([10**25 - 1, -(10**25 - 1), i * 10**15][i % 3]), pa.decimal128(25, 0), 25), 'decimal(25,0)'),
                'dec38': (col(lambda i: decimal.Decimal([big, -big, -i][i % 3]).scaleb(-10), pa.decimal128(38, 10), 26), 'decimal(38,10)'),
            }
            table = pa.table({k: v[0] for k, v in cols.items()})
            files = []
            def write(label, **kw):
                path = os.path.join(out, label + '.parquet')
                pq.write_table(table, path, data_page_size=1024, row_group_size=1000, **kw)
                files.append(path)
            for codec in ['none', 'snappy', 'gzip', 'zstd']:
                for version in ['1.0', '2.0']:
                    for dictionary in [True, False]:
                        write('pa-%s-v%s-%s' % (codec, version, 'dict' if dictionary else 'plain'),
                              compression=codec, data_page_version=version, use_dictionary=dictionary)
            write('pa-delta', compression='zstd', use_dictionary=False, data_page_version='2.0',
                  column_encoding={'i32': 'DELTA_BINARY_PACKED', 'i64': 'DELTA_BINARY_PACKED', 'u32': 'DELTA_BINARY_PACKED',
                                   'ts_ns': 'DELTA_BINARY_PACKED', 's': 'DELTA_BYTE_ARRAY', 'ls': 'DELTA_LENGTH_BYTE_ARRAY',
                                   'bin': 'DELTA_LENGTH_BYTE_ARRAY', 'f32': 'BYTE_STREAM_SPLIT', 'f64': 'BYTE_STREAM_SPLIT',
                                   'dec38': 'BYTE_STREAM_SPLIT', 'day': 'BYTE_STREAM_SPLIT', 'flag': 'RLE'})
            write('pa-decimal-int', compression='snappy', store_decimal_as_integer=True)
            write('pa-int96', compression='gzip', use_deprecated_int96_timestamps=True)
            con = duckdb.connect()
            con.register('t', table)
            for label, opts in [('duckdb-zstd', "COMPRESSION zstd"), ('duckdb-v2', "COMPRESSION snappy, PARQUET_VERSION v2"),
                                ('duckdb-small', "COMPRESSION gzip, ROW_GROUP_SIZE 700")]:
                path = os.path.join(out, label + '.parquet')
                con.execute("COPY t TO '%s' (FORMAT parquet, %s)" % (path, opts))
                files.append(path)
            expected = {'files': files, 'types': {k: v[1] for k, v in cols.items()},
                        'columns': {k: canon_array(table.column(k)) for k in cols}}
            json.dump(expected, open(os.path.join(out, 'expected.json'), 'w'))
            """#
}

@Suite("Parquet interop with pyarrow and DuckDB", .offCooperativePool, .serialized)
struct ParquetInteropTests {
    static let pyarrowTypes: [String: String] = [
        "id": "int64 not null", "flag": "bool", "count": "int64", "ratio": "double", "name": "string", "payload": "binary",
        "day": "date32[day]", "at": "timestamp[us, tz=UTC]", "price": "decimal128(9, 2)", "wide": "decimal128(18, 0)",
        "huge": "decimal128(38, 10)", "odd": "decimal128(20, 3)", "label": "string not null",
    ]
    static let duckdbTypes: [String: String] = [
        "id": "BIGINT", "flag": "BOOLEAN", "count": "BIGINT", "ratio": "DOUBLE", "name": "VARCHAR", "payload": "BLOB",
        "day": "DATE", "at": "TIMESTAMP WITH TIME ZONE", "price": "DECIMAL(9,2)", "wide": "DECIMAL(18,0)",
        "huge": "DECIMAL(38,10)", "odd": "DECIMAL(20,3)", "doc": "JSON", "label": "VARCHAR",
    ]

    func readBack(_ script: String, _ path: String, _ dir: URL) throws -> (types: [String: String], columns: [String: [String?]])? {
        let json = dir.appendingPathComponent(UUID().uuidString + ".json").path
        let result = try ParquetTestSupport.python(script, [path, json])
        guard result.status == 0 else {
            Issue.record("python failed reading \(path): \(result.stderr)")
            return nil
        }
        return try ParquetTestSupport.parseCanonicalJSON(String(contentsOfFile: json, encoding: .utf8))
    }

    @Test(arguments: [(ParquetCompression.zstd, true), (.snappy, true), (.gzip, false), (.uncompressed, true), (.zstd, false)])
    func pyarrowAndDuckDBReadSluiceFiles(_ compression: ParquetCompression, _ dictionary: Bool) throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sluice.parquet").path
        var options = ParquetWriterOptions(compression: compression)
        options.dictionaryEnabled = dictionary
        options.pageBytes = 1500
        options.rowGroupRows = 900
        options.dictionaryPageLimit = 2000
        let batches = ParquetSampleData.batches(rows: 2600, batchSize: 1000, extreme: false)
        _ = try ParquetTestSupport.write(batches, schema: ParquetSampleData.schema, options: options, to: path)
        let expected = ParquetTestSupport.canonicalColumns(batches)

        if let arrow = try readBack(ParquetInteropScripts.readWithPyarrow, path, dir) {
            for (name, type) in Self.pyarrowTypes { #expect(arrow.types[name] == type, "pyarrow type of \(name)") }
            #expect(["extension<arrow.json>", "string", "large_string"].contains(arrow.types["doc"] ?? ""))
            ParquetTestSupport.expectSameColumns(arrow.columns, expected, "pyarrow \(compression)")
        }
        if let duck = try readBack(ParquetInteropScripts.readWithDuckDB, path, dir) {
            #expect(duck.types == Self.duckdbTypes)
            ParquetTestSupport.expectSameColumns(duck.columns, expected, "DuckDB \(compression)")
        }
    }

    @Test func sluiceReadsPyarrowAndDuckDBFiles() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let result = try ParquetTestSupport.python(ParquetInteropScripts.writeWithPyarrow, [dir.path])
        guard result.status == 0 else {
            Issue.record("python failed writing the test files: \(result.stderr)")
            return
        }
        let text = try String(contentsOfFile: dir.appendingPathComponent("expected.json").path, encoding: .utf8)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        let files = object["files"] as? [String] ?? []
        let expected = try ParquetTestSupport.parseCanonicalJSON(text)
        #expect(files.count == 22)
        for file in files {
            let name = URL(fileURLWithPath: file).lastPathComponent
            do {
                let reader = try ParquetReader(path: file)
                let types = Dictionary(uniqueKeysWithValues: reader.schema.fields.map { ($0.name, $0.type.description) })
                #expect(types == expected.types, "\(name): Sluice types")
                let batches = try reader.readAll()
                #expect(batches.count == reader.rowGroupCount)
                ParquetTestSupport.expectSameColumns(ParquetTestSupport.canonicalColumns(batches), expected.columns, name)
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }

    /// Nanoseconds that are not a whole microsecond are refused with a clear error, never truncated.
    @Test func nanosecondTimestampsFinerThanMicrosecondsAreRefused() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            pq.write_table(pa.table({'ts': pa.array([1_000, 1_700_000_000_123_456_789], pa.timestamp('ns'))}), sys.argv[1] + '/fine.parquet')
            pq.write_table(pa.table({'ts': pa.array([1_000, 1_700_000_000_123_456_000], pa.timestamp('ns'))}), sys.argv[1] + '/whole.parquet')
            """
        let result = try ParquetTestSupport.python(script, [dir.path])
        try #require(result.status == 0, "\(result.stderr)")
        let whole = try ParquetReader(path: dir.appendingPathComponent("whole.parquet").path).readAll()
        #expect(whole.first?.columns[0].value(at: 1) == .timestamp(1_700_000_000_123_456))
        do {
            _ = try ParquetReader(path: dir.appendingPathComponent("fine.parquet").path).readAll()
            Issue.record("1700000000123456789 ns was read (truncated) instead of refused")
        } catch {
            #expect("\(error)".contains("not a whole microsecond"), "\(error)")
        }
    }

    /// float16, TIME and UUID columns are read as their values: a float, a time of day with its
    /// unit's digits, a canonical UUID (they used to come out as base64 bytes or bare integers).
    @Test func float16TimeAndUUIDColumnsAreReadAsTheirValues() throws {
        guard ParquetTestSupport.requirePythonModules() else { return }
        let dir = try ParquetTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            import sys, uuid, numpy as np, pyarrow as pa, pyarrow.parquet as pq
            u = uuid.UUID('12345678-1234-5678-9abc-def012345678').bytes
            pq.write_table(pa.table({
                'h': pa.array(np.array([1.5, -0.25, 65504], dtype=np.float16)),
                't32': pa.array([0, 45296789, 86399999], pa.time32('ms')),
                't64': pa.array([0, 45296789012, 86399999999], pa.time64('us')),
                'tns': pa.array([0, 45296789012345, None], pa.time64('ns')),
                'u': pa.array([u, None, u], pa.uuid()),
            }), sys.argv[1] + '/types.parquet', use_dictionary=['u'])
            """
        let result = try ParquetTestSupport.python(script, [dir.path])
        try #require(result.status == 0, "\(result.stderr)")
        let reader = try ParquetReader(path: dir.appendingPathComponent("types.parquet").path)
        #expect(reader.schema.fields.map(\.type) == [.float64, .string, .string, .string, .string])
        let batch = try #require(try reader.readAll().first)
        let rows = (0..<batch.count).map { batch.row($0) }
        let uuid = Value.string("12345678-1234-5678-9abc-def012345678")
        #expect(rows[0] == [.float64(1.5), .string("00:00:00.000"), .string("00:00:00.000000"), .string("00:00:00.000000000"), uuid])
        #expect(rows[1] == [.float64(-0.25), .string("12:34:56.789"), .string("12:34:56.789012"), .string("12:34:56.789012345"), .null])
        #expect(rows[2] == [.float64(65504), .string("23:59:59.999"), .string("23:59:59.999999"), .null, uuid])
    }
}
