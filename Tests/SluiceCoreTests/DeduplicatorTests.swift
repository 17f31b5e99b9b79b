import Foundation
@testable import SluiceCore
import SluiceTesting
import Testing

@Suite struct DeduplicatorTests {
    func batch(_ ids: [Int64]) -> RecordBatch {
        var b = ColumnBuilder(type: .int64)
        for id in ids { b.append(id) }
        return RecordBatch(schema: Schema([Field("id", .int64)]), columns: [b.finish()])
    }

    /// A commit in the middle of a flush must not take keys of batches it does not cover.
    @Test func pendingKeysAreHandedOverPerBatch() async throws {
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let position = SourcePosition(partition: "", value: "x")
        _ = try await d.filter(batch([1, 2]), sequence: 0, position: position, now: Date())
        _ = try await d.filter(batch([3]), sequence: 1, position: position, now: Date())
        let (kept, duplicates, _) = try await d.filter(batch([3, 4]), sequence: 2, position: position, now: Date())
        #expect(kept.count == 1 && duplicates == 1)
        #expect(d.takePending(through: 0).count == 2)
        #expect(d.takePending(through: 1).count == 1)
        #expect(d.takePending(through: 5).count == 1)
    }

    /// The records of one queue message share its sequence: kept or dropped as one unit.
    @Test func runsOfOneKeyAreKeptOrDroppedTogether() async throws {
        var d = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let position = SourcePosition(partition: "", value: "x")
        let (first, dropped, _) = try await d.filter(batch([1, 1, 1, 2, 2]), sequence: 0, position: position, now: Date(), keyRuns: true)
        #expect(first.count == 5 && dropped == 0)
        // A redelivered message (key 2) is dropped whole; a new one (3) kept whole; a key seen
        // again after another (1 after 3) is a redelivery too, not part of the run.
        let (second, dropped2, _) = try await d.filter(batch([2, 2, 3, 3, 3, 1]), sequence: 1, position: position, now: Date(), keyRuns: true)
        #expect(second.count == 3 && dropped2 == 3)
        #expect(d.takePending(through: 1) == [DedupeKey.encode([.int64(1)]), DedupeKey.encode([.int64(2)]), DedupeKey.encode([.int64(3)])])
        // Without runs, a repeated key is a duplicate even next to itself.
        var plain = Deduplicator(settings: DedupeSettings(key: ["id"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let (kept, duplicates, _) = try await plain.filter(batch([1, 1, 1]), sequence: 0, position: position, now: Date())
        #expect(kept.count == 1 && duplicates == 2)
    }

    @Test func keysAreUnambiguous() {
        #expect(DedupeKey.encode([.null]) != DedupeKey.encode([.string("null")]))
        #expect(DedupeKey.encode([.binary([0x01, 0x23])]) != DedupeKey.encode([.binary([0x12, 0x03])]))
        #expect(DedupeKey.encode([.string("a\u{1F}b")]) != DedupeKey.encode([.string("a"), .string("b")]))
        #expect(DedupeKey.encode([.int64(7), .string("x")]) == DedupeKey.encode([.int64(7), .string("x")]))
    }

    @Test func aMissingKeyFieldDeadLettersEveryRow() async throws {
        var d = Deduplicator(settings: DedupeSettings(key: ["nope"], ttl: .seconds(60)), pipeline: "p", store: MemoryStateStore())
        let (kept, _, rejects) = try await d.filter(batch([1, 2, 3]), sequence: 0, position: SourcePosition(partition: "f", value: "9"), now: Date())
        #expect(kept.count == 0)
        #expect(rejects.count == 3)
        #expect(Set(rejects.map(\.location)).count == 3)
    }
}
