import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore: PushQueueStore {
    public func append(_ requests: [PushAppend]) async throws -> [PushAppendOutcome] {
        try await writeWithoutTransaction { db in
            var outcomes: [PushAppendOutcome] = []
            outcomes.reserveCapacity(requests.count)
            var added: [String: PushBacklog] = [:]
            try db.inTransaction {
                outcomes.removeAll()
                added.removeAll()
                let findKey = try db.cachedStatement(sql: "SELECT * FROM idempotency_keys WHERE stream = ? AND key = ?")
                let putKey = try db.cachedStatement(
                    sql: """
                        INSERT INTO idempotency_keys(stream, key, fingerprint, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT(stream, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
                            response = excluded.response, created_at = excluded.created_at
                        """)
                let enqueue = try db.cachedStatement(
                    sql: """
                        INSERT INTO push_queue(stream, request_id, payload, records, bytes, received_at) VALUES (?, ?, ?, ?, ?, ?)
                        """)
                for request in requests {
                    if let key = request.idempotency {
                        if let row = try Row.fetchOne(findKey, arguments: [key.stream, key.key]),
                            (row["created_at"] as Double) >= request.idempotencySince.timeIntervalSince1970
                        {
                            outcomes.append(.duplicate(Self.idempotency(row)))
                            continue
                        }
                        try putKey.execute(arguments: [
                            key.stream, key.key, key.fingerprint, key.status, Data(key.response),
                            key.createdAt.timeIntervalSince1970,
                        ])
                    }
                    var sequence: Int64 = 0
                    if request.records > 0 {
                        try enqueue.execute(arguments: [
                            request.stream, request.requestID, Data(request.payload), request.records,
                            request.payload.count, request.receivedAt.timeIntervalSince1970,
                        ])
                        sequence = db.lastInsertedRowID
                        added[request.stream, default: PushBacklog()].add(records: request.records, bytes: request.payload.count)
                    }
                    if !request.deadLetters.isEmpty {
                        var letters = SQLiteDeadLetterBlocks.Edit()
                        try SQLiteDeadLetterBlocks.file(
                            db, pipeline: request.pipeline, letters: request.deadLetters, now: request.receivedAt.timeIntervalSince1970, edit: &letters)
                        try letters.save(db)
                    }
                    outcomes.append(.appended(sequence: sequence))
                }
                return .commit
            }
            // Still on the writer: counters change in the same order as the table.
            backlogs.withLock { map in
                for (stream, delta) in added where map[stream] != nil {
                    map[stream]!.requests += delta.requests
                    map[stream]!.records += delta.records
                    map[stream]!.bytes += delta.bytes
                }
            }
            return outcomes
        }
    }

    static func idempotency(_ row: Row) -> IdempotencyRecord {
        IdempotencyRecord(
            stream: row["stream"], key: row["key"], fingerprint: row["fingerprint"], status: row["status"],
            response: [UInt8]((row["response"] as Data?) ?? Data()),
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    public func idempotencyRecord(stream: String, key: String, since: Date) async throws -> IdempotencyRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM idempotency_keys WHERE stream = ? AND key = ? AND created_at >= ?",
                arguments: [stream, key, since.timeIntervalSince1970]
            ).map(Self.idempotency)
        }
    }

    public func sweepIdempotencyKeys(before: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [before.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func queued(stream: String, after sequence: Int64, limit: Int, maxBytes: Int) async throws -> [QueuedPush] {
        try await pool.read { db in
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT seq, request_id, payload, records, received_at FROM push_queue
                    WHERE stream = ? AND seq > max(?, coalesce((SELECT consumed_through FROM push_streams WHERE stream = ?), 0))
                    ORDER BY seq LIMIT ?
                    """, arguments: [stream, sequence, stream, limit])
            var out: [QueuedPush] = []
            var bytes = 0
            while let row = try cursor.next() {
                let payload = [UInt8]((row["payload"] as Data?) ?? Data())
                out.append(
                    QueuedPush(
                        sequence: row["seq"], requestID: row["request_id"], payload: payload, records: row["records"],
                        receivedAt: Date(timeIntervalSince1970: row["received_at"])))
                bytes += payload.count
                if bytes >= maxBytes { break }
            }
            return out
        }
    }

    public func trimConsumed(stream: String, limit: Int) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: """
                    DELETE FROM push_queue WHERE seq IN (
                        SELECT seq FROM push_queue WHERE stream = ?
                        AND seq <= coalesce((SELECT consumed_through FROM push_streams WHERE stream = ?), 0)
                        ORDER BY seq LIMIT ?)
                    """, arguments: [stream, stream, max(1, limit)])
            return db.changesCount
        }
    }

    /// Moves the stream's consumed watermark to `sequence` (never back) inside the caller's
    /// transaction; returns what stopped counting as backlog.
    static func markConsumed(_ db: Database, stream: String, through sequence: Int64) throws -> PushBacklog {
        let previous = try Int64.fetchOne(db, sql: "SELECT consumed_through FROM push_streams WHERE stream = ?", arguments: [stream]) ?? 0
        guard sequence > previous else { return PushBacklog() }
        try db.execute(
            sql: """
                INSERT INTO push_streams(stream, consumed_through) VALUES (?, ?)
                ON CONFLICT(stream) DO UPDATE SET consumed_through = excluded.consumed_through
                """, arguments: [stream, sequence])
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*) AS n, coalesce(sum(records), 0) AS r, coalesce(sum(bytes), 0) AS b
                    FROM push_queue WHERE stream = ? AND seq > ? AND seq <= ?
                    """, arguments: [stream, previous, sequence])
        else { return PushBacklog() }
        return PushBacklog(requests: row["n"], records: row["r"], bytes: row["b"])
    }

    /// Lowers the in-memory backlog counters (call on the writer, after the deleting transaction).
    func releaseBacklog(_ freed: [String: PushBacklog]) {
        backlogs.withLock { map in
            for (stream, f) in freed where map[stream] != nil && f.requests > 0 {
                map[stream]!.requests -= f.requests
                map[stream]!.records -= f.records
                map[stream]!.bytes -= f.bytes
            }
        }
    }

    public func backlog(stream: String) async throws -> PushBacklog {
        if let known = backlogs.withLock({ $0[stream] }) { return known }
        return try await writeWithoutTransaction { db in
            if let known = backlogs.withLock({ $0[stream] }) { return known }
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*) AS n, coalesce(sum(records), 0) AS r, coalesce(sum(bytes), 0) AS b
                    FROM push_queue WHERE stream = ?
                    AND seq > coalesce((SELECT consumed_through FROM push_streams WHERE stream = ?), 0)
                    """, arguments: [stream, stream])
            let backlog = PushBacklog(requests: row?["n"] ?? 0, records: row?["r"] ?? 0, bytes: row?["b"] ?? 0)
            backlogs.withLock { $0[stream] = backlog }
            return backlog
        }
    }

    public func createAPIKey(_ key: StoredAPIKey) async throws {
        try await write { db in
            try db.execute(
                sql: "INSERT INTO api_keys(id, name, secret_hash, streams, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    key.id, key.name, key.secretHash, key.streams.joined(separator: ","),
                    key.createdAt.timeIntervalSince1970, key.revokedAt?.timeIntervalSince1970,
                ])
        }
    }

    static func apiKey(_ row: Row) -> StoredAPIKey {
        StoredAPIKey(
            id: row["id"], name: row["name"], secretHash: row["secret_hash"],
            streams: (row["streams"] as String).split(separator: ",").map(String.init),
            createdAt: Date(timeIntervalSince1970: row["created_at"]),
            revokedAt: (row["revoked_at"] as Double?).map { Date(timeIntervalSince1970: $0) })
    }

    public func apiKey(id: String) async throws -> StoredAPIKey? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE id = ?", arguments: [id]).map(Self.apiKey) }
    }

    public func apiKeys() async throws -> [StoredAPIKey] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY created_at, id").map(Self.apiKey) }
    }

    public func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", arguments: [at.timeIntervalSince1970, id])
            return db.changesCount > 0
        }
    }
}

extension PushBacklog {
    /// Counts one more queued request of `records` records and `bytes` bytes.
    fileprivate mutating func add(records: Int, bytes: Int) {
        requests += 1
        self.records += records
        self.bytes += bytes
    }
}
