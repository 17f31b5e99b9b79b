import Foundation
import Logging
import SluiceCore
import SluiceFiles
import SluiceTesting
import Testing

/// Reading on several threads (``FileSource/threads``) gives what reading in order gives: the
/// same rows in the same order, dead letters at the same lines, and checkpoints that resume
/// exactly.
@Suite(.offCooperativePool) struct ParallelFileReadTests {
    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("par-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    struct Read {
        var rows: [[String: Value]] = []
        /// The schema of each row's batch.
        var schemas: [Schema] = []
        var batches: [SourceBatch] = []
        var letters: [String] { batches.flatMap(\.rejects).map { "\($0.errorKind) \($0.location)" } }
        /// Every batch's checkpoint, with the positions of the batches before it.
        var checkpoints: [(rowsBefore: Int, checkpoint: Checkpoint)] = []
    }

    /// Reads everything; rows as name → value without nulls, ints as doubles (an NDJSON column
    /// widens from int64 to float64 at a batch, and batches are cut in other places with threads).
    func readAll(_ source: FileSource, from checkpoint: Checkpoint = .empty) async throws -> Read {
        var logger = Logger(label: "t")
        logger.logLevel = .warning  // not a line per file read: the 200-file test reads them many times
        let context = SourceContext(pipeline: "t", state: MemoryStateStore(), logger: logger)
        let reader = try await source.makeReader(resumingFrom: checkpoint, context: context)
        var read = Read()
        var partitions = checkpoint.partitions
        while let b = try await reader.next() {
            read.batches.append(b)
            let names = b.records.schema.fields.map(\.name)
            for r in 0..<b.records.count {
                var row: [String: Value] = [:]
                for (name, value) in zip(names, b.records.row(r)) where value != .null {
                    if case let .int64(v) = value { row[name] = .float64(Double(v)) } else { row[name] = value }
                }
                read.rows.append(row)
                read.schemas.append(b.records.schema)
            }
            partitions[b.position.partition] = b.position.value
            read.checkpoints.append((read.rows.count, Checkpoint(partitions)))
        }
        await reader.close()
        return read
    }

    func source(_ pattern: String, threads: Int, batchRows: Int = 1000) -> FileSource {
        var source = FileSource(pattern: pattern)
        source.threads = threads
        source.csv.batchRows = batchRows
        source.ndjson.batchRows = batchRows
        return source
    }

    /// Checks that `threads` reads like one thread, and that resuming from checkpoints taken at a
    /// few batches gives exactly the rows after them.
    func expectSameAsInOrder(_ pattern: String, threads: [Int] = [2, 3, 4]) async throws {
        let inOrder = try await readAll(source(pattern, threads: 1))
        #expect(!inOrder.rows.isEmpty)
        for n in threads {
            let parallel = try await readAll(source(pattern, threads: n))
            #expect(parallel.rows.count == inOrder.rows.count, "threads \(n)")
            let firstDifference = parallel.rows.indices.first { $0 < inOrder.rows.count && parallel.rows[$0] != inOrder.rows[$0] }
            #expect(firstDifference == nil, "threads \(n): rows differ from row \(firstDifference ?? -1)")
            #expect(parallel.letters == inOrder.letters, "threads \(n): dead letters differ")
            let final = parallel.checkpoints.last?.checkpoint.partitions ?? [:]
            let expected = inOrder.checkpoints.last?.checkpoint.partitions ?? [:]
            let differing = Set(final.keys).union(expected.keys).filter { final[$0] != expected[$0] }.sorted()
            let details = differing.prefix(3).map { "\($0): \(final[$0] ?? "none") vs \(expected[$0] ?? "none")" }
            #expect(differing.isEmpty, "threads \(n): final positions differ: \(details)")
            for k in [1, parallel.checkpoints.count / 3, parallel.checkpoints.count / 2, parallel.checkpoints.count - 2]
            where k > 0 && k < parallel.checkpoints.count {
                let (before, checkpoint) = parallel.checkpoints[k]
                let rest = try await readAll(source(pattern, threads: n), from: checkpoint)
                #expect(rest.rows == Array(inOrder.rows[before...]), "threads \(n): resuming after batch \(k)")
            }
        }
    }

