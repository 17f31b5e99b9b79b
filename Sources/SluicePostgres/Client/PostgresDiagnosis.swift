import Foundation
import SluiceCore

/// `sluice doctor` for the PostgreSQL components: the server answers, its clock agrees with
/// ours, and the user has every privilege and server object the component needs. Each
/// problem comes with the statement that fixes it.
enum PostgresDiagnosis {
    /// Connects to `url` and runs `checks` in one session; a connection that fails is one error
    /// finding (`<role>.reachable`), a check that throws is another.
    static func session(
        _ url: PostgresURL, role: String, limits: DiagnosisLimits,
        _ checks: @escaping @Sendable (PostgresSession) throws -> [Diagnosis]
    ) async -> [Diagnosis] {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(url)
        } catch {
            return [
                .failed(
                    "\(role).reachable", "cannot connect to \(url.redacted)", error,
                    fix: "check that the server runs and accepts connections from this machine, and the URL's host, port, user and password")
            ]
        }
        let found: [Diagnosis]
        do {
            found = try await connection.run { s in
                var found = [Diagnosis("\(role).reachable", .ok, "connected to \(url.redacted)")]
                found.append(try clockSkew(s, url: url, limit: limits.clockSkew))
                found += try checks(s)
                return found
            }
        } catch {
            found = [.failed("\(role).check", "checking \(url.redacted) failed", error)]
        }
        await connection.close()
        return found
    }

    /// The server's clock against this machine's, allowing for the round trip.
    static func clockSkew(_ s: PostgresSession, url: PostgresURL, limit: TimeInterval) throws -> Diagnosis {
        let before = Date().timeIntervalSince1970
        let server = try s.query("SELECT extract(epoch FROM clock_timestamp())::float8").string(0, 0).flatMap(Double.init) ?? 0
        let after = Date().timeIntervalSince1970
        let skew = server - (before + after) / 2
        let allowed = limit + (after - before) / 2
        let text = String(format: "clock of PostgreSQL at %@ is %.1f s %@ this machine's", url.redacted, abs(skew), skew >= 0 ? "ahead of" : "behind")
        guard abs(skew) <= allowed else {
            return Diagnosis(
                "clock.skew", .warning, text,
                fix: "synchronize both clocks (NTP, chrony); event-time latency, schedules and TTLs compare the two")
        }
        return Diagnosis("clock.skew", .ok, text)
    }

    /// The privileges on `table` that `user` lacks, of those in `needed`.
    static func missingPrivileges(_ s: PostgresSession, table: String, _ needed: [String]) throws -> [String] {
        try needed.filter { privilege in
            try s.query("SELECT has_table_privilege(current_user, $1::regclass, $2)", [table, privilege]).string(0, 0) != "t"
        }
    }

    /// A finding for privileges on a table: ok, or an error with the GRANT that fixes it.
    static func privileges(_ s: PostgresSession, check: String, table: String, _ needed: [String], why: String) throws -> Diagnosis {
        let user = try s.query("SELECT current_user").string(0, 0) ?? "?"
        let missing = try missingPrivileges(s, table: table, needed)
        guard missing.isEmpty else {
            return Diagnosis(
                check, .error, "\(user) lacks \(missing.joined(separator: ", ")) on \(table) (\(why))",
                fix: "GRANT \(missing.joined(separator: ", ")) ON \(table) TO \(SQLText.identifier(user));")
        }
        return Diagnosis(check, .ok, "\(user) may \(needed.joined(separator: ", ")) on \(table)")
    }

    /// Whether `table` exists (as a table, view or the like).
    static func exists(_ s: PostgresSession, _ table: String) throws -> Bool {
        try s.query("SELECT to_regclass($1) IS NOT NULL", [table]).string(0, 0) == "t"
    }

    /// A finding for creating tables in `schema` (the current schema when nil).
    static func mayCreate(_ s: PostgresSession, check: String, schema: String?, what: String) throws -> Diagnosis {
        let name = try schema ?? (s.query("SELECT current_schema()").string(0, 0) ?? "public")
        let user = try s.query("SELECT current_user").string(0, 0) ?? "?"
        let r = try s.query(
            "SELECT CASE WHEN to_regnamespace($1) IS NULL THEN has_database_privilege(current_database(), 'CREATE') ELSE has_schema_privilege($1, 'CREATE') END",
            [name])
        guard r.string(0, 0) == "t" else {
            return Diagnosis(
                check, .error, "\(user) may not create \(what) in schema \(name)",
                fix: "GRANT CREATE ON SCHEMA \(SQLText.identifier(name)) TO \(SQLText.identifier(user)); (or create it beforehand)")
        }
        return Diagnosis(check, .ok, "\(user) may create \(what) in schema \(name)")
    }
}

