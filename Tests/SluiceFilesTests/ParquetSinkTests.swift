import Foundation
import Logging
import SluiceCore
import SluiceFiles
import SluiceFormats
import SluiceStateSQLite
import SluiceTesting
import Testing

@Suite struct PartitionSpecTests {
    @Test func parsesTransformsAndColumns() {
        #expect(PartitionSpec(parsing: "day(created_at)") == PartitionSpec(column: "created_at", transform: .day))
        #expect(PartitionSpec(parsing: " hour( ts ) ") == PartitionSpec(column: "ts", transform: .hour))
        #expect(PartitionSpec(parsing: "country") == PartitionSpec(column: "country", transform: .identity))
        #expect(PartitionSpec(parsing: "week(ts)") == nil)
        #expect(PartitionSpec(parsing: "a/b") == nil)
        #expect(PartitionSpec(parsing: "day()") == nil)
    }

    @Test func valuesFromDataCannotEscapeTheLake() {
        for evil in ["../../etc", "..", ".", "a/b", "/abs", ".hidden", "x\u{0}y", "évian", "a b"] {
            let safe = PartitionSpec.sanitize(evil)
            #expect(!safe.contains("/"), "\(evil) → \(safe)")
            #expect(safe != ".." && safe != "." && !safe.hasPrefix("."), "\(evil) → \(safe)")
            #expect(!safe.unicodeScalars.contains { $0.value < 0x20 })
        }
        #expect(PartitionSpec.sanitize("DE") == "DE")
        #expect(PartitionSpec.sanitize("") == "__HIVE_DEFAULT_PARTITION__", "the empty string goes where Hive puts it")
        #expect(PartitionSpec.sanitize("a/b") == "a%2Fb")
    }

    @Test func directoriesByDayHourAndNull() {
        var b = ColumnBuilder(type: .timestamp)
        b.append(Int64(1_795_602_030_123_456))  // 2026-11-25T10:20:30Z
        b.appendNull()
        let column = b.finish()
        #expect(PartitionSpec(column: "ts", transform: .day).directory(for: column, row: 0) == "ts_day=2026-11-25")
        #expect(PartitionSpec(column: "ts", transform: .hour).directory(for: column, row: 0) == "ts_hour=2026-11-25T10")
        #expect(PartitionSpec(column: "ts", transform: .month).directory(for: column, row: 0) == "ts_month=2026-11")
        #expect(PartitionSpec(column: "ts", transform: .day).directory(for: column, row: 1) == "ts_day=__HIVE_DEFAULT_PARTITION__", "NULL as Hive writes it")
    }
}

@Suite struct ParquetSinkTests {
    func workspace() throws -> (String, SQLiteStateStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pq-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (dir, try SQLiteStateStore(path: "\(dir)/state.db"))
    }

    func batch(ids: Range<Int>, country: (Int) -> String?, extra: Bool = false) -> RecordBatch {
        var id = ColumnBuilder(type: .int64), c = ColumnBuilder(type: .string), e = ColumnBuilder(type: .float64)
        for i in ids {
            id.append(Int64(i))
            if let v = country(i) { c.append(string: v) } else { c.appendNull() }
            e.append(Double(i) / 2)
        }
        var fields = [Field("id", .int64), Field("country", .string)]
        var columns = [id.finish(), c.finish()]
        if extra { fields.append(Field("score", .float64)); columns.append(e.finish()) }
        return RecordBatch(schema: Schema(fields), columns: columns)
    }

