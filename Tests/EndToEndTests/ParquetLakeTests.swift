import Foundation
import SluiceTesting
import Testing

/// Runs a Python snippet (pyarrow / DuckDB as independent readers) and returns its stdout.
func python(_ script: String, in directory: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // DuckDB draws a progress bar on stdout when a query runs for seconds (a loaded machine):
    // off for its default connection (`duckdb.sql`), so the output is only what the script prints.
    let quiet = "try:\n    import duckdb\n    duckdb.sql('SET enable_progress_bar = false')\nexcept ImportError:\n    pass\n"
    p.arguments = ["-C", directory, "python3", "-c", quiet + script]
    let out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
    p.standardOutput = out
    p.standardError = err
    try ChildProcesses.run(p)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw PythonError(message: String(decoding: errors, as: UTF8.self))
    }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

struct PythonError: Error, CustomStringConvertible {
    var message: String
    var description: String { "python failed (run scripts/setup.sh to install pyarrow, duckdb and polars): \(message)" }
}

/// DESIGN.md §2.2 for the Parquet sink: CSV → partitioned Parquet, `kill -9` at random moments
/// across 20+ restarts, then DuckDB counts every input row exactly once and no temporary
/// or orphan files remain.
@Suite(.offCooperativePool, .serialized) struct ParquetLakeTests {
    static let rows = 400_000

    @Test func killNineAcrossTwentyRestartsThenDuckDBCountsEveryRowOnce() async throws {
        let dir = try makeWorkDirectory("lake")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/data", withIntermediateDirectories: true)
        try CrashRecoveryTests.generateCSV("\(dir)/data/events.csv", rows: Self.rows)
        try write(
            """
            pipelines:
              lake:
                source:
                  file: { path: data/events.csv }
                sink:
                  parquet: { path: lake, partition_by: "day(created_at)", compression: zstd, target_file_size: 4MB }
                batch: { max_rows: 20000 }
            """, to: "\(dir)/p.yaml")

        // A run that finishes before its kill starts over from scratch, to keep killing mid-run.
        let kills = try await killRepeatedly(in: dir, kills: 20, delays: 150...1500, maxRuns: 80) {
            try FileManager.default.removeItem(atPath: "\(dir)/lake")
            try FileManager.default.removeItem(atPath: "\(dir)/.sluice")
            return true
        }
        #expect(kills >= 20)
        let final = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")

        let counts = try python(
            """
            import duckdb
            r = duckdb.sql("select count(*), count(distinct id), min(id), max(id) from read_parquet('lake/*/*.parquet', hive_partitioning=true)").fetchall()[0]
            print(*r)
            """, in: dir)
        #expect(counts == "\(Self.rows) \(Self.rows) 0 \(Self.rows - 1)")
        let leftovers =
            FileManager.default.enumerator(atPath: "\(dir)/lake")?.allObjects.compactMap { $0 as? String }
            .filter { ($0 as NSString).lastPathComponent.hasPrefix(".") && $0 != ".sluice-lake.lock" } ?? []
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    @Test func quickstartStyleLakeIsReadableByPyarrowWithTypes() throws {
        let dir = try makeWorkDirectory("lake-types")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            id,amount,name,created_at,ok
            1,2.5,alpha,2026-11-25T10:00:00Z,true
            2,,"b, with comma",2026-11-25T11:30:00.25Z,false
            3,-1e300,,2026-11-26T00:00:00Z,
            """, to: "\(dir)/data/x.csv")
        try write(
            """
            pipelines:
              t:
                source: { file: { path: data/x.csv } }
                sink: { parquet: { path: lake, partition_by: "day(created_at)", compression: snappy } }
            """, to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try python(
            """
            import pyarrow.dataset as ds
            t = ds.dataset('lake', format='parquet', partitioning='hive').to_table().sort_by('id')
            print(t.schema.field('id').type, t.schema.field('amount').type, t.schema.field('created_at').type, t.schema.field('ok').type)
            print(t.column('amount').to_pylist())
            print(t.column('name').to_pylist())
            print([str(x) for x in t.column('created_at').to_pylist()])
            """, in: dir)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "int64 double timestamp[us, tz=UTC] bool")
        #expect(lines.dropFirst().first == "[2.5, None, -1e+300]")
        #expect(lines.dropFirst(2).first == "['alpha', 'b, with comma', None]")
        #expect(lines.last == "['2026-11-25 10:00:00+00:00', '2026-11-25 11:30:00.250000+00:00', '2026-11-26 00:00:00+00:00']")
    }

    /// NULL (and the empty string, a documented conversion) of an int64 and of a string partition
    /// column go to `__HIVE_DEFAULT_PARTITION__`, which DuckDB, polars and pyarrow, all with
    /// hive partitioning, read back as NULL of the column's type; other values come back exactly.
    @Test func nullPartitionsReadBackAsNullWithTheColumnsTypeInDuckDBPolarsAndPyarrow() async throws {
        let dir = try makeWorkDirectory("lake-null")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            {"id": 1, "n": 10, "s": "DE"}
            {"id": 2, "n": null, "s": null}
            {"id": 3, "n": -20, "s": ""}
            {"id": 4, "n": 10, "s": "a/b"}
            """, to: "\(dir)/data/x.ndjson")
        try write(
            """
            pipelines:
              by_n:
                source: { file: { path: data/x.ndjson } }
                sink: { parquet: { path: lake/by_n, partition_by: n } }
              by_s:
                source: { file: { path: data/x.ndjson } }
                sink: { parquet: { path: lake/by_s, partition_by: s } }
            """, to: "\(dir)/p.yaml")
        let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let directories = try
            (FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake/by_n") + FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake/by_s"))
            .filter { !$0.hasPrefix(".") }  // the lake's lock
        #expect(Set(directories) == ["n=10", "n=-20", "n=__HIVE_DEFAULT_PARTITION__", "s=DE", "s=a%2Fb", "s=__HIVE_DEFAULT_PARTITION__"])

