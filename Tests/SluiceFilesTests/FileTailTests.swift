import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceTesting
import Testing

@testable import SluiceFiles

/// `file: { tail: true }`: fingerprints, who holds a fingerprint after rotation, and a reader
/// following real files through appends, partial lines, renames, copy-truncates and a resume.
@Suite(.offCooperativePool, .timeLimit(.minutes(2))) struct FileTailTests {
    func fingerprint(_ text: String, lines: Int = 1) -> UInt64? {
        Array(text.utf8).withUnsafeBytes { TailFingerprint.of($0, lines: lines) }
    }

    @Test func aFileIsFingerprintedOnceItsFirstLinesAreComplete() {
        #expect(fingerprint("") == nil)
        #expect(fingerprint("{\"seq\":1") == nil, "a partial first line")
        let first = fingerprint("{\"seq\":1}\n")
        #expect(first != nil)
        #expect(fingerprint("{\"seq\":1}\n{\"seq\":2}\n{\"se") == first, "growing does not change it")
        #expect(fingerprint("{\"seq\":9}\n") != first)
        // Two lines (a CSV header and a first row).
        #expect(fingerprint("id,name\n", lines: 2) == nil)
        #expect(fingerprint("id,name\n1,a\n", lines: 2) != fingerprint("id,name\n2,b\n", lines: 2))
        // A first line longer than the limit: its first 8 KiB.
        let long = String(repeating: "x", count: TailFingerprint.limit)
        #expect(fingerprint(long) != nil)
        #expect(fingerprint(long + "more") == fingerprint(long))
        #expect(fingerprint(String(long.dropLast())) == nil)
        // Partitions name fingerprints and back.
        let partition = TailFingerprint.partition(0xAB)
        #expect(partition == "tail:00000000000000ab")
        #expect(TailFingerprint.fingerprint(ofPartition: partition) == 0xAB)
        #expect(TailFingerprint.fingerprint(ofPartition: "/data/a.csv") == nil)
    }

    @Test func thePlanFollowsRenamesAndCopiesAndSkipsStrangers() {
        let a = TailInode(device: 1, number: 10), b = TailInode(device: 1, number: 11), c = TailInode(device: 1, number: 12)
        // Renamed: the same inode under a new name keeps its fingerprint.
        var plan = TailPlan.plan(
            observed: [TailObservation(inode: a, path: "app.log.1", size: 100, modified: 5, fingerprint: 7)],
            following: [7: a], offsets: [7: 80])
        #expect(plan.owners == [7: a] && plan.skipped.isEmpty)
        // Copy-truncate, before the truncation: the copy is a duplicate while the original holds it.
        plan = TailPlan.plan(
            observed: [
                TailObservation(inode: a, path: "app.log", size: 100, modified: 5, fingerprint: 7),
                TailObservation(inode: b, path: "app.log.1", size: 100, modified: 6, fingerprint: 7),
            ], following: [7: a], offsets: [7: 80])
        #expect(plan.owners == [7: a])
        #expect(plan.skipped == [b: .duplicate(of: a)])
        // After it: the original starts with other lines (or none yet); the copy takes over.
        plan = TailPlan.plan(
            observed: [
                TailObservation(inode: a, path: "app.log", size: 20, modified: 9, fingerprint: 8),
                TailObservation(inode: b, path: "app.log.1", size: 100, modified: 6, fingerprint: 7),
            ], following: [7: a], offsets: [7: 80])
        #expect(plan.owners == [7: b, 8: a])
        plan = TailPlan.plan(
            observed: [
                TailObservation(inode: a, path: "app.log", size: 0, modified: 9, fingerprint: nil),
                TailObservation(inode: b, path: "app.log.1", size: 100, modified: 6, fingerprint: 7),
            ], following: [7: a], offsets: [7: 80])
        #expect(plan.owners == [7: b])
        // The followed file itself, truncated and written again with the same first line: not read on.
        plan = TailPlan.plan(
            observed: [TailObservation(inode: a, path: "app.log", size: 30, modified: 9, fingerprint: 7)],
            following: [7: a], offsets: [7: 80])
        #expect(plan.owners.isEmpty && plan.skipped == [a: .shorter(offset: 80)])
        // A file that starts like one read further than its size cannot be that file.
        plan = TailPlan.plan(
            observed: [TailObservation(inode: c, path: "other.log", size: 50, modified: 1, fingerprint: 7)],
            following: [:], offsets: [7: 80])
        #expect(plan.owners.isEmpty && plan.skipped == [c: .shorter(offset: 80)])
        // Nobody followed yet (a restart): the oldest of two look-alikes is read.
        plan = TailPlan.plan(
            observed: [
                TailObservation(inode: b, path: "b.log", size: 100, modified: 6, fingerprint: 7),
                TailObservation(inode: a, path: "a.log", size: 100, modified: 5, fingerprint: 7),
            ], following: [:], offsets: [:])
        #expect(plan.owners == [7: a] && plan.skipped == [b: .duplicate(of: a)])
    }

    // MARK: - The reader on real files

    func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tail-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func source(_ dir: String) -> FileSource {
        var source = FileSource(pattern: "\(dir)/app.log*", format: .ndjson, pollInterval: .milliseconds(20))
        source.tail = true
        source.ndjson.columns = [Field("seq", .int64)]
        return source
    }

    /// A reader and the newest position it handed over per partition (a checkpoint to resume from).
    final class Follower {
        let reader: any SourceReader
        var checkpoint: [String: String] = [:]
        var seqs: [Int64] = []

        init(_ source: FileSource, from checkpoint: [String: String] = [:], maxOpen: Int? = nil) async throws {
            let context = SourceContext(pipeline: "t", state: MemoryStateStore(), logger: Logger(label: "t"))
            if let maxOpen {
                reader = FileTailReader(source: source, checkpoint: Checkpoint(checkpoint), context: context, maxOpen: maxOpen)
            } else {
                reader = try await source.makeReader(resumingFrom: Checkpoint(checkpoint), context: context)
            }
            self.checkpoint = checkpoint
        }

        /// Reads until `seq` was read (a sentinel written last: whatever came before it, including
        /// any line read twice, was read by then).
        func read(through seq: Int64) async throws {
            while !seqs.contains(seq), let batch = try await reader.next() {
                checkpoint[batch.position.partition] = batch.position.value
                for row in 0..<batch.records.count {
                    if case let .int64(value) = batch.records.row(row)[0] { seqs.append(value) }
                }
            }
        }

        /// Reads until `count` records in all were read (the suite's time limit cancels a reader
        /// that waits for lines that never come).
        func read(until count: Int) async throws {
            while seqs.count < count, let batch = try await reader.next() {
                checkpoint[batch.position.partition] = batch.position.value
                for row in 0..<batch.records.count {
                    if case let .int64(seq) = batch.records.row(row)[0] { seqs.append(seq) }
                }
            }
        }
    }

    func append(_ text: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
    }

    func lines(_ range: Range<Int>) -> String { range.map { "{\"seq\":\($0)}\n" }.joined() }

    @Test func followsAppendsRotationsAndResumesReadingEachLineOnce() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/app.log"
        try append(lines(0..<3) + "{\"seq\":", to: log)
        let follower = try await Follower(source(dir))
        try await follower.read(until: 3)
        // The partial line is read once its newline is written.
        try append("3}\n" + lines(4..<6), to: log)
        try await follower.read(until: 6)
        #expect(follower.seqs == Array(0..<6))

        // Rotation by rename: the old file gets a last line (its writer had it open), a new one starts.
        try FileManager.default.moveItem(atPath: log, toPath: "\(log).1")
        try append(lines(6..<8), to: "\(log).1")
        try append(lines(8..<10), to: log)
        try await follower.read(until: 10)

        // Copy-truncate: lines not read yet are in the copy; the truncated file starts again.
        try append(lines(10..<13), to: log)
        try FileManager.default.copyItem(atPath: log, toPath: "\(log).2")
        try FileHandle(forWritingTo: URL(fileURLWithPath: log)).truncate(atOffset: 0)
        try append(lines(13..<15), to: log)
        try await follower.read(until: 15)
        #expect(follower.seqs.sorted() == Array(0..<15), "\(follower.seqs)")

        // A new reader from the last positions reads only what came after them, across files.
        let checkpoint = follower.checkpoint
        #expect(checkpoint.keys.allSatisfy { $0.hasPrefix("tail:") } && checkpoint.count == 3, "\(checkpoint)")
        await follower.reader.close()
        try append(lines(15..<17), to: log)
        try append(lines(17..<18), to: "\(log).2")
        let resumed = try await Follower(source(dir), from: checkpoint)
        try await resumed.read(until: 3)
        #expect(resumed.seqs.sorted() == Array(15..<18), "\(resumed.seqs)")
        // A copy of a followed file is not read (it would repeat its lines).
        try FileManager.default.copyItem(atPath: "\(log).1", toPath: "\(log).3")
        try append(lines(18..<19), to: log)
        try await resumed.read(through: 18)
        #expect(resumed.seqs.sorted() == Array(15..<19), "\(resumed.seqs)")
        await resumed.reader.close()
    }

    @Test func aDeletedFileIsReadToItsEndAndATruncatedLookAlikeIsNotReadOn() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/app.log"
        try append(lines(0..<3), to: log)
        let follower = try await Follower(source(dir))
        try await follower.read(through: 2)
        // Lines written just before the file is deleted are read from the open descriptor.
        try append(lines(3..<5), to: log)
        try FileManager.default.removeItem(atPath: log)
        try append(lines(5..<6), to: "\(dir)/app.log.new")
        try await follower.read(until: 6)
        #expect(follower.seqs.sorted() == Array(0..<6), "\(follower.seqs)")

        // Truncated and written again with the same first line, shorter than what was read:
        // not read on from the old offset (that would cut its lines); other files go on.
        let other = "\(dir)/app.log.new"
        try append(lines(6..<9), to: other)
        try await follower.read(through: 8)
        try FileHandle(forWritingTo: URL(fileURLWithPath: other)).truncate(atOffset: 0)
        try append(lines(5..<6) + "{\"seq\":100}\n", to: other)
        try append(lines(9..<10), to: "\(dir)/app.log.last")
        try await follower.read(through: 9)
        #expect(!follower.seqs.contains(100))
        #expect(follower.seqs.sorted() == Array(0..<10), "\(follower.seqs)")
        await follower.reader.close()
    }

    @Test func manyFilesAreReadWithAFewOpenAtATime() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for file in 0..<40 {
            try append(lines(file * 100..<(file + 1) * 100), to: "\(dir)/app.log.\(file)")
        }
        let follower = try await Follower(source(dir), maxOpen: 3)
        try await follower.read(until: 4000)
        // More lines in files closed to make room: they are opened again and read on.
        for file in [0, 17, 39] { try append(lines(4000 + file..<4001 + file), to: "\(dir)/app.log.\(file)") }
        try append(lines(5000..<5001), to: "\(dir)/app.log.40")
        try await follower.read(until: 4004)
        let expected = Set(Array(0..<4000) + [4000, 4017, 4039, 5000] as [Int64])
        #expect(follower.seqs.count == 4004, "\(follower.seqs.count)")
        let missing = expected.subtracting(follower.seqs).sorted(), foreign = Set(follower.seqs).subtracting(expected).sorted()
        #expect(missing.count == 0 && foreign.count == 0, "missing \(missing.prefix(10)), not written \(foreign.prefix(10))")
        await follower.reader.close()
    }

    @Test func aPipelineThatReadFilesBeforeGoesOnFromThereWhenItStartsTailing() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/app.log"
        try append(lines(0..<5), to: log)
        // The file source without tail read the file (its checkpoint is keyed by path).
        let plain = FileSource(pattern: log, format: .ndjson)
        let context = SourceContext(pipeline: "t", state: MemoryStateStore(), logger: Logger(label: "t"))
        let reader = try await plain.makeReader(resumingFrom: .empty, context: context)
        var checkpoint: [String: String] = [:]
        while let batch = try await reader.next() { checkpoint[batch.position.partition] = batch.position.value }
        await reader.close()
        try append(lines(5..<7), to: log)
        let follower = try await Follower(source(dir), from: checkpoint)
        try await follower.read(through: 6)
        #expect(follower.seqs == [5, 6])
        await follower.reader.close()
    }

    @Test func csvFilesAreFingerprintedAfterTheirHeader() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var source = FileSource(pattern: "\(dir)/app.log*", format: .csv, pollInterval: .milliseconds(20))
        source.tail = true
        source.csv.columns = [Field("seq", .int64)]
        // Two files with the same header and different first rows are two files.
        try append("seq\n1\n2\n", to: "\(dir)/app.log.1")
        try append("seq\n3\n", to: "\(dir)/app.log")
        let follower = try await Follower(source)
        try await follower.read(until: 3)
        #expect(follower.seqs.sorted() == [1, 2, 3])
        await follower.reader.close()
    }

    @Test func tailOptionsAreCheckedWhereTheyAreWritten() throws {
        func load(_ options: String) throws -> String? {
            let text = """
                pipelines:
                  logs:
                    source:
                      file: \(options)
                    sink:
                      ndjson: { path: out }
                """
            do {
                _ = try ConfigLoader(registry: BuiltinComponents.registry, environment: [:], baseDirectory: "/tmp")
                    .load(text: text, file: "p.yaml")
                return nil
            } catch let error as ConfigError {
                return "\(error.keyPath): \(error.message)"
            }
        }
        #expect(try load(#"{ path: "logs/app.log*", format: ndjson, tail: true }"#) == nil)
        #expect(try load(#"{ path: "logs/app.log*", tail: true }"#)?.contains("needs `format`") == true)
        let s3 = try load(#"{ path: "s3://logs-bucket/app/", format: ndjson, tail: true }"#)
        #expect(s3?.contains("local files") == true, "\(s3 ?? "")")
        #expect(try load(#"{ path: "logs/*.parquet", format: parquet, tail: true }"#)?.contains("Parquet") == true)
        #expect(try load(#"{ path: "logs/a", format: ndjson, tail: true, min_age: 1s }"#)?.contains("min_age") == true)
        #expect(try load(#"{ path: "logs/a", format: ndjson, tail: true, compression: gzip }"#)?.contains("plain files") == true)
        #expect(try load(#"{ path: "logs/a", format: ndjson, fingerprint_lines: 2 }"#)?.contains("only with `tail: true`") == true)
        #expect(try load(#"{ path: "logs/a", format: ndjson, tail: true, watch: true }"#)?.contains("drop `watch`") == true)
    }
}