extension PostgresSink: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        let o = options
        return await PostgresDiagnosis.session(o.url, role: "sink", limits: context.limits) { s in
            guard !o.isTableTemplate else {
                return [Diagnosis("sink.privileges", .ok, "tables are named after each change's source table; checked as they are written")]
            }
            var found: [Diagnosis] = []
            let table = SQLText.qualified(o.table)
            let needed: [String]
            // As the statements each mode runs need them: ON CONFLICT and the joins on the key
            // read the target (SELECT); `apply` deletes and truncates as the source did.
            switch o.mode {
            case .append: needed = ["INSERT"]
            case .upsert: needed = ["SELECT", "INSERT", "UPDATE"] + (o.softDelete != nil ? ["DELETE"] : [])
            case .apply: needed = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]
            case .replace: needed = ["INSERT"]
            }
            if try PostgresDiagnosis.exists(s, table) {
                found.append(try PostgresDiagnosis.privileges(s, check: "sink.privileges", table: table, needed, why: "\(o.mode.rawValue) writes them"))
                if o.mode == .replace {
                    found.append(try PostgresDiagnosis.mayCreate(s, check: "sink.privileges", schema: o.table.schema, what: "the staging table replace loads"))
                    let owner = try s.query("SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = $1::regclass", [table])
                    if owner.string(0, 0) != "t" {
                        found.append(
                            Diagnosis(
                                "sink.privileges", .error, "replace swaps in a new \(table), which only its owner may do",
                                fix: "ALTER TABLE \(table) OWNER TO <the pipeline's user>; (or use mode upsert)"))
                    }
                }
            } else if o.create {
                found.append(try PostgresDiagnosis.mayCreate(s, check: "sink.privileges", schema: o.table.schema, what: "the table \(table)"))
            } else {
                found.append(
                    Diagnosis(
                        "sink.table", .error, "\(table) does not exist and `create: false`",
                        fix: "create the table, or set `create: true` so the first batch creates it"))
            }
            // The sink's own state row (`sluice_sink_state`), written in every commit.
            let state = SQLText.qualified(SinkStateRow.table(for: o.table))
            if try PostgresDiagnosis.exists(s, state) {
                found.append(
                    try PostgresDiagnosis.privileges(
                        s, check: "sink.privileges", table: state, ["SELECT", "INSERT", "UPDATE"], why: "every commit records its checkpoint there"))
            } else {
                found.append(try PostgresDiagnosis.mayCreate(s, check: "sink.privileges", schema: o.table.schema, what: "the commit table sluice_sink_state"))
            }
            return found
        }
    }
}

extension PostgresSource: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        let o = options
        return await PostgresDiagnosis.session(o.url, role: "source", limits: context.limits) { s in
            if let table = o.table {
                let name = SQLText.qualified(table)
                guard try PostgresDiagnosis.exists(s, name) else {
                    return [Diagnosis("source.table", .error, "\(name) does not exist", fix: "fix `table` (schema.table), or create the table")]
                }
                let grant = try PostgresDiagnosis.privileges(s, check: "source.privileges", table: name, ["SELECT"], why: "the pull reads it")
                guard grant.status == .ok else { return [grant] }
            }
            do {
                _ = try PostgresExtractPlan(options: o, session: s)
            } catch {
                return [.failed("source.query", "the extract query cannot be planned", error, fix: "fix the query or the columns named in `key`/`cursor`")]
            }
            return [Diagnosis("source.query", .ok, "the extract query plans")]
        }
    }
}
