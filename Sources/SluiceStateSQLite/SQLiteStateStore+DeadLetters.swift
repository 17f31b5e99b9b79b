import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore {
    /// `filter` as a WHERE clause and its arguments.
    static func whereClause(_ filter: DeadLetterFilter, paging: Bool = false) -> (String, StatementArguments) {
        var clauses = ["id > ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [filter.afterID]
        if let p = filter.pipeline {
            // Paging: `+pipeline` keeps SQLite off the (pipeline, location) index, which would read
            // every letter of the pipeline and sort them for each page; the rowid order from
            // `id > ?` stops at the limit. Counting and deleting use the index.
            clauses.append(paging ? "+pipeline = ?" : "pipeline = ?")
            arguments.append(p)
        }
        func any(_ column: String, _ values: [some DatabaseValueConvertible]) {
            guard !values.isEmpty else { return }
            clauses.append("\(column) IN (\(values.map { _ in "?" }.joined(separator: ", ")))")
            arguments += values.map { $0 as (any DatabaseValueConvertible)? }
        }
        any("stage", filter.stages)
        any("error_kind", filter.kinds)
        any("id", filter.ids)
        if let since = filter.since {
            clauses.append("first_seen >= ?")
            arguments.append(since.timeIntervalSince1970)
        }
        if let until = filter.until {
            clauses.append("first_seen < ?")
            arguments.append(until.timeIntervalSince1970)
        }
        return (clauses.joined(separator: " AND "), StatementArguments(arguments))
    }

    public func deadLetters(matching filter: DeadLetterFilter, limit: Int) async throws -> [StoredDeadLetter] {
        let (clause, arguments) = Self.whereClause(filter, paging: true)
        return try await pool.read { db in
            // Columns by position: a replay reads letters by the hundred thousand, and looking
            // columns up by name costs more than reading them.
            try Row.fetchAll(
                db,
                sql:
                    "SELECT id, pipeline, stage, error_kind, message, location, raw, attempts, first_seen, last_seen, schema FROM dead_letters WHERE \(clause) ORDER BY id LIMIT ?",
                arguments: arguments + [limit]
            ).map { row in
                let raw: Data = row[6] ?? Data()
                return StoredDeadLetter(
                    id: row[0], pipeline: row[1],
                    letter: DeadLetter(
                        stage: row[2], errorKind: row[3], message: row[4], location: row[5], raw: [UInt8](raw), attempts: row[7], schema: row[10]),
                    firstSeen: Date(timeIntervalSince1970: row[8]), lastSeen: Date(timeIntervalSince1970: row[9]))
            }
        }
    }

    public func deleteDeadLetters(matching filter: DeadLetterFilter) async throws -> Int {
        let (clause, arguments) = Self.whereClause(filter)
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM dead_letters WHERE \(clause)", arguments: arguments)
            return db.changesCount
        }
    }

    public func deadLetterStats(matching filter: DeadLetterFilter, now: Date) async throws -> [DeadLetterGroup] {
        let (clause, arguments) = Self.whereClause(filter)
        let t = now.timeIntervalSince1970
        return try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT pipeline, stage, error_kind, COUNT(*), MIN(first_seen), MAX(first_seen),
                        SUM(first_seen >= ?), SUM(first_seen >= ?), SUM(first_seen >= ?)
                    FROM dead_letters WHERE \(clause) GROUP BY pipeline, stage, error_kind ORDER BY pipeline, COUNT(*) DESC, stage, error_kind
                    """, arguments: [t - 3600, t - 86_400, t - 7 * 86_400] + arguments
            ).map { row in
                DeadLetterGroup(
                    pipeline: row[0], stage: row[1], kind: row[2], count: row[3], oldest: Date(timeIntervalSince1970: row[4]),
                    newest: Date(timeIntervalSince1970: row[5]), lastHour: row[6], lastDay: row[7], lastWeek: row[8])
            }
        }
    }

    public func sweepDeadLetters(pipeline: String, before: Date?, keepNewest: Int?) async throws -> Int {
        try await pool.write { db in
            var removed = 0
            if let before {
                try db.execute(
                    sql: "DELETE FROM dead_letters WHERE pipeline = ? AND first_seen < ?", arguments: [pipeline, before.timeIntervalSince1970])
                removed += db.changesCount
            }
            if let keepNewest {
                try db.execute(
                    sql: """
                        DELETE FROM dead_letters WHERE pipeline = ? AND id NOT IN
                            (SELECT id FROM dead_letters WHERE pipeline = ? ORDER BY id DESC LIMIT ?)
                        """, arguments: [pipeline, pipeline, keepNewest])
                removed += db.changesCount
            }
            return removed
        }
    }
}
