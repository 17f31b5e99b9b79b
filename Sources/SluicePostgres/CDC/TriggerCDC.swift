import SluiceCore

/// Trigger-based CDC for PostgreSQL: a change table and row triggers that write every insert,
/// update, delete (and TRUNCATE) of the captured tables into it as a change event (`op`, `table`,
/// `key`, `before`, `after` as jsonb, `tx_id`, `changed_at`). A `postgres` source in
/// `mode: changelog` with `processed_column: processed` and `tx_column: tx_id` reads it; a
/// postgres sink in `mode: apply` keeps current-state tables from it.
public enum TriggerCDC {
    /// The statements that install capture for `tables` into `changeTable` (idempotent).
    public static func installSQL(tables: [QualifiedName], keys: [[String]], changeTable: QualifiedName) -> [String] {
        let ct = SQLText.qualified(changeTable)
        let function = SQLText.qualified(QualifiedName(schema: changeTable.schema, name: String((changeTable.name + "_capture").prefix(63))))
        var sql = [
            """
            CREATE TABLE IF NOT EXISTS \(ct) (change_id bigserial PRIMARY KEY, op text NOT NULL, "table" text NOT NULL, key jsonb,
                before jsonb, after jsonb, tx_id bigint NOT NULL DEFAULT txid_current(), changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                processed boolean NOT NULL DEFAULT false)
            """,
            "CREATE INDEX IF NOT EXISTS \(SQLText.identifier(String((changeTable.name + "_unprocessed").prefix(63)))) ON \(ct) (change_id) WHERE processed IS NOT TRUE",
            """
            CREATE OR REPLACE FUNCTION \(function)() RETURNS trigger LANGUAGE plpgsql AS $sluice$
            DECLARE
                r jsonb;
                k jsonb;
            BEGIN
                IF TG_OP = 'TRUNCATE' THEN
                    INSERT INTO \(ct) (op, "table") VALUES ('t', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
                    RETURN NULL;
                END IF;
                r := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
                SELECT jsonb_object_agg(a, r -> a) INTO k FROM unnest(TG_ARGV) a;
                INSERT INTO \(ct) (op, "table", key, before, after) VALUES (
                    CASE TG_OP WHEN 'INSERT' THEN 'c' WHEN 'UPDATE' THEN 'u' ELSE 'd' END,
                    TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, k,
                    CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                    CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
                RETURN NULL;
            END
            $sluice$
            """,
        ]
        for (table, key) in zip(tables, keys) {
            let t = SQLText.qualified(table)
            let arguments = key.map(SQLText.literal).joined(separator: ", ")
            sql.append("DROP TRIGGER IF EXISTS sluice_capture ON \(t)")
            sql.append("CREATE TRIGGER sluice_capture AFTER INSERT OR UPDATE OR DELETE ON \(t) FOR EACH ROW EXECUTE FUNCTION \(function)(\(arguments))")
            sql.append("DROP TRIGGER IF EXISTS sluice_capture_truncate ON \(t)")
            sql.append("CREATE TRIGGER sluice_capture_truncate AFTER TRUNCATE ON \(t) FOR EACH STATEMENT EXECUTE FUNCTION \(function)()")
        }
        return sql
    }

    /// Installs capture (in one transaction) and returns the statements it ran.
    public static func install(tables: [QualifiedName], changeTable: QualifiedName, session s: PostgresSession) throws -> [String] {
        var keys: [[String]] = []
        for table in tables {
            guard try s.query("SELECT to_regclass($1) IS NOT NULL", [SQLText.qualified(table)]).string(0, 0) == "t" else {
                throw SluiceError(.configuration, "table \(table) does not exist", retryable: false)
            }
            let key = try PostgresCatalog.primaryKey(of: table, session: s)
            guard !key.isEmpty else {
                throw SluiceError(.configuration, "table \(table) has no primary key; change events name rows by it", retryable: false)
            }
            keys.append(key)
        }
        let statements = installSQL(tables: tables, keys: keys, changeTable: changeTable)
        try s.execute("BEGIN")
        do {
            for statement in statements { try s.execute(statement) }
            try s.execute("COMMIT")
        } catch {
            try? s.execute("ROLLBACK")
            throw error
        }
        return statements
    }
}
