import Foundation
import GRDB
import SluiceCore
import Testing

@testable import SluiceStateSQLite

/// The dead-letter queue in blocks: the codec byte for byte, and the store's blocks (whole-block
/// deletes, updates in place, the location index, the migration from one row per letter).
@Suite struct DeadLetterBlockTests {
    static func letter(_ i: Int, stage: String = "decode", raw: [UInt8]? = nil, schema: String? = nil) -> StoredDeadLetter {
        StoredDeadLetter(
            id: DeadLetterBlock.id(block: 7, slot: i), pipeline: "p",
            letter: DeadLetter(
                stage: stage, errorKind: i % 2 == 0 ? "type_mismatch" : "malformed_row", message: "row \(i) is wrong: é ✓", location: "in/f.ndjson:\(i + 1)",
                raw: raw ?? Array("{\"id\":\(i)}".utf8), attempts: i + 1, schema: schema),
            firstSeen: Date(timeIntervalSince1970: 1_800_000_000.25 + Double(i)), lastSeen: Date(timeIntervalSince1970: 1_800_000_100.5))
    }

    @Test func blocksRoundTripEveryField() throws {
        let letters = (0..<50).map { i in
            Self.letter(i, stage: i < 40 ? "decode" : "sink", raw: i == 3 ? [0xFF, 0x00, 0x41] : nil, schema: i >= 40 ? "id int64" : nil)
        }
        let block = DeadLetterBlock(letters: letters)
        let decoded = try DeadLetterBlock.decode(block.encode(), block: 7, pipeline: "p")
        #expect(decoded == block)
        #expect(DeadLetterBlock.split(letters[9].id) == (block: 7, slot: 9))
        #expect(block.groups.map(\.count).reduce(0, +) == 50)
        #expect(try DeadLetterBlock.decodeGroups(DeadLetterBlock.encode(groups: block.groups)) == block.groups)
        #expect(DeadLetterBlock.bitmap(slots: [0, 9, 15]) == [0b0000_0001, 0b1000_0010])
    }

    /// The rows of a block as one text, without a value per letter; refused (unchanged) when a
    /// letter is of another stage or a raw holds a line break.
    @Test func linesGiveTheRowsAsOneText() throws {
        let letters = (0..<4).map { Self.letter($0) }
        var lines = DeadLetterBlock.Lines()
        #expect(try DeadLetterBlock.lines(DeadLetterBlock(letters: letters).encode(), id: 7, stage: "decode", into: &lines))
        #expect(lines.ids == letters.map(\.id))
        var text: [UInt8] = []
        #expect(
            lines.withTexts {
                text += $0; return true
            })
        #expect(String(decoding: text, as: UTF8.self) == "{\"id\":0}\n{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n")
        #expect(lines.location(2) == "in/f.ndjson:3")

