import Foundation
import GRDB
import SluiceCore

/// Dedupe keys in the embedded store: `dedupe_runs` holds, per pipeline, one row per bucket
/// and commit (run) with the commit's keys of that bucket, sorted (``DedupeRunRow``);
/// `dedupe_meta` the pipeline's hashing seed and its last run number.
///
/// A commit appends its rows (a few per thousand keys, not one B-tree entry per key); looking
/// keys up reads their buckets' rows in the runs asked, by the unique `(pipeline, bucket, run)`
/// index; the filter of a running pipeline reads the runs after the last it read, by the
/// `(pipeline, run, bucket, …)` index. Runs are numbered in commit order (one writer), so
/// "after the last run read" misses no commit. The table has a rowid and the keys are in no
/// index: SQLite compares a seek's key with a B-tree row that overflows its page by reading
/// the row whole (migration `v12-dedupe-runs-rowid`).
enum SQLiteDedupeKeys {
    /// The pipeline's seed, made on first use, with the text keys of an earlier version
    /// (`dedupe_keys`) converted: one run per commit time they were stored at.
    static func seed(_ db: Database, pipeline: String) throws -> DedupeSeed {
        if let row = try Row.fetchOne(db, sql: "SELECT seed FROM dedupe_meta WHERE pipeline = ?", arguments: [pipeline]),
            let seed = DedupeSeed(bytes: [UInt8](row["seed"] as Data))
        {
            return seed
        }
        let seed = DedupeSeed.random()
        var lastRun: Int64 = 0
        var byTime: [Double: [DedupeHash]] = [:]
        let legacy = try Row.fetchCursor(db, sql: "SELECT key, seen_at FROM dedupe_keys WHERE pipeline = ?", arguments: [pipeline])
        while let row = try legacy.next() {
            byTime[row["seen_at"], default: []].append(SipHash128.hash(text: row["key"], seed: seed))
        }
        for (seenAt, hashes) in byTime.sorted(by: { $0.key < $1.key }) {
            lastRun += 1
            try insert(DedupeRunRow.rows(run: lastRun, seenAt: seenAt, hashes: hashes), pipeline: pipeline, db)
        }
        try db.execute(sql: "DELETE FROM dedupe_keys WHERE pipeline = ?", arguments: [pipeline])
        try db.execute(
            sql: "INSERT INTO dedupe_meta(pipeline, seed, last_run) VALUES (?, ?, ?)", arguments: [pipeline, Data(seed.bytes), lastRun])
        return seed
    }

    /// Stores the keys of `commit` as a new run, after refusing the commit when another worker
    /// committed one of them inside the TTL (``StateCommit/dedupeSince``).
    static func store(_ commit: StateCommit, _ db: Database) throws {
        guard !commit.dedupeKeys.isEmpty || !(commit.dedupeHashes ?? []).isEmpty else { return }
        let pipeline = commit.owner
        let hashes = DedupeRows.hashes(of: commit, seed: try seed(db, pipeline: pipeline))
        if let since = commit.dedupeSince {
            let buckets = DedupeRows.buckets(hashes).map(String.init).joined(separator: ",")
            let rows: [DedupeRunRow]
            var ownAttempt: Double?
            if let through = commit.dedupeCheckedThrough {
                // Runs of other writers only: this writer's own hold none of its new keys (a
                // retry of this very commit included).
                rows = try fetch(
                    db, sql: "WHERE pipeline = ? AND run > ? AND writer != ? AND bucket IN (\(buckets)) AND seen_at >= ?",
                    [pipeline, through, commit.dedupeWriter ?? -1, since.timeIntervalSince1970])
            } else {
                rows = try fetch(db, sql: "WHERE pipeline = ? AND bucket IN (\(buckets)) AND seen_at >= ?", [pipeline, since.timeIntervalSince1970])
                ownAttempt = commit.now.timeIntervalSince1970
            }
            let refused = DedupeRows.found(hashes, in: rows, since: since.timeIntervalSince1970, excludingSeenAt: ownAttempt)
            if !refused.isEmpty { throw commit.conflict(keys: refused.sorted()) }
        }
        let run = (try Int64.fetchOne(db, sql: "SELECT last_run FROM dedupe_meta WHERE pipeline = ?", arguments: [pipeline]) ?? 0) + 1
        try db.execute(sql: "UPDATE dedupe_meta SET last_run = ? WHERE pipeline = ?", arguments: [run, pipeline])
        try insert(
            DedupeRunRow.rows(run: run, seenAt: commit.now.timeIntervalSince1970, hashes: hashes, writer: commit.dedupeWriter ?? 0),
            pipeline: pipeline, db)
    }

