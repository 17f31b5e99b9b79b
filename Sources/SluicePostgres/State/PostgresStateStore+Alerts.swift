import Foundation
import SluiceCore

extension PostgresStateStore {
    public func alertFired(pipeline: String, name: String, severity: String, summary: String, value: Double, at: Date) async throws -> Int64 {
        try await pool.transaction { s in
            // Workers sharing the store may fire the same alert together: the partial unique
            // index lets one insert, and both return its id.
            try s.query(
                """
                INSERT INTO sluice.alerts(pipeline, name, severity, summary, value, fired_at) VALUES ($1, $2, $3, $4, $5::float8, $6::float8)
                ON CONFLICT (pipeline, name) WHERE resolved_at IS NULL DO NOTHING
                """, [pipeline, name, severity, summary, String(value), String(at.timeIntervalSince1970)])
            let r = try s.query("SELECT id FROM sluice.alerts WHERE pipeline = $1 AND name = $2 AND resolved_at IS NULL", [pipeline, name])
            return Int64(r.string(0, 0) ?? "0") ?? 0
        }
    }

    public func alertResolved(id: Int64, at: Date) async throws {
        try await pool.withSession { s in
            try s.query(
                "UPDATE sluice.alerts SET resolved_at = $2::float8 WHERE id = $1::bigint AND resolved_at IS NULL",
                [String(id), String(at.timeIntervalSince1970)])
        }
    }

    public func alerts(pipeline: String?, firingOnly: Bool, limit: Int) async throws -> [AlertRecord] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT id, pipeline, name, severity, summary, value, fired_at, resolved_at FROM sluice.alerts
                WHERE ($1::text IS NULL OR pipeline = $1) AND (NOT $2::boolean OR resolved_at IS NULL) ORDER BY id DESC LIMIT $3::int
                """, [pipeline, firingOnly ? "true" : "false", String(limit)])
            return (0..<r.rows).map { Self.alert(r, $0) }
        }
    }

    public func alert(id: Int64) async throws -> AlertRecord? {
        try await pool.withSession { s in
            let r = try s.query(
                "SELECT id, pipeline, name, severity, summary, value, fired_at, resolved_at FROM sluice.alerts WHERE id = $1::bigint",
                [String(id)])
            return r.rows == 0 ? nil : Self.alert(r, 0)
        }
    }

    public func sweepAlerts(before: Date) async throws -> Int {
        try await pool.withSession { s in
            let r = try s.query(
                "WITH gone AS (DELETE FROM sluice.alerts WHERE resolved_at < $1::float8 RETURNING 1) SELECT count(*) FROM gone",
                [String(before.timeIntervalSince1970)])
            return Int(r.string(0, 0) ?? "0") ?? 0
        }
    }

    public func addHourlyVolume(pipeline: String, hour: Int64, records: Int) async throws {
        try await pool.withSession { s in
            try s.query(
                """
                INSERT INTO sluice.hourly_volume(pipeline, hour, records) VALUES ($1, $2::bigint, $3::bigint)
                ON CONFLICT (pipeline, hour) DO UPDATE SET records = sluice.hourly_volume.records + excluded.records
                """, [pipeline, String(hour), String(records)])
        }
    }

    public func hourlyVolume(pipeline: String, hours: [Int64]) async throws -> [Int64: Int] {
        guard !hours.isEmpty else { return [:] }
        return try await pool.withSession { s in
            let r = try s.query(
                "SELECT hour, records FROM sluice.hourly_volume WHERE pipeline = $1 AND hour = ANY($2::bigint[])",
                [pipeline, "{" + hours.map(String.init).joined(separator: ",") + "}"])
            var volume: [Int64: Int] = [:]
            for i in 0..<r.rows {
                if let h = r.string(i, 0).flatMap(Int64.init) { volume[h] = Int(r.string(i, 1) ?? "0") ?? 0 }
            }
            return volume
        }
    }

    static func alert(_ r: PostgresResult, _ i: Int) -> AlertRecord {
        AlertRecord(
            id: Int64(r.string(i, 0) ?? "0") ?? 0, pipeline: r.string(i, 1) ?? "", name: r.string(i, 2) ?? "", severity: r.string(i, 3) ?? "",
            summary: r.string(i, 4) ?? "", value: Double(r.string(i, 5) ?? "0") ?? 0, firedAt: r.date(i, 6),
            resolvedAt: r.isNull(i, 7) ? nil : r.date(i, 7))
    }
}
