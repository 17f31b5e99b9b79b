import Foundation
import SluiceCore

/// Dedupe keys in the shared store, laid out as in the embedded one (see `SQLiteDedupeKeys`):
/// `sluice.dedupe_runs`, one row per bucket and commit (run), and `sluice.dedupe_meta`, the
/// pipeline's seed and last run number.
///
/// Workers commit concurrently here. A commit takes its run number by updating the pipeline's
/// `dedupe_meta` row, whose lock it holds to its end, and only then looks for conflicts: so
/// run numbers are given out in commit order, and a commit sees every run committed before
/// its own (the filter of a worker reading "the runs after the last it read" misses none).
enum PostgresDedupeKeys {
    static let columns = "run, bucket, seen_at, keys"

    /// The pipeline's seed, made on first use (the text keys of an earlier version converted in
    /// the same transaction; a worker making it at the same time waits, then reads this one).
    static func seed(_ s: PostgresSession, pipeline: String) throws -> DedupeSeed {
        let made = DedupeSeed.random()
        let inserted = try s.query(
            "INSERT INTO sluice.dedupe_meta(pipeline, seed, last_run) VALUES ($1, $2::bytea, 0) ON CONFLICT (pipeline) DO NOTHING RETURNING 1",
            [pipeline, byteaHex(made.bytes)])
        if inserted.rows == 0 {
            let r = try s.query("SELECT seed FROM sluice.dedupe_meta WHERE pipeline = $1", [pipeline])
            guard r.rows == 1, let seed = DedupeSeed(bytes: r.byteaText(0, 0)) else {
                throw SluiceError(.corruptState, "the dedupe seed of pipeline '\(pipeline)' is missing or damaged in sluice.dedupe_meta")
            }
            return seed
        }
        // No worker of an earlier version may add text keys between reading and deleting them.
        try s.query("LOCK TABLE sluice.dedupe_keys IN SHARE ROW EXCLUSIVE MODE")
        let legacy = try s.query("SELECT key, seen_at FROM sluice.dedupe_keys WHERE pipeline = $1", [pipeline])
        var byTime: [Double: [DedupeHash]] = [:]
        for row in 0..<legacy.rows {
            guard let seenAt = Double(legacy.string(row, 1) ?? "") else {
                throw SluiceError(.corruptState, "a dedupe key of pipeline '\(pipeline)' in sluice.dedupe_keys has no valid seen_at")
            }
            byTime[seenAt, default: []].append(SipHash128.hash(text: legacy.string(row, 0)!, seed: made))
        }
        var run: Int64 = 0
        for (seenAt, hashes) in byTime.sorted(by: { $0.key < $1.key }) {
            run += 1
            try insert(DedupeRunRow.rows(run: run, seenAt: seenAt, hashes: hashes), pipeline: pipeline, s)
        }
        if run > 0 {
            try s.query("UPDATE sluice.dedupe_meta SET last_run = $2::bigint WHERE pipeline = $1", [pipeline, String(run)])
            try s.query("DELETE FROM sluice.dedupe_keys WHERE pipeline = $1", [pipeline])
        }
        return made
    }

