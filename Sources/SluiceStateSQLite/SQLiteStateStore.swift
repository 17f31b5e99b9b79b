import Foundation
import GRDB
import SluiceCore
import Synchronization

/// The embedded ``StateStore``: one SQLite file in WAL mode, through GRDB.
///
/// Writes are serialized by GRDB's writer queue; every ``commit(_:)`` is one transaction.
public final class SQLiteStateStore: StateStore {
    let pool: DatabasePool
    public let path: String
    /// How many checkpoint-history rows to keep per pipeline.
    public let historyLimit: Int
    /// Push-queue backlog per stream, loaded on first use and kept in step by the writer.
    let backlogs = Mutex<[String: PushBacklog]>([:])
    /// A shared `flock` on `<path>-inuse.lock`, held while this store is open: `sluice state
    /// migrate|import` takes it exclusively, so it refuses while another process uses the state
    /// and nothing opens the state while it copies (nil where the directory is read-only).
    let useLock: Int32?

    /// This store (see SQLiteStateStore+Push.swift).
    public var pushQueue: (any PushQueueStore)? { self }
    /// This store (see SQLiteStateStore+Registry.swift).
    public var schemaRegistry: (any SchemaRegistryStore)? { self }

    /// Any location that is not a URL: a file path.
    public static let backend = StateBackend(
        name: "SQLite", features: [.pushQueue, .schemaRegistry],
        handles: { !$0.contains("://") }, open: { try SQLiteStateStore(path: $0) },
        diagnose: { SQLiteStateStore.diagnose(path: $0, limits: $1) })

    /// Opens (creating if needed) the state database at `path` and migrates it.
    public init(path: String, historyLimit: Int = 1000) throws {
        self.path = path
        self.historyLimit = historyLimit
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        useLock = try Self.sharedUseLock(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // SQLite's own default, which some builds (Debian's) change to ON: zeroing every page
            // a deleted row frees writes a replayed dead-letter block twice more (WAL, then the
            // database file). FAST still clears deleted bytes where that costs no extra write;
            // SQLite's VACUUM removes the rest.
            try db.execute(sql: "PRAGMA secure_delete = FAST")
        }
        do {
            pool = try Self.holdingMigrationLock(path) {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try StateMigrations.migrator.migrate(pool)
                return pool
            }
        } catch {
            // A failed init runs no deinit: the lock goes here, or a migration would later
            // count this process as a user of the state.
            if let useLock { close(useLock) }
            throw SluiceError(
                .corruptState,
                "cannot open the state database at \(path): \(error). "
                    + "Check the path and permissions; `state:` in the config chooses another location.", underlying: error)
        }
    }

    deinit {
        if let useLock { close(useLock) }
    }

    /// Takes the shared in-use lock, refusing while a migration or import holds it exclusively.
    static func sharedUseLock(_ path: String) throws -> Int32? {
        // Read-only is enough for flock: a lock file another user created (0644) still locks.
        var fd = open(path + "-inuse.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { fd = open(path + "-inuse.lock", O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        while flock(fd, LOCK_SH | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            close(fd)
            throw SluiceError(
                .conflict,
                "the state database at \(path) is being copied by `sluice state migrate` or `sluice state import`; start again when it is done",
                retryable: false)
        }
        return fd
    }

    /// An exclusive `flock` on `<path>-<writer>.lock` (the writer's name made safe for a file
    /// name), taken without waiting.
    public func lockWriter(_ writer: String) throws -> WriterLock? {
        let safe = String(writer.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let lockPath = path + "-writer-" + safe + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SluiceError(.io, "cannot open the lock file \(lockPath): \(String(cString: strerror(errno)))", location: lockPath)
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            close(fd)
            return nil
        }
        return WriterLock { close(fd) }
    }

