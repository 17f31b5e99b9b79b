import SluiceCore

/// The explicit operations behind `sluice cdc setup|teardown|resnapshot`: each returns the
/// lines to print (the SQL it ran, what the server still needs) so the user sees exactly what
/// was done to their database.
public enum CDCAdmin {
    /// What the server lacks for log-based CDC, each with the statement that fixes it.
    public static func missingSettings(_ s: PostgresSession) throws -> [String] {
        var missing: [String] = []
        let level = try s.query("SHOW wal_level").string(0, 0) ?? ""
        if level != "logical" {
            missing.append("wal_level is \(level), logical decoding needs logical:  ALTER SYSTEM SET wal_level = logical;  (then restart PostgreSQL)")
        }
        let role = try s.query("SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        if role.string(0, 1) != "t" {
            let user = role.string(0, 0) ?? "the user"
            missing.append("\(user) may not stream replication:  ALTER ROLE \(SQLText.identifier(user)) REPLICATION;  (as a superuser)")
        }
        let slots = try s.query("SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)")
        if let free = slots.string(0, 0).flatMap(Int.init), free < 1 {
            missing.append("no free replication slot (max_replication_slots is used up):  ALTER SYSTEM SET max_replication_slots = …;  (then restart)")
        }
        return missing
    }

    /// Creates the publication and the slot when missing. The first run then snapshots the
    /// tables while streaming (the slot's own exported snapshot is only available to the
    /// connection that creates it).
    public static func setup(_ options: PostgresCDCOptions, session s: PostgresSession) throws -> [String] {
        var done: [String] = []
        if try s.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [options.publication]).rows == 0 {
            guard !options.tables.isEmpty else {
                throw SluiceError(
                    .configuration, "publication \(options.publication) does not exist; name the `tables` to create it for",
                    location: "source.postgres_cdc.tables", retryable: false)
            }
            let sql = "CREATE PUBLICATION \(SQLText.identifier(options.publication)) FOR TABLE \(options.tables.map(SQLText.qualified).joined(separator: ", "))"
            try s.execute(sql)
            done.append(sql + ";")
        } else {
            done.append("-- publication \(options.publication) exists")
        }
        if try s.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [options.slot]).rows == 0 {
            let sql = "SELECT pg_create_logical_replication_slot(\(SQLText.literal(options.slot)), 'pgoutput')"
            try s.query(sql)
            done.append(sql + ";")
        } else {
            done.append("-- slot \(options.slot) exists")
        }
        return done
    }

    /// Drops the slot (refusing one a process is streaming from) and, unless kept, the publication.
    public static func teardown(_ options: PostgresCDCOptions, keepPublication: Bool, session s: PostgresSession) throws -> [String] {
        var done: [String] = []
        let slot = try s.query("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", [options.slot])
        if slot.rows == 1 {
            if let pid = slot.string(0, 0) {
                throw SluiceError(.configuration, "slot \(options.slot) is in use by process \(pid) (a running pipeline?); stop it first", retryable: false)
            }
            let sql = "SELECT pg_drop_replication_slot(\(SQLText.literal(options.slot)))"
            try s.query(sql)
            done.append(sql + ";")
        } else {
            done.append("-- slot \(options.slot) does not exist")
        }
        if !keepPublication {
            let sql = "DROP PUBLICATION IF EXISTS \(SQLText.identifier(options.publication))"
            try s.execute(sql)
            done.append(sql + ";")
        }
        return done
    }

    /// WAL the slot holds back (`pg_current_wal_lsn() - confirmed_flush_lsn`), nil without the slot.
    public static func retainedBytes(slot: String, session s: PostgresSession) throws -> Int64? {
        let r = try s.query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8, wal_status FROM pg_replication_slots WHERE slot_name = $1", [slot])
        guard r.rows == 1 else { return nil }
        return r.string(0, 0).flatMap { Int64($0) }
    }
}