    /// Stores the keys of `commit` as a new run, after refusing the commit when another worker
    /// committed one of them inside the TTL (``StateCommit/dedupeSince``).
    static func store(_ commit: StateCommit, _ s: PostgresSession) throws {
        guard !commit.dedupeKeys.isEmpty || !(commit.dedupeHashes ?? []).isEmpty else { return }
        let pipeline = commit.owner
        let hashes = DedupeRows.hashes(of: commit, seed: try seed(s, pipeline: pipeline))
        // The lock that orders this pipeline's commits, held to the end of the transaction.
        let numbered = try s.query(
            "UPDATE sluice.dedupe_meta SET last_run = last_run + 1 WHERE pipeline = $1 RETURNING last_run", [pipeline])
        guard numbered.rows == 1, let run = Int64(numbered.string(0, 0) ?? "") else {
            throw SluiceError(.corruptState, "the dedupe run counter of pipeline '\(pipeline)' is missing from sluice.dedupe_meta")
        }
        if let since = commit.dedupeSince {
            let buckets = "{" + DedupeRows.buckets(hashes).map(String.init).joined(separator: ",") + "}"
            let rows: [DedupeRunRow]
            var ownAttempt: Double?
            if let through = commit.dedupeCheckedThrough {
                // Runs of other writers only: this writer's own hold none of its new keys (a
                // retry of this very commit included).
                rows = try fetch(
                    s, "WHERE pipeline = $1 AND run > $2::bigint AND writer <> $3::bigint AND bucket = ANY($4::int[]) AND seen_at >= $5::float8",
                    [pipeline, String(through), String(commit.dedupeWriter ?? -1), buckets, String(since.timeIntervalSince1970)])
            } else {
                rows = try fetch(
                    s, "WHERE pipeline = $1 AND bucket = ANY($2::int[]) AND seen_at >= $3::float8", [pipeline, buckets, String(since.timeIntervalSince1970)])
                ownAttempt = commit.now.timeIntervalSince1970
            }
            let refused = DedupeRows.found(hashes, in: rows, since: since.timeIntervalSince1970, excludingSeenAt: ownAttempt)
            if !refused.isEmpty { throw commit.conflict(keys: refused.sorted()) }
        }
        try insert(
            DedupeRunRow.rows(run: run, seenAt: commit.now.timeIntervalSince1970, hashes: hashes, writer: commit.dedupeWriter ?? 0),
            pipeline: pipeline, s)
    }

    /// A run's rows in one binary `COPY`: the keys go as they are (hex text would double them,
    /// and building and copying that text took most of a commit's time).
    static func insert(_ rows: [DedupeRunRow], pipeline: String, _ s: PostgresSession) throws {
        guard !rows.isEmpty else { return }
        try s.copyIn("COPY sluice.dedupe_runs(pipeline, bucket, run, seen_at, writer, keys) FROM STDIN (FORMAT binary)") { send in
            var out = BinaryCopyRows()
            for row in rows {
                out.startRow(fields: 6)
                out.field(Array(pipeline.utf8))
                out.field(Int32(row.bucket))
                out.field(row.run)
                out.field(Int64(bitPattern: row.seenAt.bitPattern))
                out.field(row.writer)
                row.keys.withUnsafeBytes { out.field($0) }
                if out.bytes.count >= 1 << 20 { try out.flush(send) }
            }
            try out.finish(send)
        }
    }

    /// A saved filter's chunks in one binary `COPY`, each sent from the filter's words.
    static func insertFilterChunks(_ snapshot: DedupeFilterSnapshot, pipeline: String, _ s: PostgresSession) throws {
        try s.copyIn("COPY sluice.dedupe_filter_chunks(pipeline, chunk, bits) FROM STDIN (FORMAT binary)") { send in
            var out = BinaryCopyRows()
            for index in 0..<DedupeFilterSnapshot.chunkCount(words: snapshot.words.count) {
                try snapshot.withChunk(index) { bits in
                    out.startRow(fields: 3)
                    out.field(Array(pipeline.utf8))
                    out.field(Int32(index))
                    out.appendLength(bits.count)
                    try out.flush(send)
                    try send(bits)
                }
            }
            try out.finish(send)
        }
    }

    /// Rows matching `condition`, read in binary.
    static func fetch(_ s: PostgresSession, _ condition: String, _ parameters: [String?]) throws -> [DedupeRunRow] {
        let r = try s.query("SELECT \(columns) FROM sluice.dedupe_runs " + condition, parameters, binary: true)
        return (0..<r.rows).map { row in
            DedupeRunRow(
                run: Int64(bigEndian: r.bytes(row, 0).loadUnaligned(as: Int64.self)),
                bucket: Int(Int32(bigEndian: r.bytes(row, 1).loadUnaligned(as: Int32.self))),
                seenAt: Double(bitPattern: UInt64(bigEndian: r.bytes(row, 2).loadUnaligned(as: UInt64.self))),
                keys: [UInt8](r.bytes(row, 3)))
        }
    }
}