    @Test func aLargeCSVCutIntoPiecesReadsLikeOneReader() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Quoted fields with commas, quotes and line breaks; CRLF rows; blank lines; bad rows; a
        // quote in the middle of an unquoted field (data, not a quote). About 11 MB: more than one
        // round of pieces with two threads.
        var text = "id,name,note,amount\r\n"
        for i in 0..<150_000 {
            switch i % 97 {
            case 0: text += "\(i),\"multi\nline \(i)\",\"say \"\"hi\"\", ok\",\(i).5\n"
            case 1: text += "\(i),too,many,fields,here\n"
            case 2: text += "\n"
            case 3: text += "\(i),5\" screen,plain,\(i)\r\n"
            case 4: text += "\(i),n\(i),x,not-a-number\n"
            default: text += "\(i),name-\(i),\"quoted, \(i)\",\(i).25\n"
            }
        }
        try text.write(toFile: "\(dir)/big.csv", atomically: true, encoding: .utf8)
        try await expectSameAsInOrder("\(dir)/big.csv")
    }

    @Test func csvWithoutQuotesIsCutAtLineEnds() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "a,b\n"
        for i in 0..<400_000 { text += "\(i),v\(i % 13)\n" }
        try text.write(toFile: "\(dir)/plain.csv", atomically: true, encoding: .utf8)
        let read = try await readAll(source("\(dir)/plain.csv", threads: 4, batchRows: 16384))
        #expect(read.rows.count == 400_000)
        #expect(read.rows.map { $0["a"] } == (0..<400_000).map { .float64(Double($0)) })
        try await expectSameAsInOrder("\(dir)/plain.csv", threads: [2])
    }

    @Test func ndjsonWhoseKeysChangeMidFileIsReadInOrderFromThere() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = ""
        for i in 0..<120_000 {
            if i == 20_000 {
                text += "{\"id\":\(i),\"v\":1.5,\"late\":\"new key\"}\n"  // a new key and int64 → float64
            } else if i % 1000 == 7 {
                text += "{\"id\":\(i),\"v\":\n"  // invalid JSON: a dead letter
            } else {
                text += "{\"id\":\(i),\"v\":\(i % 100)}\n"
            }
        }
        try text.write(toFile: "\(dir)/events.ndjson", atomically: true, encoding: .utf8)
        try await expectSameAsInOrder("\(dir)/events.ndjson")
        let read = try await readAll(source("\(dir)/events.ndjson", threads: 2))
        // After the batch where the schema grew, every batch has the grown schema, as in order.
        let inOrder = try await readAll(source("\(dir)/events.ndjson", threads: 1))
        let grown = try #require(inOrder.schemas.last)
        #expect(grown.fields.map(\.name) == ["id", "v", "late"])
        let differing = zip(read.schemas[22_000...], inOrder.schemas[22_000...]).filter { $0 != $1 }.count
        #expect(differing == 0, "rows whose batch schema differs from reading in order")
        #expect(read.rows.count == 120_000 - 120)
        #expect(read.rows.contains { $0["late"] == .string("new key") })
        #expect(read.letters.count == 120)
        #expect(read.letters.first == "malformed_row \(dir)/events.ndjson:8")
    }

    @Test func manySmallFilesAreReadSeveralAtOnceInPathOrder() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in 0..<200 {
            let name = String(format: "%03d", f)
            switch f % 50 {
            case 10:
                try "id,v\n".write(toFile: "\(dir)/\(name).csv", atomically: true, encoding: .utf8)  // header only
            case 20:
                try Data([0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02, 0x03]).write(to: URL(fileURLWithPath: "\(dir)/\(name).csv.gz"))  // corrupt
            case 30:
                try Data().write(to: URL(fileURLWithPath: "\(dir)/\(name).csv"))  // empty
            default:
                var text = "id,v\n"
                for r in 0..<(f % 7 == 0 ? 20_000 : 300) { text += "\(f * 100_000 + r),\(f % 3 == 0 ? "\"q,\(r)\"" : "p\(r)")\n" }
                try text.write(toFile: "\(dir)/\(name).csv", atomically: true, encoding: .utf8)
            }
        }
        try await expectSameAsInOrder("\(dir)/*", threads: [2, 4, 8])
        let read = try await readAll(source("\(dir)/*", threads: 4))
        #expect(read.letters.count == 4, "\(read.letters)")
        var expectedRows = 0
        for f in 0..<200 where ![10, 20, 30].contains(f % 50) { expectedRows += f % 7 == 0 ? 20_000 : 300 }
        #expect(read.rows.count == expectedRows)
    }

    func gzip(_ path: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-q", "-f", path]
        try ChildProcesses.run(p)
        p.waitUntilExit()
    }

    @Test func aTruncatedGzipGivesItsRowsBeforeTheCutThenOneDeadLetter() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "id,v\n"
        var state: UInt64 = 7
        for i in 0..<300_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            text += "\(i),\(state >> 20)\n"
        }
        try text.write(toFile: "\(dir)/cut.csv", atomically: true, encoding: .utf8)
        try gzip("\(dir)/cut.csv")
        let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/cut.csv.gz"))
        try whole.prefix(whole.count * 6 / 10).write(to: URL(fileURLWithPath: "\(dir)/cut.csv.gz"))
        let inOrder = try await readAll(source("\(dir)/cut.csv.gz", threads: 1))
        #expect(inOrder.rows.count > 100_000, "the rows before the cut are read")
        #expect(inOrder.rows.count < 300_000)
        #expect(inOrder.letters.count == 1)
        #expect(inOrder.letters.first?.hasPrefix("unreadable_file \(dir)/cut.csv.gz:\(inOrder.rows.count + 2)") == true, "\(inOrder.letters)")
        for n in [2, 4] {
            let parallel = try await readAll(source("\(dir)/cut.csv.gz", threads: n))
            #expect(parallel.rows.count == inOrder.rows.count, "threads \(n)")
            #expect(parallel.letters == inOrder.letters, "threads \(n)")
        }
        // Damaged in the middle instead: whatever zlib makes of it, every thread count reads the same.
        var damaged = whole
        for k in stride(from: whole.count / 2, to: whole.count / 2 + 64, by: 1) { damaged[k] ^= 0x5A }
        try damaged.write(to: URL(fileURLWithPath: "\(dir)/cut.csv.gz"))
        let damagedInOrder = try await readAll(source("\(dir)/cut.csv.gz", threads: 1))
        #expect(damagedInOrder.rows.count < 300_000)
        for n in [2, 4] {
            let parallel = try await readAll(source("\(dir)/cut.csv.gz", threads: n))
            #expect(parallel.rows == damagedInOrder.rows, "threads \(n)")
            #expect(parallel.letters == damagedInOrder.letters, "threads \(n)")
        }
    }

    @Test func aSmallCompressedFileWithAWideHeaderIsSampledWhole() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = (0..<100).map { "c\($0)_" + String(repeating: "x", count: 1000) }
        var text = names.joined(separator: ",") + "\n"
        for r in 0..<3 { text += (0..<100).map { "\(r * 100 + $0)" }.joined(separator: ",") + "\n" }
        try text.write(toFile: "\(dir)/wide.csv", atomically: true, encoding: .utf8)
        try gzip("\(dir)/wide.csv")
        for n in [1, 2] {
            let read = try await readAll(source("\(dir)/wide.csv.gz", threads: n))
            #expect(read.rows.count == 3, "threads \(n)")
            #expect(read.letters.isEmpty, "threads \(n): \(read.letters)")
        }
    }
}
