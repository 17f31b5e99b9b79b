import Foundation
import SluiceCore

extension PostgresCDCSource: Diagnosable {
    /// The server's settings for logical decoding, the slot (present, its plugin, `wal_status`,
    /// the WAL it holds back), the publication, and SELECT on the published tables (the
    /// snapshot reads them).
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        let o = options
        // Unknown (the state was not read): a missing slot may then mean lost changes.
        let streamedBefore: Bool? = context.checkpointKnown ? context.checkpoint[partition] != nil : nil
        let limits = context.limits
        return await PostgresDiagnosis.session(o.url, role: "source", limits: limits) { s in
            var found: [Diagnosis] = []
            let level = try s.query("SHOW wal_level").string(0, 0) ?? ""
            if level != "logical" {
                found.append(
                    Diagnosis(
                        "cdc.server", .error, "wal_level is \(level); log-based CDC needs logical",
                        fix: "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"))
            }
            let role = try s.query("SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
            if role.string(0, 1) != "t" {
                let user = role.string(0, 0) ?? "the user"
                found.append(
                    Diagnosis(
                        "cdc.server", .error, "\(user) may not stream replication", fix: "ALTER ROLE \(SQLText.identifier(user)) REPLICATION; (as a superuser)")
                )
            }
            found += try slotFindings(s, streamedBefore: streamedBefore, limits: limits)
            found += try publicationFindings(s)
            if !found.contains(where: { $0.check == "cdc.server" }) {
                found.append(Diagnosis("cdc.server", .ok, "wal_level = logical and the user may stream replication"))
            }
            return found
        }
    }

    func slotFindings(_ s: PostgresSession, streamedBefore: Bool?, limits: DiagnosisLimits) throws -> [Diagnosis] {
        let o = options
        let slot = try s.query(
            """
            SELECT plugin, wal_status, active_pid, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8
            FROM pg_replication_slots WHERE slot_name = $1
            """, [o.slot])
        guard slot.rows == 1 else {
            if streamedBefore == true {
                return [
                    Diagnosis(
                        "cdc.slot", .error, "slot \(o.slot) does not exist, but this pipeline streamed from it: the changes since are lost",
                        fix: "sluice cdc resnapshot PIPELINE -c FILE --yes (drops the checkpoint; the next run snapshots the tables again)")
                ]
            }
            let free = try s.query("SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)")
            if let n = free.string(0, 0).flatMap(Int.init), n < 1 {
                return [
                    Diagnosis(
                        "cdc.slot", .error, "slot \(o.slot) does not exist yet and no replication slot is free",
                        fix: "ALTER SYSTEM SET max_replication_slots = …; then restart (or drop a slot nobody reads)")
                ]
            }
            guard streamedBefore == false else {
                return [
                    Diagnosis(
                        "cdc.slot", .warning,
                        "slot \(o.slot) does not exist: the first run creates it, but if this pipeline streamed before, changes were lost",
                        fix: "if it streamed before: sluice cdc resnapshot PIPELINE -c FILE --yes")
                ]
            }
            return [Diagnosis("cdc.slot", .ok, "slot \(o.slot) does not exist yet; the first run creates it")]
        }
        guard slot.string(0, 0) == "pgoutput" else {
            return [
                Diagnosis(
                    "cdc.slot", .error, "slot \(o.slot) uses the \(slot.string(0, 0) ?? "?") plugin; Sluice reads pgoutput slots",
                    fix: "name another `slot`, or drop this one if nothing else reads it")
            ]
        }
        let status = slot.string(0, 1) ?? "unknown"
        let lag = slot.string(0, 3).flatMap(Int64.init) ?? 0
        let lagText = ByteCountFormatter.string(fromByteCount: lag, countStyle: .binary)
        let reader = slot.string(0, 2).map { "read by process \($0)" } ?? "not read now"
        let summary = "slot \(o.slot): wal_status \(status), \(lagText) of WAL held back, \(reader)"
        switch status {
        case "lost":
            return [
                Diagnosis(
                    "cdc.slot", .error, summary + ": the WAL it needed was removed, changes were missed",
                    fix: "sluice cdc resnapshot PIPELINE -c FILE --yes (the next run snapshots the tables again)")
            ]
        case "unreserved":
            return [
                Diagnosis(
                    "cdc.slot", .warning, summary + ": past max_slot_wal_keep_size, its WAL may be removed at the next checkpoint",
                    fix: "run the pipeline now so it catches up, or raise max_slot_wal_keep_size")
            ]
        default:
            guard lag <= limits.slotLagBytes else {
                return [
                    Diagnosis(
                        "cdc.slot", .warning,
                        summary + " (more than \(ByteCountFormatter.string(fromByteCount: limits.slotLagBytes, countStyle: .binary)))",
                        fix: "run the pipeline (`sluice run`) so it catches up; a retired pipeline's slot: `sluice cdc teardown`")
                ]
            }
            return [Diagnosis("cdc.slot", .ok, summary)]
        }
    }

    func publicationFindings(_ s: PostgresSession) throws -> [Diagnosis] {
        let o = options
        let tables: [String]
        if try s.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [o.publication]).rows == 0 {
            guard !o.tables.isEmpty else {
                return [
                    Diagnosis(
                        "cdc.publication", .error, "publication \(o.publication) does not exist and no `tables` are named to create it",
                        fix: "name the `tables`, or CREATE PUBLICATION \(SQLText.identifier(o.publication)) FOR TABLE …;")
                ]
            }
            tables = o.tables.map(SQLText.qualified)
        } else {
            let r = try s.query(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", [o.publication])
            tables = (0..<r.rows).compactMap { r.string($0, 0) }
        }
        var found: [Diagnosis] = []
        for table in tables {
            guard try PostgresDiagnosis.exists(s, table) else {
                found.append(Diagnosis("cdc.publication", .error, "\(table) does not exist", fix: "create it, or take it out of `tables`"))
                continue
            }
            let grant = try PostgresDiagnosis.privileges(s, check: "cdc.privileges", table: table, ["SELECT"], why: "snapshots read it")
            if grant.status != .ok { found.append(grant) }
        }
        if found.isEmpty {
            found.append(Diagnosis("cdc.publication", .ok, "publication \(o.publication): \(tables.count) table(s), all readable"))
        }
        return found
    }
}