extension PostgresStateStore {
    public func dedupeSeed(pipeline: String) async throws -> DedupeSeed {
        try await pool.transaction { s in try PostgresDedupeKeys.seed(s, pipeline: pipeline) }
    }

    public func dedupeKeyCount(pipeline: String, since: Date) async throws -> Int {
        try await pool.withSession { s in
            // length() of an uncompressed out-of-line bytea reads its TOAST pointer, not its bytes.
            let r = try s.query(
                "SELECT COALESCE(sum(length(keys)), 0) / 16 FROM sluice.dedupe_runs WHERE pipeline = $1 AND seen_at >= $2::float8",
                [pipeline, String(since.timeIntervalSince1970)])
            return Int(r.string(0, 0) ?? "0") ?? 0
        }
    }

    public func dedupeFilter(pipeline: String) async throws -> DedupeFilterSnapshot? {
        try await pool.transaction { s in
            // One snapshot of the tables: a worker saving meanwhile must not mix its chunks with
            // the header read here.
            try s.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            let meta = try s.query("SELECT run, header, words FROM sluice.dedupe_filters WHERE pipeline = $1", [pipeline], binary: true)
            guard meta.rows == 1 else { return nil }
            let run = Int64(bigEndian: meta.bytes(0, 0).loadUnaligned(as: Int64.self))
            let wordCount = Int(Int64(bigEndian: meta.bytes(0, 2).loadUnaligned(as: Int64.self)))
            // One chunk a query, so the client holds one chunk at a time besides the words.
            return try DedupeFilterSnapshot.assemble(run: run, header: [UInt8](meta.bytes(0, 1)), wordCount: wordCount) { index, into in
                let r = try s.query(
                    "SELECT bits FROM sluice.dedupe_filter_chunks WHERE pipeline = $1 AND chunk = $2::int", [pipeline, String(index)], binary: true)
                guard r.rows == 1, r.bytes(0, 0).count == into.count else { return false }
                into.copyMemory(from: r.bytes(0, 0))
                return true
            }
        }
    }

    public func saveDedupeFilter(pipeline: String, _ snapshot: DedupeFilterSnapshot) async throws {
        try await pool.transaction { s in
            // Workers saving at once take turns (the second one's delete must see the first's
            // chunks), by a lock on the pipeline's filter row.
            try s.query(
                "INSERT INTO sluice.dedupe_filters(pipeline, run, header, words) VALUES ($1, 0, '', 0) ON CONFLICT (pipeline) DO NOTHING", [pipeline])
            try s.query("SELECT 1 FROM sluice.dedupe_filters WHERE pipeline = $1 FOR UPDATE", [pipeline])
            try s.query("DELETE FROM sluice.dedupe_filter_chunks WHERE pipeline = $1", [pipeline])
            try PostgresDedupeKeys.insertFilterChunks(snapshot, pipeline: pipeline, s)
            try s.query(
                """
                INSERT INTO sluice.dedupe_filters(pipeline, run, header, words) VALUES ($1, $2::bigint, $3::bytea, $4::bigint)
                ON CONFLICT (pipeline) DO UPDATE SET run = excluded.run, header = excluded.header, words = excluded.words
                """,
                [pipeline, String(snapshot.run), byteaHex(snapshot.header), String(snapshot.words.count)])
        }
    }

    public func dedupeLastRun(pipeline: String) async throws -> Int64 {
        try await pool.withSession { s in
            let r = try s.query("SELECT last_run FROM sluice.dedupe_meta WHERE pipeline = $1", [pipeline])
            return r.rows == 0 ? 0 : Int64(r.string(0, 0) ?? "0") ?? 0
        }
    }

