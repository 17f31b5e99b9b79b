import Foundation
import SluiceTesting
import Testing

/// Nested Parquet columns written by pyarrow (lists, structs, maps, lists of lists; nulls and
/// empty lists at every level; several row groups and pages; snappy and zstd; data pages v1 and
/// v2; the non-compliant list names) reach the NDJSON sink as JSON, each row exactly the value
/// pyarrow reads (`json.dumps` of `to_pylist`, maps as dicts), compared as parsed JSON.
@Suite(.offCooperativePool) struct ParquetNestedInputTests {
    static let generate = #"""
        import sys, pyarrow as pa, pyarrow.parquet as pq
        d = sys.argv[1]
        n = 2500

        def ints(i):
            m = i % 5
            return None if m == 0 else [] if m == 1 else [None] if m == 2 else [i, None, -i] if m == 3 else list(range(i % 7 + 1))

        def pairs(i):
            m = i % 6
            if m == 0: return None
            if m == 1: return []
            if m == 2: return [None]
            if m == 3: return [{'a': None, 'b': None}]
            return [{'a': i * 1000003, 'b': 'x"\\\n\u00e9\u2028\U0001F600' + str(i)}, {'a': -i, 'b': ''}]

        def rec(i):
            m = i % 5
            if m == 0: return None
            return {'id': i,
                    'tags': None if m == 1 else [] if m == 2 else ['t' + str(i), None],
                    'inner': None if m == 3 else {'x': None if m == 4 else i / 10 + 1e-7, 'flags': [True, None, False] if i % 2 else []}}

        def attrs(i):
            m = i % 4
            return None if m == 0 else [] if m == 1 else [('k' + str(i), i), ('z', None)]

        def grid(i):
            m = i % 4
            return None if m == 0 else [] if m == 1 else [None, [], [None]] if m == 2 else [[i, i + 1], [i]]

        def table(base):
            r = range(base, base + n)
            return pa.table({
                'id': pa.array(r, pa.int64()),
                'ints': pa.array([ints(i) for i in r], pa.list_(pa.int64())),
                'pairs': pa.array([pairs(i) for i in r], pa.list_(pa.struct([('a', pa.int64()), ('b', pa.string())]))),
                'rec': pa.array([rec(i) for i in r], pa.struct([
                    ('id', pa.int64()), ('tags', pa.list_(pa.string())),
                    ('inner', pa.struct([('x', pa.float64()), ('flags', pa.list_(pa.bool_()))]))])),
                'attrs': pa.array([attrs(i) for i in r], pa.map_(pa.string(), pa.int64())),
                'grid': pa.array([grid(i) for i in r], pa.list_(pa.list_(pa.int64()))),
                'req': pa.array([[i] * (i % 3) for i in r], pa.list_(pa.field('element', pa.int64(), nullable=False))),
                'name': pa.array(['n' + str(i) for i in r]),
            }).cast(pa.schema([
                pa.field('id', pa.int64(), nullable=False),
                pa.field('ints', pa.list_(pa.int64())),
                pa.field('pairs', pa.list_(pa.struct([('a', pa.int64()), ('b', pa.string())]))),
                pa.field('rec', pa.struct([
                    ('id', pa.int64()), ('tags', pa.list_(pa.string())),
                    ('inner', pa.struct([('x', pa.float64()), ('flags', pa.list_(pa.bool_()))]))])),
                pa.field('attrs', pa.map_(pa.string(), pa.int64())),
                pa.field('grid', pa.list_(pa.list_(pa.int64()))),
                pa.field('req', pa.list_(pa.field('element', pa.int64(), nullable=False)), nullable=False),
                pa.field('name', pa.string()),
            ]))

        pq.write_table(table(0), d + '/in/snappy.parquet', compression='snappy', row_group_size=700, data_page_size=512)
        pq.write_table(table(10 * n), d + '/in/zstd.parquet', compression='zstd', row_group_size=1000,
                       data_page_size=1024, data_page_version='2.0', use_dictionary=False)
        pq.write_table(table(20 * n), d + '/in/legacy.parquet', compression='zstd', row_group_size=900,
                       use_compliant_nested_type=False, write_batch_size=64, data_page_size=300)
        """#

    /// argv: work directory. Compares every NDJSON output line with pyarrow's reading.
    static let check = #"""
        import sys, glob, json, os, pyarrow.parquet as pq
        d = sys.argv[1]
        expected = {}
        for f in sorted(glob.glob(d + '/in/*.parquet')):
            for row in pq.read_table(f).to_pylist(maps_as_pydicts='strict'):
                expected[row['id']] = json.loads(json.dumps(row))
        seen = {}
        for f in glob.glob(d + '/out/**/*.ndjson', recursive=True):
            if os.path.basename(f).startswith('.'): continue
            for line in open(f, encoding='utf-8'):
                row = json.loads(line)
                if row['id'] in seen: sys.exit('row %s written twice' % row['id'])
                seen[row['id']] = row
        # The NDJSON sink leaves out null fields: a missing key is a null.
        for k, row in seen.items():
            if k in expected:
                extra = set(row) - set(expected[k])
                if extra: sys.exit('row %s has fields pyarrow lacks: %s' % (k, extra))
                seen[k] = {name: row.get(name) for name in expected[k]}
        if set(seen) != set(expected):
            sys.exit('rows differ: %d written, %d expected, e.g. missing %s' % (len(seen), len(expected), sorted(set(expected) - set(seen))[:5]))
        bad = [(k, seen[k], expected[k]) for k in sorted(expected) if seen[k] != expected[k]]
        for k, got, want in bad[:5]:
            print('id %s:\n  sluice  %s\n  pyarrow %s' % (k, json.dumps(got), json.dumps(want)), file=sys.stderr)
        if bad: sys.exit('%d of %d rows differ' % (len(bad), len(expected)))
        print('ok %d rows' % len(expected))
        """#

    static func python(_ script: String, _ dir: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, dir]
        let pipe = ChildProcesses.pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try ChildProcesses.run(process)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func nestedColumnsAreReadAsTheJSONPyarrowReads() async throws {
        let dir = try makeWorkDirectory("parquet-nested-json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        let generated = try Self.python(Self.generate, dir)
        try #require(generated.status == 0, "\(generated.output)")
        try write(
            """
            pipelines:
              lake:
                source: { file: { path: "in/*.parquet", format: parquet } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        try #require(run.status == 0, "\(run.stderr)")
        let checked = try Self.python(Self.check, dir)
        #expect(checked.status == 0, "\(checked.output)")
        #expect(checked.output.contains("ok 7500 rows"), "\(checked.output)")

        let inspect = try await SluiceProcess.runWithoutBlocking(["inspect", "in/snappy.parquet"], in: dir)
        #expect(inspect.status == 0, "\(inspect.stderr)")
        for line in [
            "ints: json (list<int64>, as JSON text)",
            "pairs: json (list<struct<a: int64, b: string>>, as JSON text)",
            "rec: json (struct<id: int64, tags: list<string>, inner: struct<x: float64, flags: list<bool>>>, as JSON text)",
            "attrs: json (map<string, int64>, as JSON text)",
            "grid: json (list<list<int64>>, as JSON text)",
            "req: json (list<int64>, as JSON text)",
            "name: string",
        ] {
            #expect(inspect.stdout.contains(line), "inspect lacks '\(line)':\n\(inspect.stdout)")
        }
        #expect(inspect.stdout.contains("ints.list.element"), "column chunks are named by their path:\n\(inspect.stdout)")
    }
}
