import SluiceCore

/// Versioned schema of the shared state tables (schema `sluice`). Append migrations; never edit
/// a shipped one. Workers starting together migrate under an advisory lock, one at a time.
enum PostgresStateMigrations {
    static let migrations: [(version: String, sql: String)] = [
        (
            "v1",
            """
            CREATE TABLE sluice.checkpoints (
                pipeline text NOT NULL, partition text NOT NULL, value text NOT NULL, updated_at float8 NOT NULL,
                PRIMARY KEY (pipeline, partition));
            CREATE TABLE sluice.checkpoint_history (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, partition text NOT NULL, value text NOT NULL, committed_at float8 NOT NULL);
            CREATE INDEX checkpoint_history_pipeline ON sluice.checkpoint_history (pipeline, id);
            CREATE TABLE sluice.dedupe_keys (
                pipeline text NOT NULL, key text NOT NULL, seen_at float8 NOT NULL, PRIMARY KEY (pipeline, key));
            CREATE INDEX dedupe_keys_seen ON sluice.dedupe_keys (pipeline, seen_at);
            CREATE TABLE sluice.dead_letters (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, stage text NOT NULL, error_kind text NOT NULL, message text NOT NULL,
                location text NOT NULL, raw bytea, attempts int NOT NULL, first_seen float8 NOT NULL, last_seen float8 NOT NULL,
                UNIQUE (pipeline, location));
            CREATE TABLE sluice.file_intents (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, temp_path text NOT NULL, final_path text NOT NULL,
                records bigint NOT NULL, bytes bigint NOT NULL, resolved boolean NOT NULL DEFAULT false, created_at float8 NOT NULL);
            CREATE INDEX file_intents_pending ON sluice.file_intents (pipeline, resolved);
            CREATE TABLE sluice.runs (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, started_at float8 NOT NULL, ended_at float8, status text NOT NULL,
                records_in bigint, records_out bigint, dead_lettered bigint, duplicates bigint, message text);
            CREATE TABLE sluice.schedule_claims (
                pipeline text NOT NULL, slot float8 NOT NULL, claimed_at float8 NOT NULL, renewed_at float8 NOT NULL,
                finished boolean NOT NULL DEFAULT false, PRIMARY KEY (pipeline, slot));
            """
        ),
        (
            "v2-registry",
            """
            CREATE TABLE sluice.registry_schemas (
                id bigserial PRIMARY KEY, format text NOT NULL, canonical text NOT NULL, text text NOT NULL, UNIQUE (format, canonical));
            CREATE TABLE sluice.registry_versions (
                subject text NOT NULL, version int NOT NULL, schema_id bigint NOT NULL REFERENCES sluice.registry_schemas(id),
                deleted boolean NOT NULL DEFAULT false, created_at float8 NOT NULL, PRIMARY KEY (subject, version));
            CREATE TABLE sluice.registry_config (subject text PRIMARY KEY, compatibility text NOT NULL);
            CREATE TABLE sluice.schema_drift (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, subject text NOT NULL, from_version int, to_version int,
                kinds text NOT NULL, diff text NOT NULL, action text NOT NULL, at float8 NOT NULL);
            CREATE INDEX schema_drift_subject ON sluice.schema_drift (subject, id);
            """
        ),
        (
            "v3-registry-mode",
            """
            CREATE TABLE sluice.registry_mode (subject text PRIMARY KEY, mode text NOT NULL);
            CREATE INDEX registry_versions_schema ON sluice.registry_versions (schema_id);
            """
        ),
        (
            "v4-alerts",
            """
            CREATE TABLE sluice.alerts (
                id bigserial PRIMARY KEY, pipeline text NOT NULL, name text NOT NULL, severity text NOT NULL,
                summary text NOT NULL, value float8 NOT NULL, fired_at float8 NOT NULL, resolved_at float8);
            -- One firing alert per pipeline and rule, whichever worker fires it first.
            CREATE UNIQUE INDEX alerts_firing ON sluice.alerts (pipeline, name) WHERE resolved_at IS NULL;
            CREATE TABLE sluice.hourly_volume (pipeline text NOT NULL, hour bigint NOT NULL, records bigint NOT NULL,
                PRIMARY KEY (pipeline, hour));
            """
        ),
        (
            "v5-dead-letter-schema",
            // The schema of a row a later stage refused (its raw bytes are the row as JSON).
            "ALTER TABLE sluice.dead_letters ADD COLUMN schema text"
        ),
        (
            "v6-usage",
            // Cost accounting: usage per pipeline and hour.
            """
            CREATE TABLE sluice.usage_hourly (
                pipeline text NOT NULL, hour bigint NOT NULL, bytes_in bigint NOT NULL, bytes_out bigint NOT NULL,
                records_in bigint NOT NULL, records_out bigint NOT NULL, cpu_seconds float8 NOT NULL, requests bigint NOT NULL,
                storage_bytes bigint NOT NULL, ingest_dollars float8 NOT NULL, PRIMARY KEY (pipeline, hour));
            """
        ),
        (
            "v7-dedupe-runs",
            // Dedupe keys as hashes in rows of one bucket and one commit (PostgresDedupeKeys); the
            // text keys of `dedupe_keys` are converted when their pipeline next opens dedupe.
            // Random hashes do not compress: stored without trying.
            """
            CREATE TABLE sluice.dedupe_meta (pipeline text PRIMARY KEY, seed bytea NOT NULL, last_run bigint NOT NULL);
            CREATE TABLE sluice.dedupe_runs (
                pipeline text NOT NULL, bucket int NOT NULL, run bigint NOT NULL, seen_at float8 NOT NULL, writer bigint NOT NULL,
                keys bytea NOT NULL, PRIMARY KEY (pipeline, bucket, run));
            ALTER TABLE sluice.dedupe_runs ALTER COLUMN keys SET STORAGE EXTERNAL;
            CREATE INDEX dedupe_runs_run ON sluice.dedupe_runs (pipeline, run, bucket, writer, seen_at);
            """
        ),
        (
            "v8-dedupe-filters",
            // A deduplicator's Bloom filter, saved so a restart need not read every stored key
            // (DedupeFilterSnapshot): its header, and its words in chunks of 8 MiB (random bits:
            // stored without trying to compress them).
            """
            CREATE TABLE sluice.dedupe_filters (pipeline text PRIMARY KEY, run bigint NOT NULL, header bytea NOT NULL, words bigint NOT NULL);
            CREATE TABLE sluice.dedupe_filter_chunks (pipeline text NOT NULL, chunk int NOT NULL, bits bytea NOT NULL, PRIMARY KEY (pipeline, chunk));
            ALTER TABLE sluice.dedupe_filter_chunks ALTER COLUMN bits SET STORAGE EXTERNAL;
            """
        ),
    ]

    static func migrate(_ s: PostgresSession) throws {
        try s.execute("BEGIN")
        do {
            try s.execute("SELECT pg_advisory_xact_lock(\(0x736C_7569_6365 + 1))")
            // Only when missing: `CREATE … IF NOT EXISTS` needs CREATE on the database (and on
            // the schema) even when there is nothing to do, which a worker's role may lack.
            if try s.query("SELECT to_regclass('sluice.schema_migrations') IS NULL").string(0, 0) == "t" {
                try s.execute(
                    "CREATE SCHEMA IF NOT EXISTS sluice; CREATE TABLE IF NOT EXISTS sluice.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            }
            let r = try s.query("SELECT version FROM sluice.schema_migrations")
            let applied = Set((0..<r.rows).map { r.string($0, 0)! })
            for m in migrations where !applied.contains(m.version) {
                try s.execute(m.sql)
                try s.query("INSERT INTO sluice.schema_migrations(version) VALUES ($1)", [m.version])
            }
            try s.execute("COMMIT")
        } catch {
            try? s.execute("ROLLBACK")
            throw error
        }
    }
}