    public func dedupeRuns(
        pipeline: String, after cursor: DedupeRunCursor, through: Int64, since: Date, excludingWriter: Int64?, limit: Int
    ) async throws -> [DedupeRunRow] {
        try await pool.withSession { s in
            try PostgresDedupeKeys.fetch(
                s,
                """
                WHERE pipeline = $1 AND (pipeline, run, bucket) > ($1, $2::bigint, $3::int) AND run <= $7::bigint AND writer <> $6::bigint AND seen_at >= $4::float8
                ORDER BY pipeline, run, bucket LIMIT $5::int
                """,
                [
                    pipeline, String(cursor.run), String(min(cursor.bucket, Int(Int32.max))), String(since.timeIntervalSince1970),
                    String(limit), String(excludingWriter ?? -1), String(through),
                ])
        }
    }

    public func seenHashes(pipeline: String, hashes: [DedupeHash], since: Date, runs: ClosedRange<Int64>) async throws -> Set<DedupeHash> {
        guard !hashes.isEmpty else { return [] }
        return try await pool.withSession { s in
            let wanted = DedupeWanted(hashes)
            let r = try s.query(
                """
                SELECT bucket, keys FROM sluice.dedupe_runs
                WHERE pipeline = $1 AND bucket = ANY($2::int[]) AND run BETWEEN $4::bigint AND $5::bigint AND seen_at >= $3::float8
                """,
                [
                    pipeline, "{" + wanted.buckets.map(String.init).joined(separator: ",") + "}", String(since.timeIntervalSince1970),
                    String(runs.lowerBound), String(runs.upperBound),
                ],
                binary: true)
            var found = Set<DedupeHash>()
            found.reserveCapacity(hashes.count)
            for row in 0..<r.rows {
                let bucket = Int(Int32(bigEndian: r.bytes(row, 0).loadUnaligned(as: Int32.self)))
                wanted.check(bucket: bucket, keys: r.bytes(row, 1), into: &found)
            }
            return found
        }
    }

    public func sweepKeys(pipeline: String, before: Date) async throws -> Int {
        try await pool.transaction { s in
            let cutoff = String(before.timeIntervalSince1970)
            let r = try s.query(
                "WITH gone AS (DELETE FROM sluice.dedupe_runs WHERE pipeline = $1 AND seen_at < $2::float8 RETURNING keys) SELECT COALESCE(sum(length(keys)), 0) / 16 FROM gone",
                [pipeline, cutoff])
            let legacy = try s.query("DELETE FROM sluice.dedupe_keys WHERE pipeline = $1 AND seen_at < $2::float8", [pipeline, cutoff])
            return (Int(r.string(0, 0) ?? "0") ?? 0) + legacy.affectedRows
        }
    }
}

/// Rows in PostgreSQL's binary `COPY` format (the sink's header, trailer and integer encoding,
/// ``PostgresCopyEncoder``), written to a buffer sent in pieces.
struct BinaryCopyRows {
    private(set) var bytes = PostgresCopyEncoder.header

    mutating func startRow(fields: Int16) { append(fields) }

    mutating func appendLength(_ count: Int) { append(Int32(count)) }

    mutating func field(_ value: [UInt8]) {
        appendLength(value.count)
        bytes += value
    }

    mutating func field(_ value: UnsafeRawBufferPointer) {
        appendLength(value.count)
        bytes.append(contentsOf: value)
    }

    mutating func field<T: FixedWidthInteger>(_ value: T) {
        appendLength(MemoryLayout<T>.size)
        append(value)
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        PostgresCopyEncoder.append(value, &bytes)
    }

    /// Sends what is buffered.
    mutating func flush(_ send: (UnsafeRawBufferPointer) throws -> Void) throws {
        try bytes.withUnsafeBytes { try send($0) }
        bytes.removeAll(keepingCapacity: true)
    }

    /// Sends the rest and the trailer.
    mutating func finish(_ send: (UnsafeRawBufferPointer) throws -> Void) throws {
        bytes += PostgresCopyEncoder.trailer
        try flush(send)
    }
}