    static func insert(_ rows: [DedupeRunRow], pipeline: String, _ db: Database) throws {
        let statement = try db.cachedStatement(
            sql: "INSERT INTO dedupe_runs(pipeline, bucket, run, seen_at, writer, keys) VALUES (?, ?, ?, ?, ?, ?)")
        for row in rows {
            try statement.execute(arguments: [pipeline, row.bucket, row.run, row.seenAt, row.writer, Data(row.keys)])
        }
    }

    static func fetch(_ db: Database, sql condition: String, _ arguments: [any DatabaseValueConvertible]) throws -> [DedupeRunRow] {
        try Row.fetchAll(db, sql: "SELECT run, bucket, seen_at, keys FROM dedupe_runs " + condition, arguments: StatementArguments(arguments))
            .map { DedupeRunRow(run: $0["run"], bucket: $0["bucket"], seenAt: $0["seen_at"], keys: [UInt8]($0["keys"] as Data)) }
    }
}

extension SQLiteStateStore {
    public func dedupeSeed(pipeline: String) async throws -> DedupeSeed {
        try await write { db in try SQLiteDedupeKeys.seed(db, pipeline: pipeline) }
    }

    public func dedupeKeyCount(pipeline: String, since: Date) async throws -> Int {
        try await pool.read { db in
            // length() of a blob reads its size from the record header, not its bytes.
            try Int.fetchOne(
                db, sql: "SELECT COALESCE(SUM(length(keys)), 0) / 16 FROM dedupe_runs WHERE pipeline = ? AND seen_at >= ?",
                arguments: [pipeline, since.timeIntervalSince1970]) ?? 0
        }
    }

