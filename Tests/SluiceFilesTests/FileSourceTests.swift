import Foundation
import Logging
import SluiceCore
import SluiceFiles
import SluiceTesting
import Testing

@Suite(.offCooperativePool) struct FileSourceTests {
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("src-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func readAll(_ source: FileSource, from checkpoint: Checkpoint = .empty) async throws -> (rows: [[Value]], batches: [SourceBatch]) {
        let context = SourceContext(pipeline: "t", state: MemoryStateStore(), logger: Logger(label: "t"))
        let reader = try await source.makeReader(resumingFrom: checkpoint, context: context)
        var rows: [[Value]] = [], batches: [SourceBatch] = []
        while let b = try await reader.next() {
            batches.append(b)
            for r in 0..<b.records.count { rows.append(b.records.row(r)) }
        }
        return (rows, batches)
    }

    @Test func resumesMidFileFromTheCheckpointedOffset() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "id,name\n"
        for i in 0..<50_000 { text += "\(i),name-\(i)\n" }
        try text.write(toFile: "\(dir)/a.csv", atomically: true, encoding: .utf8)
        var source = FileSource(pattern: "\(dir)/a.csv")
        source.csv.batchRows = 1000
        let all = try await readAll(source)
        #expect(all.rows.count == 50_000)
        #expect(all.batches.count > 10)
        // Resume from the position after an arbitrary batch: exactly the remaining rows follow.
        let cut = all.batches[7]
        let before = all.batches[0...7].reduce(0) { $0 + $1.records.count }
        let rest = try await readAll(source, from: Checkpoint([cut.position.partition: cut.position.value]))
        #expect(rest.rows.count == 50_000 - before)
        #expect(rest.rows.first == [.int64(Int64(before)), .string("name-\(before)")])
        // A finished file is not read again.
        let last = all.batches.last!
        #expect(try await readAll(source, from: Checkpoint([last.position.partition: last.position.value])).rows.isEmpty)
    }

    @Test func aFileChangedAfterIngestionIsNotReadAgain() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "id\n1\n2\n".write(toFile: "\(dir)/a.csv", atomically: true, encoding: .utf8)
        let source = FileSource(pattern: "\(dir)/a.csv")
        let first = try await readAll(source)
        #expect(first.rows.count == 2)
        let last = try #require(first.batches.last)
        try "id\n1\n2\n3\n".write(toFile: "\(dir)/a.csv", atomically: true, encoding: .utf8)
        let again = try await readAll(source, from: Checkpoint([last.position.partition: last.position.value]))
        #expect(again.rows.isEmpty, "a changed file is reported, not re-ingested")
    }

    @Test func readsGzipAndZstdAndResumesInsideThem() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = ""
        for i in 0..<20_000 { text += "{\"id\":\(i),\"v\":\"x\(i)\"}\n" }
        for tool in ["gzip", "zstd"] {
            let path = "\(dir)/in-\(tool).ndjson"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [tool, "-q", "-f", path]
            try ChildProcesses.run(p)
            p.waitUntilExit()
            let compressed = path + (tool == "gzip" ? ".gz" : ".zst")
            var source = FileSource(pattern: compressed)
            source.ndjson.batchRows = 3000
            let all = try await readAll(source)
            #expect(all.rows.count == 20_000, "\(tool)")
            let cut = all.batches[2]
            let before = all.batches[0...2].reduce(0) { $0 + $1.records.count }
            let rest = try await readAll(source, from: Checkpoint([cut.position.partition: cut.position.value]))
            #expect(rest.rows.count == 20_000 - before, "\(tool)")
            #expect(rest.rows.first?.first == .int64(Int64(before)))
        }
    }

    @Test func aCorruptCompressedFileIsDeadLetteredNotFatal() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02, 0x03]).write(to: URL(fileURLWithPath: "\(dir)/bad.csv.gz"))
        try "id\n1\n".write(toFile: "\(dir)/good.csv", atomically: true, encoding: .utf8)
        let result = try await readAll(FileSource(pattern: "\(dir)/*"))
        #expect(result.rows.count == 1)
        let rejects = result.batches.flatMap(\.rejects)
        #expect(rejects.count == 1)
        #expect(rejects.first?.location.contains("bad.csv.gz") == true)
    }

    @Test func directoriesAreReadRecursivelyInPathOrder() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/2026/11", withIntermediateDirectories: true)
        try "id\n2\n".write(toFile: "\(dir)/2026/11/b.csv", atomically: true, encoding: .utf8)
        try "id\n1\n".write(toFile: "\(dir)/2026/a.csv", atomically: true, encoding: .utf8)
        try "id\n9\n".write(toFile: "\(dir)/.hidden.csv", atomically: true, encoding: .utf8)
        let result = try await readAll(FileSource(pattern: dir))
        #expect(result.rows.map { $0[0] } == [.int64(2), .int64(1)], "byte order of paths: 2026/11/b.csv < 2026/a.csv")
    }
}