        let out = try await offPool {
            try python(
                """
                import duckdb, polars as pl, pyarrow as pa, pyarrow.dataset as ds
                for c in ['n', 's']:
                    rows = duckdb.sql(f"select id, {c}, typeof({c}) from read_parquet('lake/by_{c}/*/*.parquet', hive_partitioning = true) order by id").fetchall()
                    print('duckdb', c, sorted({r[2] for r in rows}), [r[:2] for r in rows])
                    df = pl.scan_parquet(f'lake/by_{c}/**/*.parquet', hive_partitioning=True).collect().sort('id')
                    print('polars', c, [str(df.schema[c])], df.select('id', c).rows())
                    # pyarrow infers int32 for integer directory values: it is told the column's type.
                    part = ds.partitioning(pa.schema([('n', pa.int64())]), flavor='hive') if c == 'n' else 'hive'
                    t = ds.dataset(f'lake/by_{c}', format='parquet', partitioning=part).to_table().sort_by('id')
                    print('pyarrow', c, [str(t.schema.field(c).type)], list(zip(t.column('id').to_pylist(), t.column(c).to_pylist())))
                """, in: dir)
        }
        let lines = out.split(separator: "\n").map(String.init)
        let n = "[(1, 10), (2, None), (3, -20), (4, 10)]"
        // The empty string of row 3 reads back as NULL, as in Hive (docs/guides/file-and-database-pulls.md).
        let s = "[(1, 'DE'), (2, None), (3, None), (4, 'a/b')]"
        #expect(
            lines == [
                "duckdb n ['BIGINT'] \(n)", "polars n ['Int64'] \(n)", "pyarrow n ['int64'] \(n)",
                "duckdb s ['VARCHAR'] \(s)", "polars s ['String'] \(s)", "pyarrow s ['string'] \(s)",
            ])
    }
}
