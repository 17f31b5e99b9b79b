import Foundation
import SluiceCore

extension PostgresStateStore {
    /// `filter` as a WHERE clause whose parameters start at `$first`, and the parameters.
    static func whereClause(_ filter: DeadLetterFilter, first: Int = 1) -> (String, [String?]) {
        var parameters: [String?] = []
        func p(_ value: String?) -> String {
            parameters.append(value)
            return "$\(first + parameters.count - 1)"
        }
        func array(_ values: [String]) -> String {
            "{"
                + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(
                    separator: ",") + "}"
        }
        var clauses = ["id > \(p(String(filter.afterID)))::bigint"]
        if let pipeline = filter.pipeline { clauses.append("pipeline = \(p(pipeline))") }
        if !filter.stages.isEmpty { clauses.append("stage = ANY(\(p(array(filter.stages)))::text[])") }
        if !filter.kinds.isEmpty { clauses.append("error_kind = ANY(\(p(array(filter.kinds)))::text[])") }
        if !filter.ids.isEmpty { clauses.append("id = ANY(\(p("{" + filter.ids.map(String.init).joined(separator: ",") + "}"))::bigint[])") }
        if let since = filter.since { clauses.append("first_seen >= \(p(String(since.timeIntervalSince1970)))::float8") }
        if let until = filter.until { clauses.append("first_seen < \(p(String(until.timeIntervalSince1970)))::float8") }
        return (clauses.joined(separator: " AND "), parameters)
    }

    public func deadLetters(matching filter: DeadLetterFilter, limit: Int) async throws -> [StoredDeadLetter] {
        let (clause, parameters) = Self.whereClause(filter, first: 2)
        return try await pool.withSession { s in
            let r = try s.query(
                "SELECT \(Self.deadLetterColumns) FROM sluice.dead_letters WHERE \(clause) ORDER BY id LIMIT $1::int", [String(limit)] + parameters)
            return (0..<r.rows).map { Self.deadLetter(r, $0) }
        }
    }

    public func deleteDeadLetters(matching filter: DeadLetterFilter) async throws -> Int {
        let (clause, parameters) = Self.whereClause(filter)
        return try await pool.withSession { s in
            let r = try s.query("WITH gone AS (DELETE FROM sluice.dead_letters WHERE \(clause) RETURNING 1) SELECT count(*) FROM gone", parameters)
            return Int(r.string(0, 0) ?? "0") ?? 0
        }
    }

    public func deadLetterStats(matching filter: DeadLetterFilter, now: Date) async throws -> [DeadLetterGroup] {
        let (clause, parameters) = Self.whereClause(filter, first: 2)
        return try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT pipeline, stage, error_kind, count(*), min(first_seen), max(first_seen),
                    count(*) FILTER (WHERE first_seen >= $1::float8 - 3600), count(*) FILTER (WHERE first_seen >= $1::float8 - 86400),
                    count(*) FILTER (WHERE first_seen >= $1::float8 - 604800)
                FROM sluice.dead_letters WHERE \(clause) GROUP BY pipeline, stage, error_kind ORDER BY pipeline, count(*) DESC, stage, error_kind
                """, [String(now.timeIntervalSince1970)] + parameters)
            return (0..<r.rows).map { i in
                let n = { (c: Int) in Int(r.string(i, c) ?? "0") ?? 0 }
                return DeadLetterGroup(
                    pipeline: r.string(i, 0) ?? "", stage: r.string(i, 1) ?? "", kind: r.string(i, 2) ?? "", count: n(3), oldest: r.date(i, 4),
                    newest: r.date(i, 5), lastHour: n(6), lastDay: n(7), lastWeek: n(8))
            }
        }
    }

    public func sweepDeadLetters(pipeline: String, before: Date?, keepNewest: Int?) async throws -> Int {
        try await pool.transaction { s in
            var removed = 0
            if let before {
                let r = try s.query(
                    "WITH gone AS (DELETE FROM sluice.dead_letters WHERE pipeline = $1 AND first_seen < $2::float8 RETURNING 1) SELECT count(*) FROM gone",
                    [pipeline, String(before.timeIntervalSince1970)])
                removed += Int(r.string(0, 0) ?? "0") ?? 0
            }
            if let keepNewest {
                let r = try s.query(
                    """
                    WITH gone AS (DELETE FROM sluice.dead_letters WHERE pipeline = $1 AND id NOT IN
                        (SELECT id FROM sluice.dead_letters WHERE pipeline = $1 ORDER BY id DESC LIMIT $2::int) RETURNING 1)
                    SELECT count(*) FROM gone
                    """, [pipeline, String(keepNewest)])
                removed += Int(r.string(0, 0) ?? "0") ?? 0
            }
            return removed
        }
    }
}
