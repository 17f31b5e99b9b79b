import Foundation
import Logging
import SluiceCore
import SluiceFiles
import SluiceStateSQLite
import Testing

@Suite struct FileSinkRecoveryTests {
    func batch(_ ids: Range<Int>) -> RecordBatch {
        var b = ColumnBuilder(type: .int64)
        for i in ids { b.append(Int64(i)) }
        return RecordBatch(schema: Schema([Field("id", .int64)]), columns: [b.finish()])
    }

    func workspace() throws -> (String, SQLiteStateStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sink-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (dir, try SQLiteStateStore(path: "\(dir)/state.db"))
    }

    func visible(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func commitPublishesOneFileWithEveryRecord() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = NDJSONFileSink(directory: "\(dir)/out")
        let writer = try await sink.makeWriter(context: SinkContext(pipeline: "p", state: store, logger: Logger(label: "t")))
        _ = try await writer.write(batch(0..<3))
        _ = try await writer.write(batch(3..<5))
        #expect(visible("\(dir)/out").isEmpty, "nothing is visible before the commit")
        var commit = StateCommit(pipeline: "p")
        try await writer.prepareCommit(&commit)
        #expect(commit.fileIntents.count == 1)
        try await store.commit(commit)
        try await writer.finishCommit()
        let files = visible("\(dir)/out")
        #expect(files.count == 1)
        let text = try String(contentsOfFile: "\(dir)/out/\(files[0])", encoding: .utf8)
        #expect(text == (0..<5).map { "{\"id\":\($0)}\n" }.joined())
        #expect(try await store.pendingFileIntents(pipeline: "p").isEmpty)
    }

    @Test func aCrashAfterTheStateCommitIsFinishedOnRestart() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = NDJSONFileSink(directory: "\(dir)/out")
        let context = SinkContext(pipeline: "p", state: store, logger: Logger(label: "t"))
        let writer = try await sink.makeWriter(context: context)
        _ = try await writer.write(batch(0..<4))
        var commit = StateCommit(pipeline: "p")
        try await writer.prepareCommit(&commit)
        try await store.commit(commit)
        // "Crash": finishCommit never runs. An uncommitted temp file of another writer is also left behind.
        _ = try await writer.write(batch(4..<6))
        #expect(visible("\(dir)/out").isEmpty)
        _ = try await sink.makeWriter(context: context)
        let files = visible("\(dir)/out")
        #expect(files.count == 1)
        #expect(try String(contentsOfFile: "\(dir)/out/\(files[0])", encoding: .utf8).split(separator: "\n").count == 4)
        let hidden = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasPrefix(".") }
        #expect(hidden.isEmpty, "orphan temporary files are removed: \(hidden)")
        #expect(try await store.pendingFileIntents(pipeline: "p").isEmpty)
    }

    @Test func aCrashBeforeTheStateCommitLeavesNothingVisible() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = NDJSONFileSink(directory: "\(dir)/out")
        let context = SinkContext(pipeline: "p", state: store, logger: Logger(label: "t"))
        let writer = try await sink.makeWriter(context: context)
        _ = try await writer.write(batch(0..<4))
        var commit = StateCommit(pipeline: "p")
        try await writer.prepareCommit(&commit)  // fsynced under a temporary name, but the state never commits
        _ = try await sink.makeWriter(context: context)
        #expect(visible("\(dir)/out").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").isEmpty)
    }

    @Test func recoveryLeavesOtherPipelinesTemporaryFilesAlone() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/out", withIntermediateDirectories: true)
        let other = NDJSONFileSink(directory: "\(dir)/out")
        let writer = try await other.makeWriter(context: SinkContext(pipeline: "a-b", state: store, logger: Logger(label: "t")))
        _ = try await writer.write(batch(0..<3))
        let tempBefore = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".tmp") }
        #expect(tempBefore.count == 1)
        _ = try await NDJSONFileSink(directory: "\(dir)/out").makeWriter(context: SinkContext(pipeline: "a", state: store, logger: Logger(label: "t")))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".tmp") } == tempBefore)
    }

    @Test func rollsBySize() async throws {
        let (dir, store) = try workspace()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sink = NDJSONFileSink(directory: "\(dir)/out", maxFileSize: 1024)
        let writer = try await sink.makeWriter(context: SinkContext(pipeline: "p", state: store, logger: Logger(label: "t")))
        #expect(!writer.commitDue(at: .now))
        _ = try await writer.write(batch(0..<200))
        #expect(writer.commitDue(at: .now))
    }
}