    public func dedupeFilter(pipeline: String) async throws -> DedupeFilterSnapshot? {
        try await pool.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT run, header, words FROM dedupe_filters WHERE pipeline = ?", arguments: [pipeline])
            else { return nil }
            let wordCount: Int = row["words"]
            let chunks = try Row.fetchCursor(
                db, sql: "SELECT chunk, bits FROM dedupe_filter_chunks WHERE pipeline = ? ORDER BY chunk", arguments: [pipeline])
            // Each chunk copied from where SQLite holds it straight into the filter's words.
            return try DedupeFilterSnapshot.assemble(run: row["run"], header: [UInt8](row["header"] as Data), wordCount: wordCount) { index, into in
                guard let chunk = try chunks.next(), chunk[0] as Int == index else { return false }
                return try chunk.withUnsafeData(atIndex: 1) { bits in
                    guard let bits, bits.count == into.count else { return false }
                    bits.withUnsafeBytes { into.copyMemory(from: $0) }
                    return true
                }
            }
        }
    }

    /// A filter of the size of the one saved (the usual case: a pipeline saving its filter
    /// again) is written over it in place (``SQLiteBlob``): about half the time of deleting the
    /// chunks, which walks their page chains, and inserting them again (the same SQLite work
    /// from Python's `sqlite3` on the benchmark's 50 MB filter: 0.19–0.23 s against
    /// 0.35–0.44 s). Either way in one transaction.
    public func saveDedupeFilter(pipeline: String, _ snapshot: DedupeFilterSnapshot) async throws {
        try await write { db in
            let chunkCount = DedupeFilterSnapshot.chunkCount(words: snapshot.words.count)
            // `length` of a blob reads only the row's header, not the value's pages.
            let stored = try Row.fetchAll(
                db, sql: "SELECT rowid, chunk, length(bits) FROM dedupe_filter_chunks WHERE pipeline = ? ORDER BY chunk", arguments: [pipeline])
            let sameLayout =
                stored.count == chunkCount
                && stored.enumerated().allSatisfy { index, row in
                    row[1] as Int == index && row[2] as Int == snapshot.withChunk(index) { $0.count }
                }
            if sameLayout {
                for (index, row) in stored.enumerated() {
                    try snapshot.withChunk(index) { bits in
                        try SQLiteBlob.overwrite(db, table: "dedupe_filter_chunks", column: "bits", rowID: row[0], with: bits)
                    }
                }
            } else {
                try db.execute(sql: "DELETE FROM dedupe_filter_chunks WHERE pipeline = ?", arguments: [pipeline])
                let insert = try db.cachedStatement(sql: "INSERT INTO dedupe_filter_chunks(pipeline, chunk, bits) VALUES (?, ?, ?)")
                for index in 0..<chunkCount {
                    // Copied (8 MiB at a time): the cached statement keeps its arguments.
                    try insert.execute(arguments: [pipeline, index, snapshot.withChunk(index) { Data($0) }])
                }
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO dedupe_filters(pipeline, run, header, words) VALUES (?, ?, ?, ?)",
                arguments: [pipeline, snapshot.run, Data(snapshot.header), snapshot.words.count])
        }
    }

    public func dedupeLastRun(pipeline: String) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT last_run FROM dedupe_meta WHERE pipeline = ?", arguments: [pipeline]) ?? 0
        }
    }

    public func dedupeRuns(
        pipeline: String, after cursor: DedupeRunCursor, through: Int64, since: Date, excludingWriter: Int64?, limit: Int
    ) async throws -> [DedupeRunRow] {
        try await pool.read { db in
            // The rows are chosen in the run index alone (it holds writer and seen_at), and only
            // those are read from the table, by rowid: filtering table rows would read the keys
            // of every row skipped (a run this writer committed: 16 MB for a million keys) from
            // their overflow pages. Sorted here: the index's order is not the join's.
            try Row.fetchAll(
                db,
                sql: """
                    SELECT r.run, r.bucket, r.seen_at, r.keys FROM (
                        SELECT rowid AS id FROM dedupe_runs INDEXED BY dedupe_runs_run
                        WHERE pipeline = ? AND run BETWEEN ? AND ? AND (run > ? OR bucket > ?) AND writer != ? AND seen_at >= ?
                        ORDER BY run, bucket LIMIT ?) AS chosen
                    JOIN dedupe_runs r ON r.rowid = chosen.id
                    """,
                arguments: [pipeline, cursor.run, through, cursor.run, cursor.bucket, excludingWriter ?? -1, since.timeIntervalSince1970, limit]
            )
            .map { DedupeRunRow(run: $0["run"], bucket: $0["bucket"], seenAt: $0["seen_at"], keys: [UInt8]($0["keys"] as Data)) }
            .sorted { DedupeRunCursor(run: $0.run, bucket: $0.bucket) < DedupeRunCursor(run: $1.run, bucket: $1.bucket) }
        }
    }

    public func seenHashes(pipeline: String, hashes: [DedupeHash], since: Date, runs: ClosedRange<Int64>) async throws -> Set<DedupeHash> {
        guard !hashes.isEmpty else { return [] }
        return try await pool.read { db in
            var found = Set<DedupeHash>()
            found.reserveCapacity(hashes.count)
            let wanted = DedupeWanted(hashes)
            let buckets = wanted.buckets
            for chunk in stride(from: 0, to: buckets.count, by: 256) {
                let list = buckets[chunk..<min(chunk + 256, buckets.count)].map(String.init).joined(separator: ",")
                // Each row checked where SQLite holds it, none copied or kept.
                let rows = try Row.fetchCursor(
                    db,
                    sql: "SELECT bucket, keys FROM dedupe_runs WHERE pipeline = ? AND bucket IN (\(list)) AND run BETWEEN ? AND ? AND seen_at >= ?",
                    arguments: [pipeline, runs.lowerBound, runs.upperBound, since.timeIntervalSince1970])
                while let row = try rows.next() {
                    let bucket: Int = row[0]
                    try row.withUnsafeData(atIndex: 1) { keys in
                        keys?.withUnsafeBytes { wanted.check(bucket: bucket, keys: $0, into: &found) }
                    }
                }
            }
            return found
        }
    }

    public func sweepKeys(pipeline: String, before: Date) async throws -> Int {
        try await write { db in
            let cutoff = before.timeIntervalSince1970
            // Whether anything expired is answered by the run index (it holds seen_at): scanning
            // the table would read every stored key, since SQLite reads a row's overflow pages
            // to look at it (10M keys: 160 MB for a sweep that deletes nothing).
            let anyExpired =
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM dedupe_runs INDEXED BY dedupe_runs_run WHERE pipeline = ? AND seen_at < ?)",
                    arguments: [pipeline, cutoff]) ?? false
            var keys = 0
            if anyExpired {
                keys =
                    try Int.fetchOne(
                        db, sql: "SELECT COALESCE(SUM(length(keys)), 0) / 16 FROM dedupe_runs WHERE pipeline = ? AND seen_at < ?",
                        arguments: [pipeline, cutoff]) ?? 0
                try db.execute(sql: "DELETE FROM dedupe_runs WHERE pipeline = ? AND seen_at < ?", arguments: [pipeline, cutoff])
            }
            try db.execute(sql: "DELETE FROM dedupe_keys WHERE pipeline = ? AND seen_at < ?", arguments: [pipeline, cutoff])
            return keys + db.changesCount
        }
    }
}