    /// Runs `body` (opening and migrating) holding an exclusive `flock` on
    /// `<path>-migration.lock`. Two processes opening a new state database at once (a pipeline
    /// starting while `sluice lifecycle run` reads its commits) failed otherwise: switching the
    /// new file to WAL is refused while another connection has it open ("database is locked",
    /// no busy wait), and each migration has its own transaction after the migrator read which
    /// ones are applied, so both created the first tables ("table registry_schemas already
    /// exists"). A lock of its own, not one on the database file: closing another descriptor of
    /// that file would drop SQLite's POSIX locks.
    static func holdingMigrationLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path + "-migration.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return try body() }  // a read-only directory: nothing to migrate into either
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return try body()
    }

    public func checkpoint(pipeline: String) async throws -> Checkpoint {
        try await pool.read { db in
            var partitions: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT partition, value FROM checkpoints WHERE pipeline = ?", arguments: [pipeline]) {
                partitions[row["partition"]] = row["value"]
            }
            return Checkpoint(partitions)
        }
    }

    public func commit(_ commit: StateCommit) async throws {
        try await writeWithoutTransaction { [historyLimit] db in
            var freed: [String: PushBacklog] = [:]
            try db.inTransaction {
                freed = try Self.apply(commit, db, historyLimit: historyLimit)
                return .commit
            }
            // Still on the writer: backlog counters change in the same order as the queue table.
            if !freed.isEmpty { releaseBacklog(freed) }
        }
    }

    /// `pool.write`, with a full disk reported as a failure worth retrying (see ``diskFull(_:)``).
    func write<T: Sendable>(_ updates: @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.write(updates)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw diskFull(error)
        }
    }

    /// `pool.writeWithoutTransaction`, with a full disk reported as a failure worth retrying.
    func writeWithoutTransaction<T: Sendable>(_ updates: @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.writeWithoutTransaction(updates)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw diskFull(error)
        }
    }

    /// SQLITE_FULL: the transaction rolled back whole, so the same write can be tried again; the
    /// pipeline pauses and retries until space is freed, rather than stopping.
    func diskFull(_ error: DatabaseError) -> SluiceError {
        SluiceError(
            .unavailable,
            "the state database at \(path) cannot grow: the disk is full. Free space on its file system; the write is retried meanwhile",
            location: path, retryable: true, underlying: error)
    }

    /// Writes one commit; returns what stopped counting as push-queue backlog (see ``PushQueuePartition``).
    static func apply(_ commit: StateCommit, _ db: Database, historyLimit: Int) throws -> [String: PushBacklog] {
        var freed: [String: PushBacklog] = [:]
        for (partition, value) in commit.checkpoint {
            guard let stream = PushQueuePartition.stream(of: partition), let through = Int64(value) else { continue }
            freed[stream] = try markConsumed(db, stream: stream, through: through)
        }
        let now = commit.now.timeIntervalSince1970
        for (partition, value) in commit.checkpoint {
            try db.execute(
                sql: """
                    INSERT INTO checkpoints(pipeline, partition, value, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT(pipeline, partition) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """, arguments: [commit.pipeline, partition, value, now])
            try db.execute(
                sql: "INSERT INTO checkpoint_history(pipeline, partition, value, committed_at) VALUES (?, ?, ?, ?)",
                arguments: [commit.pipeline, partition, value, now])
        }
        if !commit.checkpoint.isEmpty {
            try db.execute(
                sql: """
                    DELETE FROM checkpoint_history WHERE pipeline = ? AND id <= (
                        SELECT id FROM checkpoint_history WHERE pipeline = ? ORDER BY id DESC LIMIT 1 OFFSET ?)
                    """, arguments: [commit.pipeline, commit.pipeline, historyLimit])
        }
        // Dead letters a replay delivered go first; then those filed (a letter that failed again
        // is updated where it is).
        var letters = SQLiteDeadLetterBlocks.Edit()
        if let resolved = commit.resolvedDeadLetters, !resolved.isEmpty {
            let (deleted, asked) = try SQLiteDeadLetterBlocks.resolve(db, pipeline: commit.owner, ids: resolved, edit: &letters)
            // Another replay delivered some of them first: this commit's records would be twice.
            if deleted != asked { throw StateCommit.replayConflict(asked - deleted) }
        }
        try SQLiteDeadLetterBlocks.file(db, pipeline: commit.owner, letters: commit.deadLetters, now: now, edit: &letters)
        try letters.save(db)
        try SQLiteDedupeKeys.store(commit, db)
        for intent in commit.fileIntents {
            try db.execute(
                sql: """
                    INSERT INTO file_intents(pipeline, temp_path, final_path, records, bytes, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [commit.pipeline, intent.tempPath, intent.finalPath, intent.records, intent.bytes, now])
        }
        return freed
    }

    public func checkpointHistory(pipeline: String, limit: Int) async throws -> [CheckpointEntry] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT partition, value, committed_at FROM checkpoint_history WHERE pipeline = ? ORDER BY id DESC LIMIT ?
                    """, arguments: [pipeline, limit]
            ).map {
                CheckpointEntry(
                    partition: $0["partition"], value: $0["value"],
                    committedAt: Date(timeIntervalSince1970: $0["committed_at"]))
            }
        }
    }

    public func pendingFileIntents(pipeline: String) async throws -> [StoredFileIntent] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, temp_path, final_path, records, bytes FROM file_intents WHERE pipeline = ? AND resolved = 0 ORDER BY id
                    """, arguments: [pipeline]
            ).map {
                StoredFileIntent(
                    id: $0["id"],
                    intent: FileIntent(
                        tempPath: $0["temp_path"], finalPath: $0["final_path"],
                        records: $0["records"], bytes: $0["bytes"]))
            }
        }
    }

    public func resolveFileIntents(pipeline: String, finalPaths: [String]) async throws {
        guard !finalPaths.isEmpty else { return }
        try await write { db in
            for path in finalPaths {
                try db.execute(
                    sql: "UPDATE file_intents SET resolved = 1 WHERE pipeline = ? AND final_path = ?",
                    arguments: [pipeline, path])
            }
        }
    }

    public func deadLetters(pipeline: String?, limit: Int) async throws -> [StoredDeadLetter] {
        try await deadLetters(matching: DeadLetterFilter(pipeline: pipeline), limit: limit)
    }

    public func deadLetter(id: Int64) async throws -> StoredDeadLetter? {
        try await pool.read { db in try SQLiteDeadLetterBlocks.letter(db, id: id) }
    }

    public func deadLetterCount(pipeline: String?) async throws -> Int {
        try await pool.read { db in try SQLiteDeadLetterBlocks.summary(db, pipeline: pipeline).count }
    }

    public func deadLetterSummary(pipeline: String) async throws -> (count: Int, oldest: Date?) {
        try await pool.read { db in try SQLiteDeadLetterBlocks.summary(db, pipeline: pipeline) }
    }

    /// A row of the table of dead letters before blocks (migration `v9-dead-letter-blocks`).
    static func deadLetter(_ row: Row) -> StoredDeadLetter {
        let raw: Data = row["raw"] ?? Data()
        return StoredDeadLetter(
            id: row["id"], pipeline: row["pipeline"],
            letter: DeadLetter(
                stage: row["stage"], errorKind: row["error_kind"], message: row["message"],
                location: row["location"], raw: [UInt8](raw), attempts: row["attempts"], schema: row["schema"]),
            firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
            lastSeen: Date(timeIntervalSince1970: row["last_seen"]))
    }

    public func startRun(pipeline: String, at: Date) async throws -> Int64 {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO runs(pipeline, started_at, status) VALUES (?, ?, 'running')",
                arguments: [pipeline, at.timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func finishRun(id: Int64, status: RunRecord.Status, totals: RunTotals, message: String?, at: Date) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    UPDATE runs SET ended_at = ?, status = ?, records_in = ?, records_out = ?, dead_lettered = ?,
                        duplicates = ?, message = ? WHERE id = ?
                    """,
                arguments: [
                    at.timeIntervalSince1970, status.rawValue, totals.recordsIn, totals.recordsOut,
                    totals.deadLettered, totals.duplicates, message, id,
                ])
        }
    }

    public func runs(pipeline: String?, limit: Int) async throws -> [RunRecord] {
        try await pool.read { db in
            let rows: [Row] =
                if let pipeline {
                    try Row.fetchAll(db, sql: "SELECT * FROM runs WHERE pipeline = ? ORDER BY id DESC LIMIT ?", arguments: [pipeline, limit])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY id DESC LIMIT ?", arguments: [limit])
                }
            return rows.map { row in
                RunRecord(
                    id: row["id"], pipeline: row["pipeline"],
                    startedAt: Date(timeIntervalSince1970: row["started_at"]),
                    endedAt: (row["ended_at"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    status: RunRecord.Status(rawValue: row["status"]) ?? .failed,
                    recordsIn: row["records_in"] ?? 0, recordsOut: row["records_out"] ?? 0,
                    deadLettered: row["dead_lettered"] ?? 0, duplicates: row["duplicates"] ?? 0,
                    message: row["message"])
            }
        }
    }

    public func reset(pipeline: String) async throws {
        try await write { db in
            // dedupe_meta stays: the seed, and run numbers that never go back.
            for table in ["checkpoints", "checkpoint_history", "dedupe_keys", "dedupe_runs", "dedupe_filters", "dedupe_filter_chunks", "file_intents"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE pipeline = ?", arguments: [pipeline])
            }
        }
    }

    public func claimScheduledRun(pipeline: String, slot: Date, lease: TimeInterval) async throws -> Bool {
        try await write { db in
            let now = Date().timeIntervalSince1970
            // Claims older than a week are history; keep the table small.
            try db.execute(
                sql: "DELETE FROM schedule_claims WHERE pipeline = ? AND slot < ?",
                arguments: [pipeline, slot.timeIntervalSince1970 - 7 * 86_400])
            let busy =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT count(*) FROM schedule_claims WHERE pipeline = ? AND finished = 0 AND renewed_at > ?
                        """, arguments: [pipeline, now - lease]) ?? 0
            guard busy == 0 else { return false }
            try db.execute(
                sql: "INSERT OR IGNORE INTO schedule_claims (pipeline, slot, claimed_at, renewed_at, finished) VALUES (?, ?, ?, ?, 0)",
                arguments: [pipeline, slot.timeIntervalSince1970, now, now])
            return db.changesCount == 1
        }
    }

    public func renewScheduledRun(pipeline: String, slot: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE schedule_claims SET renewed_at = ? WHERE pipeline = ? AND slot = ?",
                arguments: [Date().timeIntervalSince1970, pipeline, slot.timeIntervalSince1970])
        }
    }

    public func finishScheduledRun(pipeline: String, slot: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE schedule_claims SET finished = 1 WHERE pipeline = ? AND slot = ?",
                arguments: [pipeline, slot.timeIntervalSince1970])
        }
    }
}