        var mixed = DeadLetterBlock.Lines()
        #expect(
            !(try DeadLetterBlock.lines(DeadLetterBlock(letters: letters + [Self.letter(4, stage: "sink")]).encode(), id: 7, stage: "decode", into: &mixed)))
        #expect(mixed.ids.isEmpty && mixed.texts.isEmpty && mixed.blocks.isEmpty && mixed.locations.isEmpty)
        var multiline = DeadLetterBlock.Lines()
        #expect(
            !(try DeadLetterBlock.lines(
                DeadLetterBlock(letters: [Self.letter(0, raw: Array("a\r\nb".utf8))]).encode(), id: 7, stage: "decode", into: &multiline)))
    }

    /// Damaged bytes are refused with a clear error, never read past their end.
    @Test func damagedBlocksAreRefused() throws {
        let bytes = DeadLetterBlock(letters: (0..<20).map { Self.letter($0) }).encode()
        for cut in [0, 1, 2, 5, bytes.count / 2, bytes.count - 1] {
            #expect(throws: SluiceError.self) { try DeadLetterBlock.decode(Array(bytes.prefix(cut)), block: 1, pipeline: "p") }
        }
        #expect(throws: SluiceError.self) { try DeadLetterBlock.decode(bytes + [0], block: 1, pipeline: "p") }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? DeadLetterBlock.decode(damaged, block: 1, pipeline: "p")
            var lines = DeadLetterBlock.Lines()
            _ = try? DeadLetterBlock.lines(damaged, id: 1, stage: "decode", into: &lines)
        }
    }

    func open() throws -> (SQLiteStateStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blocks-\(UUID().uuidString)").path
        return (try SQLiteStateStore(path: "\(dir)/state.db"), dir)
    }

    func file(_ store: SQLiteStateStore, _ locations: [String], attempts: Int = 1) async throws {
        var c = StateCommit(pipeline: "p")
        c.deadLetters = locations.map {
            DeadLetter(stage: "decode", errorKind: "malformed_row", message: "bad", location: $0, raw: Array($0.utf8), attempts: attempts)
        }
        try await store.commit(c)
    }

    func resolve(_ store: SQLiteStateStore, _ ids: [Int64]) async throws {
        var c = StateCommit(pipeline: "p~replay")
        c.ownerPipeline = "p"
        c.resolvedDeadLetters = ids
        try await store.commit(c)
    }

    /// A replay that delivers every letter of a block deletes it; one that delivers some leaves
    /// the others with their ids; a letter gone already refuses the commit.
    @Test func replayCommitsDeleteWholeBlocksOrTheirLetters() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await file(store, (1...10).map { "a:\($0)" })
        try await file(store, (1...10).map { "b:\($0)" })
        let all = try await store.deadLetters(pipeline: "p", limit: 100)
        #expect(all.count == 20 && Set(all.map { DeadLetterBlock.split($0.id).block }).count == 2)
        let page = try await store.deadLetterPage(matching: DeadLetterFilter(pipeline: "p"), limit: 15)
        #expect(page.count == 10 && page.lastID == all[9].id, "whole blocks that fit")

        try await resolve(store, all.prefix(10).map(\.id))
        try await resolve(store, all[10..<15].map(\.id))
        let left = try await store.deadLetters(pipeline: "p", limit: 100)
        #expect(left.map(\.id) == all[15...].map(\.id))
        let rows = try await blockCount(dir)
        #expect(rows == 1)
        await #expect(throws: SluiceError.self) { try await resolve(store, [all[0].id, left[0].id]) }
        #expect(try await store.deadLetters(pipeline: "p", limit: 100).map(\.id) == left.map(\.id), "nothing of the refused commit")
    }

    func blockCount(_ dir: String) async throws -> Int {
        let queue = try DatabaseQueue(path: "\(dir)/state.db")
        return try await queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM dead_letter_blocks") ?? -1 }
    }

    /// A letter filed again at its location is updated where it is (same id, attempts added),
    /// across blocks; once it is gone, the location takes a new letter.
    @Test func aLocationHoldsOneLetter() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await file(store, ["x:1", "x:2"])
        try await file(store, ["x:2", "x:3", "x:3"], attempts: 2)
        let letters = try await store.deadLetters(pipeline: "p", limit: 10)
        #expect(letters.map(\.letter.location) == ["x:1", "x:2", "x:3"])
        #expect(letters.map(\.letter.attempts) == [1, 3, 4])
        try await resolve(store, [letters[1].id])
        try await file(store, ["x:2"])
        let after = try await store.deadLetters(pipeline: "p", limit: 10)
        #expect(after.map(\.letter.location) == ["x:1", "x:3", "x:2"] && after[2].letter.attempts == 1 && after[2].id > letters[2].id)
        // Retention and drop leave no index entry of a block that is gone.
        #expect(try await store.sweepDeadLetters(pipeline: "p", before: nil, keepNewest: 1) == 2)
        #expect(try await store.deleteDeadLetters(matching: DeadLetterFilter(pipeline: "p")) == 1)
        let queue = try DatabaseQueue(path: "\(dir)/state.db")
        #expect(try await queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM dead_letter_locations") } == 0)
    }

    /// Thousands of letters at once (the index is written and read many rows per statement):
    /// filed again, each is updated where it is, in every block.
    @Test func manyLettersFiledTwiceStayOneEach() async throws {
        let (store, dir) = try open()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let locations = (1...20_000).map { "big.ndjson:\($0)" }
        try await file(store, locations)
        try await file(store, locations.reversed() + ["big.ndjson:1"])
        let letters = try await store.deadLetters(pipeline: "p", limit: 30_000)
        #expect(letters.map(\.letter.location) == locations)
        #expect(letters.allSatisfy { $0.letter.attempts == ($0.letter.location == "big.ndjson:1" ? 3 : 2) })
        #expect(try await blockCount(dir) == 3)
    }

    /// A state database of one row per letter (before blocks) opens with its letters in blocks,
    /// in the same order, and a dead-letter sink's forwarding position moved with them.
    @Test func migratesLettersStoredOneRowEach() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blocks-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: "\(dir)/state.db")
        try StateMigrations.migrator.migrate(queue, upTo: "v8-usage")
        try await queue.write { db in
            for i in 1...30 {
                try db.execute(
                    sql: """
                        INSERT INTO dead_letters(id, pipeline, stage, error_kind, message, location, raw, attempts, first_seen, last_seen, schema)
                        VALUES (?, ?, 'decode', 'malformed_row', 'bad', ?, ?, ?, ?, ?, NULL)
                        """,
                    arguments: [i * 3, i % 3 == 0 ? "q" : "p", "f:\(i)", Data([UInt8(i), 0]), i, 1_800_000_000 + Double(i), 1_800_000_001 + Double(i)])
            }
            // An id given out long ago whose letter is gone: new ids must still be above it.
            try db.execute(
                sql: """
                    INSERT INTO dead_letters(id, pipeline, stage, error_kind, message, location, raw, attempts, first_seen, last_seen)
                    VALUES (5000000, 'p', 'decode', 'malformed_row', 'bad', 'gone:1', x'00', 1, 0, 0)
                    """)
            try db.execute(sql: "DELETE FROM dead_letters WHERE id = 5000000")
            // p's sink forwarded p's letters up to old id 30 (i = 10: letters f:1 … f:10 of p).
            try db.execute(sql: "INSERT INTO checkpoints(pipeline, partition, value, updated_at) VALUES ('p~dead_letters', 'id', '30', 0)")
        }
        try queue.close()
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let p = try await store.deadLetters(pipeline: "p", limit: 100)
        let q = try await store.deadLetters(pipeline: "q", limit: 100)
        #expect(p.map(\.letter.location) == (1...30).filter { $0 % 3 != 0 }.map { "f:\($0)" })
        #expect(q.map(\.letter.location) == (1...30).filter { $0 % 3 == 0 }.map { "f:\($0)" })
        #expect((p + q).allSatisfy { $0.id > 5_000_000 }, "new ids above every old one")
        #expect(p[4].letter.raw == [7, 0] && p[4].letter.attempts == 7 && p[4].firstSeen == Date(timeIntervalSince1970: 1_800_000_007))
        let forwarded = Int64(try await store.checkpoint(pipeline: "p~dead_letters")["id"] ?? "") ?? -1
        let next = try await store.deadLetters(matching: DeadLetterFilter(pipeline: "p", afterID: forwarded), limit: 100)
        #expect(next.first?.letter.location == "f:11" && next.count == p.count - 7, "\(forwarded)")
        try await file(store, ["f:1"])
        #expect(try await store.deadLetters(pipeline: "p", limit: 1).first?.letter.attempts == 2, "the migrated locations are indexed")
    }
}
