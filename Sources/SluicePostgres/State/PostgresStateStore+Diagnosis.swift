import Foundation
import SluiceCore

extension PostgresStateStore {
    /// `sluice doctor`'s checks of the shared state at `url`, without migrating it: the server
    /// answers, its clock agrees, the schema version is one this binary knows, and the user may
    /// write the state tables.
    static func diagnose(url: String, limits: DiagnosisLimits) async -> [Diagnosis] {
        let parsed: PostgresURL
        do { parsed = try PostgresURL(url) } catch { return [.failed("state.reachable", "the state URL is not valid", error)] }
        return await PostgresDiagnosis.session(parsed, role: "state", limits: limits) { s in
            guard try PostgresDiagnosis.exists(s, "sluice.schema_migrations") else {
                var absent = try PostgresDiagnosis.mayCreate(s, check: "state.schema", schema: "sluice", what: "the state tables (schema sluice)")
                absent.stateSchema = .absent
                return [absent]
            }
            let r = try s.query("SELECT version FROM sluice.schema_migrations")
            let applied = Set((0..<r.rows).compactMap { r.string($0, 0) })
            let known = PostgresStateMigrations.migrations.map(\.version)
            let unknown = applied.subtracting(known)
            if !unknown.isEmpty {
                return [
                    Diagnosis(
                        "state.schema", .error,
                        "the state has migrations this binary does not know (\(unknown.sorted().joined(separator: ", "))): a newer sluice wrote it",
                        fix: "run the sluice version that wrote it (or a newer one) on every worker", stateSchema: .other)
                ]
            }
            let pending = known.filter { !applied.contains($0) }
            var found = [
                Diagnosis(
                    "state.schema", .ok,
                    pending.isEmpty
                        ? "schema \(known.last ?? "?") (current)"
                        : "\(pending.count) migration(s) apply at the next start (\(pending.joined(separator: ", ")))",
                    stateSchema: pending.isEmpty ? .current : .other)
            ]
            // Every table the store writes, and the sequences that number rows.
            let user = try s.query("SELECT current_user").string(0, 0) ?? "?"
            var lacking: [String] = []
            for table in PostgresStateStore.transferTables where table.name != StateTables.sequencesTable {
                let name = "sluice.\(table.name)"
                guard try PostgresDiagnosis.exists(s, name) else { continue }
                let missing = try PostgresDiagnosis.missingPrivileges(s, table: name, ["SELECT", "INSERT", "UPDATE", "DELETE"])
                if !missing.isEmpty { lacking.append("\(missing.joined(separator: ", ")) on \(name)") }
                if let id = table.idColumn {
                    let r = try s.query("SELECT has_sequence_privilege(pg_get_serial_sequence($1, $2), 'USAGE')", [name, id])
                    if r.string(0, 0) != "t" { lacking.append("USAGE on the sequence of \(name)") }
                }
            }
            if lacking.isEmpty {
                found.append(Diagnosis("state.privileges", .ok, "\(user) may read and write every state table"))
            } else {
                found.append(
                    Diagnosis(
                        "state.privileges", .error, "\(user) lacks \(lacking.joined(separator: "; "))",
                        fix:
                            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sluice TO \(SQLText.identifier(user)); GRANT USAGE ON ALL SEQUENCES IN SCHEMA sluice TO \(SQLText.identifier(user));"
                    ))
            }
            return found
        }
    }
}
