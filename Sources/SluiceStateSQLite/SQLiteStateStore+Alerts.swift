import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore {
    public func alertFired(pipeline: String, name: String, severity: String, summary: String, value: Double, at: Date) async throws -> Int64 {
        try await write { db in
            if let id = try Int64.fetchOne(
                db, sql: "SELECT id FROM alerts WHERE pipeline = ? AND name = ? AND resolved_at IS NULL", arguments: [pipeline, name])
            {
                return id
            }
            try db.execute(
                sql: "INSERT INTO alerts(pipeline, name, severity, summary, value, fired_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [pipeline, name, severity, summary, value, at.timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func alertResolved(id: Int64, at: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL", arguments: [at.timeIntervalSince1970, id])
        }
    }

    public func alerts(pipeline: String?, firingOnly: Bool, limit: Int) async throws -> [AlertRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM alerts WHERE (? IS NULL OR pipeline = ?) AND (? = 0 OR resolved_at IS NULL)
                    ORDER BY id DESC LIMIT ?
                    """, arguments: [pipeline, pipeline, firingOnly ? 1 : 0, limit]
            ).map(Self.alert)
        }
    }

    public func alert(id: Int64) async throws -> AlertRecord? {
        try await pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM alerts WHERE id = ?", arguments: [id]).map(Self.alert) }
    }

    public func sweepAlerts(before: Date) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM alerts WHERE resolved_at < ?", arguments: [before.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func addHourlyVolume(pipeline: String, hour: Int64, records: Int) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO hourly_volume(pipeline, hour, records) VALUES (?, ?, ?)
                    ON CONFLICT (pipeline, hour) DO UPDATE SET records = records + excluded.records
                    """, arguments: [pipeline, hour, records])
        }
    }

    public func hourlyVolume(pipeline: String, hours: [Int64]) async throws -> [Int64: Int] {
        guard !hours.isEmpty else { return [:] }
        return try await pool.read { db in
            let marks = hours.map { _ in "?" }.joined(separator: ", ")
            var volume: [Int64: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT hour, records FROM hourly_volume WHERE pipeline = ? AND hour IN (\(marks))",
                arguments: StatementArguments([pipeline] + hours.map { $0 as any DatabaseValueConvertible }))
            {
                volume[row[0]] = row[1]
            }
            return volume
        }
    }

    static func alert(_ row: Row) -> AlertRecord {
        let resolved: Double? = row["resolved_at"]
        return AlertRecord(
            id: row["id"], pipeline: row["pipeline"], name: row["name"], severity: row["severity"], summary: row["summary"],
            value: row["value"], firedAt: Date(timeIntervalSince1970: row["fired_at"]),
            resolvedAt: resolved.map { Date(timeIntervalSince1970: $0) })
    }
}