    func parquetFiles(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".parquet") && !($0 as NSString).lastPathComponent.hasPrefix(".") }.sorted()
    }

    @Test func partitionsRowsAndStartsANewFileWhenTheSchemaChanges() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = ParquetFileSink(directory: "\(dir)/lake", partition: PartitionSpec(column: "country", transform: .identity))
        let writer = try await sink.makeWriter(context: SinkContext(pipeline: "p", state: store, logger: Logger(label: "t")))
        _ = try await writer.write(batch(ids: 0..<10, country: { $0 % 2 == 0 ? "DE" : "../FR" }))
        _ = try await writer.write(batch(ids: 10..<14, country: { $0 == 13 ? nil : "DE" }, extra: true))
        #expect(parquetFiles("\(dir)/lake").isEmpty, "nothing visible before the commit")
        var commit = StateCommit(pipeline: "p")
        try await writer.prepareCommit(&commit)
        try await store.commit(commit)
        try await writer.finishCommit()
        let files = parquetFiles("\(dir)/lake")
        #expect(Set(files.map { ($0 as NSString).deletingLastPathComponent }) == ["country=DE", "country=%2E.%2FFR", "country=__HIVE_DEFAULT_PARTITION__"])
        #expect(files.filter { $0.hasPrefix("country=DE/") }.count == 2, "a schema change starts a new file")
        var total = 0
        for f in files {
            let reader = try ParquetReader(path: "\(dir)/lake/\(f)")
            total += reader.metadata.rows
            if f.hasPrefix("country=__HIVE_DEFAULT_PARTITION__") { #expect(reader.schema.fields.map(\.name) == ["id", "country", "score"]) }
        }
        #expect(total == 14)
    }

    @Test func rowsWithoutThePartitionColumnAreRefusedNotLost() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = ParquetFileSink(directory: "\(dir)/lake", partition: PartitionSpec(column: "created_at", transform: .day))
        let writer = try await sink.makeWriter(context: SinkContext(pipeline: "p", state: store, logger: Logger(label: "t")))
        let failures = try await writer.write(batch(ids: 0..<3, country: { _ in "DE" }))
        #expect(failures.map(\.row) == [0, 1, 2])
        #expect(failures.first?.error.message.contains("created_at") == true)
    }

    @Test func commitIsDueBySizeAndAllOpenFilesCloseTogether() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = ParquetFileSink(
            directory: "\(dir)/lake", partition: PartitionSpec(column: "country", transform: .identity),
            targetFileSize: 4096)
        let writer = try await sink.makeWriter(context: SinkContext(pipeline: "p", state: store, logger: Logger(label: "t")))
        _ = try await writer.write(batch(ids: 0..<10, country: { $0 % 2 == 0 ? "A" : "B" }))
        #expect(!writer.commitDue(at: .now))
        _ = try await writer.write(batch(ids: 10..<1000, country: { $0 % 2 == 0 ? "A" : "B" }))
        #expect(writer.commitDue(at: .now))
        var commit = StateCommit(pipeline: "p")
        try await writer.prepareCommit(&commit)
        #expect(commit.fileIntents.count == 2)
        #expect(commit.fileIntents.reduce(0) { $0 + $1.records } == 1000)
    }

    @Test func theFileSourceReadsParquetBackAndResumesByRowGroup() async throws {
        let (dir, _) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let output = try ParquetFileOutput(path: "\(dir)/in.parquet")
        var options = ParquetWriterOptions()
        options.rowGroupRows = 100
        let writer = try ParquetWriter(schema: batch(ids: 0..<1, country: { _ in "x" }).schema, options: options, output: output)
        try writer.write(batch(ids: 0..<350, country: { "c\($0 % 3)" }))
        try writer.close()
        try output.close()
        let source = FileSource(pattern: "\(dir)/*.parquet")
        let context = SourceContext(pipeline: "t", state: MemoryStateStore(), logger: Logger(label: "t"))
        let reader = try await source.makeReader(resumingFrom: .empty, context: context)
        var batches: [SourceBatch] = []
        while let b = try await reader.next() { batches.append(b) }
        #expect(batches.map(\.records.count) == [100, 100, 100, 50])
        let resumed = try await source.makeReader(resumingFrom: Checkpoint([batches[1].position.partition: batches[1].position.value]), context: context)
        var rows: [Value] = []
        while let b = try await resumed.next() { rows += (0..<b.records.count).map { b.records.columns[0].value(at: $0) } }
        #expect(rows.count == 150)
        #expect(rows.first == .int64(200))
    }
}
