import Foundation
import GRDB
import SluiceCore
import Testing

@testable import SluiceStateSQLite

/// Migration v12 moves the dedupe runs from a table without rowid to a rowid table: every row
/// comes along, the store reads and looks them up as before, and keys never go into an index.
@Suite struct DedupeRunsMigrationTests {
    @Test func runsStoredBeforeTheMigrationAreReadAndFound() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: "\(dir)/state.db")
        try StateMigrations.migrator.migrate(queue, upTo: "v11-dedupe-filters")
        let seed = DedupeSeed(k0: 11, k1: 12)
        // Three runs of 3,000 keys (about three a bucket) for "p", one for "q".
        func keys(_ range: Range<Int>) -> [DedupeHash] { range.map { SipHash128.hash(text: "k\($0)", seed: seed) } }
        let runs = [(1, "p", keys(0..<3000), 100.0), (2, "p", keys(3000..<6000), 200.0), (3, "p", keys(6000..<9000), 300.0), (1, "q", keys(0..<10), 100.0)]
        try await queue.write { db in
            for pipeline in ["p", "q"] {
                try db.execute(
                    sql: "INSERT INTO dedupe_meta(pipeline, seed, last_run) VALUES (?, ?, ?)",
                    arguments: [pipeline, Data(seed.bytes), pipeline == "p" ? 3 : 1])
            }
            for (run, pipeline, hashes, seenAt) in runs {
                for row in DedupeRunRow.rows(run: Int64(run), seenAt: seenAt, hashes: hashes, writer: 7) {
                    try db.execute(
                        sql: "INSERT INTO dedupe_runs(pipeline, bucket, run, seen_at, writer, keys) VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [pipeline, row.bucket, row.run, row.seenAt, row.writer, Data(row.keys)])
                }
            }
        }
        try queue.close()

        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        #expect(try await store.dedupeSeed(pipeline: "p") == seed)
        #expect(try await store.dedupeKeyCount(pipeline: "p", since: .distantPast) == 9000)
        let epoch = Date(timeIntervalSince1970: 0)
        #expect(try await store.seenHashes(pipeline: "p", hashes: keys(2990..<3010), since: epoch).count == 20)
        #expect(try await store.seenHashes(pipeline: "p", hashes: keys(2990..<3010), since: epoch, runs: 2...2).count == 10)
        #expect(try await store.seenHashes(pipeline: "p", hashes: keys(0..<10), since: Date(timeIntervalSince1970: 150)).isEmpty, "run 1 expired")
        #expect(try await store.seenHashes(pipeline: "q", hashes: keys(0..<20), since: epoch).count == 10)
        // Read whole, in (run, bucket) order, page by page.
        var cursor = DedupeRunCursor.start
        var read: [DedupeHash] = []
        var order: [DedupeRunCursor] = []
        while true {
            let rows = try await store.dedupeRuns(pipeline: "p", after: cursor, through: 3, since: epoch, excludingWriter: nil, limit: 300)
            for row in rows {
                order.append(DedupeRunCursor(run: row.run, bucket: row.bucket))
                for index in 0..<row.count { read.append(row.hash(at: index)) }
            }
            guard let last = rows.last, rows.count == 300 else { break }
            cursor = DedupeRunCursor(run: last.run, bucket: last.bucket)
        }
        #expect(read.count == 9000 && Set(read) == Set(keys(0..<9000)) && order == order.sorted())
        // A commit after the migration appends run 4; the same run again is refused by the
        // unique index that replaced the primary key.
        var commit = StateCommit(pipeline: "p", now: Date(timeIntervalSince1970: 400))
        commit.dedupeHashes = keys(9000..<9100)
        try await store.commit(commit)
        #expect(try await store.dedupeLastRun(pipeline: "p") == 4)
        #expect(try await store.seenHashes(pipeline: "p", hashes: keys(9050..<9150), since: epoch, runs: 4...4).count == 50)
        let schema = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE tbl_name = 'dedupe_runs' AND sql IS NOT NULL")
        }
        #expect(!schema.contains { $0.contains("WITHOUT ROWID") }, "\(schema)")
        #expect(schema.contains { $0.contains("UNIQUE INDEX dedupe_runs_bucket") } && !schema.contains { $0.contains("keys)") && $0.contains("INDEX") })
        await #expect(throws: (any Error).self) {
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO dedupe_runs(pipeline, bucket, run, seen_at, writer, keys) VALUES ('p', 0, 1, 0, 0, x'00')")
            }
        }
    }
}
