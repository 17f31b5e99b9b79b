import Foundation
import SluiceCore

/// The shared ``StateStore`` on PostgreSQL (`state: postgres://…`): several Sluice processes on
/// several machines share checkpoints, dedupe keys, dead letters, run history, schedule claims
/// and the schema registry. Tables live in the `sluice` schema and are migrated by version
/// (``PostgresStateMigrations``). Every ``commit(_:)`` is one transaction.
public final class PostgresStateStore: StateStore {
    public let pool: PostgresPool
    public let historyLimit: Int

    /// Connects lazily; ``migrate()`` must run once before use (``open(_:)`` does both).
    init(url: PostgresURL, historyLimit: Int = 1000) {
        pool = PostgresPool(url: url)
        self.historyLimit = historyLimit
    }

    /// Opens the store at `url` and brings its tables to the current version.
    public static func open(_ url: String) async throws -> PostgresStateStore {
        let store = PostgresStateStore(url: try PostgresURL(url))
        try await store.pool.withSession { try PostgresStateMigrations.migrate($0) }
        return store
    }

    static let t = "sluice"

    /// `postgres://` and `postgresql://` URLs: state shared by several workers.
    public static let backend = StateBackend(
        name: "PostgreSQL", features: [.schemaRegistry],
        handles: { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") },
        open: { try await PostgresStateStore.open($0) },
        diagnose: { await PostgresStateStore.diagnose(url: $0, limits: $1) })

    public var isShared: Bool { true }
    /// None: the push endpoint's queue lives in a SQLite state store only.
    public var pushQueue: (any PushQueueStore)? { nil }
    public var schemaRegistry: (any SchemaRegistryStore)? { self }

    public func checkpoint(pipeline: String) async throws -> Checkpoint {
        try await pool.withSession { s in
            let r = try s.query("SELECT partition, value FROM sluice.checkpoints WHERE pipeline = $1", [pipeline])
            return Checkpoint(Dictionary(uniqueKeysWithValues: (0..<r.rows).map { (r.string($0, 0)!, r.string($0, 1)!) }))
        }
    }

    public func commit(_ commit: StateCommit) async throws {
        let historyLimit = self.historyLimit
        try await pool.transaction { s in
            let now = String(commit.now.timeIntervalSince1970)
            for (partition, value) in commit.checkpoint {
                try s.query(
                    """
                    INSERT INTO sluice.checkpoints(pipeline, partition, value, updated_at) VALUES ($1, $2, $3, $4::float8)
                    ON CONFLICT (pipeline, partition) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
                    """, [commit.pipeline, partition, value, now])
                try s.query(
                    "INSERT INTO sluice.checkpoint_history(pipeline, partition, value, committed_at) VALUES ($1, $2, $3, $4::float8)",
                    [commit.pipeline, partition, value, now])
            }
            if !commit.checkpoint.isEmpty {
                try s.query(
                    """
                    DELETE FROM sluice.checkpoint_history WHERE pipeline = $1 AND id <= (
                        SELECT id FROM sluice.checkpoint_history WHERE pipeline = $1 ORDER BY id DESC LIMIT 1 OFFSET $2::int)
                    """, [commit.pipeline, String(historyLimit)])
            }
            if let resolved = commit.resolvedDeadLetters, !resolved.isEmpty {
                let r = try s.query(
                    "WITH gone AS (DELETE FROM sluice.dead_letters WHERE pipeline = $1 AND id = ANY($2::bigint[]) RETURNING 1) SELECT count(*) FROM gone",
                    [commit.owner, "{" + resolved.map(String.init).joined(separator: ",") + "}"])
                let deleted = Int(r.string(0, 0) ?? "0") ?? 0
                // Another replay delivered some of them first: this commit's records would be twice.
                if deleted != Set(resolved).count { throw StateCommit.replayConflict(Set(resolved).count - deleted) }
            }
            for l in commit.deadLetters {
                try s.query(
                    Self.insertDeadLetterSQL,
                    [
                        commit.owner, l.stage, l.errorKind, l.message, l.location, byteaHex(l.raw),
                        String(l.attempts), now, l.schema,
                    ])
            }
            try PostgresDedupeKeys.store(commit, s)
            for i in commit.fileIntents {
                try s.query(
                    """
                    INSERT INTO sluice.file_intents(pipeline, temp_path, final_path, records, bytes, created_at)
                    VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::float8)
                    """, [commit.pipeline, i.tempPath, i.finalPath, String(i.records), String(i.bytes), now])
            }
        }
    }

    static let insertDeadLetterSQL = """
        INSERT INTO sluice.dead_letters(pipeline, stage, error_kind, message, location, raw, attempts, first_seen, last_seen, schema)
        VALUES ($1, $2, $3, $4, $5, $6::bytea, $7::int, $8::float8, $8::float8, $9)
        ON CONFLICT (pipeline, location) DO UPDATE SET stage = EXCLUDED.stage, error_kind = EXCLUDED.error_kind,
            message = EXCLUDED.message, raw = EXCLUDED.raw, attempts = sluice.dead_letters.attempts + EXCLUDED.attempts,
            last_seen = EXCLUDED.last_seen, schema = EXCLUDED.schema
        """

    public func checkpointHistory(pipeline: String, limit: Int) async throws -> [CheckpointEntry] {
        try await pool.withSession { s in
            let r = try s.query(
                "SELECT partition, value, committed_at FROM sluice.checkpoint_history WHERE pipeline = $1 ORDER BY id DESC LIMIT $2::int",
                [pipeline, String(limit)])
            return (0..<r.rows).map { CheckpointEntry(partition: r.string($0, 0)!, value: r.string($0, 1)!, committedAt: r.date($0, 2)) }
        }
    }

    public func pendingFileIntents(pipeline: String) async throws -> [StoredFileIntent] {
        try await pool.withSession { s in
            let r = try s.query(
                "SELECT id, temp_path, final_path, records, bytes FROM sluice.file_intents WHERE pipeline = $1 AND NOT resolved ORDER BY id",
                [pipeline])
            return (0..<r.rows).map {
                StoredFileIntent(
                    id: Int64(r.string($0, 0)!)!,
                    intent: FileIntent(
                        tempPath: r.string($0, 1)!, finalPath: r.string($0, 2)!,
                        records: Int(r.string($0, 3)!)!, bytes: Int(r.string($0, 4)!)!))
            }
        }
    }

    public func resolveFileIntents(pipeline: String, finalPaths: [String]) async throws {
        guard !finalPaths.isEmpty else { return }
        try await pool.withSession { s in
            try s.query(
                "UPDATE sluice.file_intents SET resolved = true WHERE pipeline = $1 AND final_path = ANY($2::text[])",
                [pipeline, textArrayLiteral(finalPaths)])
        }
    }

    static let deadLetterColumns = "id, pipeline, stage, error_kind, message, location, raw, attempts, first_seen, last_seen, schema"

    static func deadLetter(_ r: PostgresResult, _ i: Int) -> StoredDeadLetter {
        StoredDeadLetter(
            id: Int64(r.string(i, 0)!)!, pipeline: r.string(i, 1)!,
            letter: DeadLetter(
                stage: r.string(i, 2)!, errorKind: r.string(i, 3)!, message: r.string(i, 4)!, location: r.string(i, 5)!,
                raw: r.byteaText(i, 6), attempts: Int(r.string(i, 7)!)!, schema: r.string(i, 10)),
            firstSeen: r.date(i, 8), lastSeen: r.date(i, 9))
    }

    public func deadLetters(pipeline: String?, limit: Int) async throws -> [StoredDeadLetter] {
        try await pool.withSession { s in
            let r = try s.query(
                "SELECT \(Self.deadLetterColumns) FROM sluice.dead_letters WHERE ($1::text IS NULL OR pipeline = $1) ORDER BY id LIMIT $2::int",
                [pipeline, String(limit)])
            return (0..<r.rows).map { Self.deadLetter(r, $0) }
        }
    }

    public func deadLetter(id: Int64) async throws -> StoredDeadLetter? {
        try await pool.withSession { s in
            let r = try s.query("SELECT \(Self.deadLetterColumns) FROM sluice.dead_letters WHERE id = $1::bigint", [String(id)])
            return r.rows == 1 ? Self.deadLetter(r, 0) : nil
        }
    }

    public func deadLetterCount(pipeline: String?) async throws -> Int {
        try await pool.withSession { s in
            Int(try s.query("SELECT count(*) FROM sluice.dead_letters WHERE ($1::text IS NULL OR pipeline = $1)", [pipeline]).string(0, 0)!)!
        }
    }

    public func deadLetterSummary(pipeline: String) async throws -> (count: Int, oldest: Date?) {
        try await pool.withSession { s in
            let r = try s.query("SELECT count(*), min(first_seen)::float8 FROM sluice.dead_letters WHERE pipeline = $1", [pipeline])
            return (Int(r.string(0, 0) ?? "0") ?? 0, r.string(0, 1).flatMap(Double.init).map { Date(timeIntervalSince1970: $0) })
        }
    }

    public func startRun(pipeline: String, at: Date) async throws -> Int64 {
        try await pool.withSession { s in
            Int64(
                try s.query(
                    "INSERT INTO sluice.runs(pipeline, started_at, status) VALUES ($1, $2::float8, 'running') RETURNING id",
                    [pipeline, String(at.timeIntervalSince1970)]
                ).string(0, 0)!)!
        }
    }

    public func finishRun(id: Int64, status: RunRecord.Status, totals: RunTotals, message: String?, at: Date) async throws {
        try await pool.withSession { s in
            try s.query(
                """
                UPDATE sluice.runs SET ended_at = $2::float8, status = $3, records_in = $4::bigint, records_out = $5::bigint,
                    dead_lettered = $6::bigint, duplicates = $7::bigint, message = $8 WHERE id = $1::bigint
                """,
                [
                    String(id), String(at.timeIntervalSince1970), status.rawValue, String(totals.recordsIn), String(totals.recordsOut),
                    String(totals.deadLettered), String(totals.duplicates), message,
                ])
        }
    }

    public func runs(pipeline: String?, limit: Int) async throws -> [RunRecord] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT id, pipeline, started_at, ended_at, status, records_in, records_out, dead_lettered, duplicates, message
                FROM sluice.runs WHERE ($1::text IS NULL OR pipeline = $1) ORDER BY id DESC LIMIT $2::int
                """, [pipeline, String(limit)])
            return (0..<r.rows).map { i in
                RunRecord(
                    id: Int64(r.string(i, 0)!)!, pipeline: r.string(i, 1)!, startedAt: r.date(i, 2),
                    endedAt: r.isNull(i, 3) ? nil : r.date(i, 3), status: RunRecord.Status(rawValue: r.string(i, 4)!) ?? .failed,
                    recordsIn: Int(r.string(i, 5) ?? "0") ?? 0, recordsOut: Int(r.string(i, 6) ?? "0") ?? 0,
                    deadLettered: Int(r.string(i, 7) ?? "0") ?? 0, duplicates: Int(r.string(i, 8) ?? "0") ?? 0,
                    message: r.string(i, 9))
            }
        }
    }

    public func reset(pipeline: String) async throws {
        try await pool.transaction { s in
            for table in ["checkpoints", "checkpoint_history", "dedupe_keys", "dedupe_runs", "dedupe_filters", "dedupe_filter_chunks", "file_intents"] {
                try s.query("DELETE FROM sluice.\(table) WHERE pipeline = $1", [pipeline])
            }
        }
    }

    public func claimScheduledRun(pipeline: String, slot: Date, lease: TimeInterval) async throws -> Bool {
        try await pool.transaction { s in
            // One claim decision per pipeline at a time, across every worker.
            try s.query("SELECT pg_advisory_xact_lock(hashtext('sluice.schedule:' || $1))", [pipeline])
            let now = Date().timeIntervalSince1970
            try s.query(
                "DELETE FROM sluice.schedule_claims WHERE pipeline = $1 AND slot < $2::float8",
                [pipeline, String(slot.timeIntervalSince1970 - 7 * 86_400)])
            let busy = try s.query(
                "SELECT count(*) FROM sluice.schedule_claims WHERE pipeline = $1 AND NOT finished AND renewed_at > $2::float8",
                [pipeline, String(now - lease)]
            ).string(0, 0)
            guard busy == "0" else { return false }
            return try s.query(
                """
                INSERT INTO sluice.schedule_claims(pipeline, slot, claimed_at, renewed_at) VALUES ($1, $2::float8, $3::float8, $3::float8)
                ON CONFLICT DO NOTHING
                """, [pipeline, String(slot.timeIntervalSince1970), String(now)]
            ).affectedRows == 1
        }
    }

    public func renewScheduledRun(pipeline: String, slot: Date) async throws {
        try await pool.withSession { s in
            try s.query(
                "UPDATE sluice.schedule_claims SET renewed_at = $3::float8 WHERE pipeline = $1 AND slot = $2::float8",
                [pipeline, String(slot.timeIntervalSince1970), String(Date().timeIntervalSince1970)])
        }
    }

    public func finishScheduledRun(pipeline: String, slot: Date) async throws {
        try await pool.withSession { s in
            try s.query(
                "UPDATE sluice.schedule_claims SET finished = true WHERE pipeline = $1 AND slot = $2::float8",
                [pipeline, String(slot.timeIntervalSince1970)])
        }
    }
}

extension PostgresResult {
    /// A `float8` epoch-seconds column as a date.
    func date(_ row: Int, _ column: Int) -> Date {
        Date(timeIntervalSince1970: Double(string(row, column) ?? "0") ?? 0)
    }

    /// A bytea column in text format (`\x…`) as bytes.
    func byteaText(_ row: Int, _ column: Int) -> [UInt8] {
        guard let text = string(row, column), text.hasPrefix("\\x") else { return [] }
        let hex = Array(text.utf8.dropFirst(2))
        func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
        return stride(from: 0, to: hex.count - 1, by: 2).map { nibble(hex[$0]) << 4 | nibble(hex[$0 + 1]) }
    }
}
