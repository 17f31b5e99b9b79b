import Foundation
import SluiceCore
import Testing

@testable import SluiceStateSQLite

/// `sluice state export|import` between embedded stores: numbers a store gave out are never
/// given out again by the copy, even where no row holding them is left.
@Suite struct StateTransferTests {
    static func copy(_ from: SQLiteStateStore, into path: String, via file: String) async throws -> SQLiteStateStore {
        let writer = try StateExportFile.Writer(path: file, from: from.path)
        try await from.exportState { try writer.write($0) }
        try writer.finish()
        let to = try SQLiteStateStore(path: path)
        let reader = try StateExportFile.Reader(path: file)
        try await to.importState { try reader.next() }
        #expect(reader.expected == reader.summary)
        return to
    }

    @Test func aConsumedPushQueueAndReplayedDeadLettersKeepTheirNumbersUsed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-transfer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/a.db")
        // Three requests queued, all consumed and deleted: the queue is empty, its counter at 3.
        for i in 0..<3 {
            _ = try await store.append([
                PushAppend(stream: "s", pipeline: "p", requestID: "r\(i)", payload: Array("{\"n\":\(i)}\n".utf8), records: 1, receivedAt: Date())
            ])
        }
        var consumed = StateCommit(pipeline: "p")
        consumed.checkpoint = [PushQueuePartition.name(stream: "s"): "3"]
        consumed.deadLetters = (0..<3).map { DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad", location: "f:\($0)", raw: [1, 2]) }
        try await store.commit(consumed)
        #expect(try await store.trimConsumed(stream: "s", limit: 10) == 3)
        let letters = try await store.deadLetters(pipeline: "p", limit: 10)
        #expect(letters.count == 3)

        let copy = try await Self.copy(store, into: "\(dir)/b.db", via: "\(dir)/state.ndjson")
        // The next request gets a number the consumer has not passed.
        let next = try await copy.append([
            PushAppend(stream: "s", pipeline: "p", requestID: "r3", payload: Array("{\"n\":3}\n".utf8), records: 1, receivedAt: Date())
        ])
        #expect(next == [.appended(sequence: 4)], "\(next)")
        #expect(try await copy.queued(stream: "s", after: 3, limit: 10, maxBytes: .max).count == 1)
        // Dead letters moved under new numbers, above every number the original gave out.
        let moved = try await copy.deadLetters(pipeline: "p", limit: 10)
        #expect(moved.map(\.letter.location) == letters.map(\.letter.location))
        #expect(moved.allSatisfy { m in letters.allSatisfy { $0.id < m.id } }, "\(moved.map(\.id)) after \(letters.map(\.id))")
    }
}
