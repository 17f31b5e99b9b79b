import GRDB

/// Versioned schema of the state database. Append migrations; never edit a shipped one.
enum StateMigrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE checkpoints (
                        pipeline TEXT NOT NULL, partition TEXT NOT NULL, value TEXT NOT NULL, updated_at REAL NOT NULL,
                        PRIMARY KEY (pipeline, partition));
                    CREATE TABLE checkpoint_history (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, partition TEXT NOT NULL,
                        value TEXT NOT NULL, committed_at REAL NOT NULL);
                    CREATE INDEX checkpoint_history_pipeline ON checkpoint_history(pipeline, id);
                    CREATE TABLE dedupe_keys (
                        pipeline TEXT NOT NULL, key TEXT NOT NULL, seen_at REAL NOT NULL,
                        PRIMARY KEY (pipeline, key)) WITHOUT ROWID;
                    CREATE INDEX dedupe_keys_seen ON dedupe_keys(pipeline, seen_at);
                    CREATE TABLE dead_letters (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, stage TEXT NOT NULL,
                        error_kind TEXT NOT NULL, message TEXT NOT NULL, location TEXT NOT NULL, raw BLOB,
                        attempts INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
                        UNIQUE (pipeline, location));
                    CREATE TABLE file_intents (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, temp_path TEXT NOT NULL,
                        final_path TEXT NOT NULL, records INTEGER NOT NULL, bytes INTEGER NOT NULL,
                        resolved INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
                    CREATE INDEX file_intents_pending ON file_intents(pipeline, resolved);
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, started_at REAL NOT NULL,
                        ended_at REAL, status TEXT NOT NULL, records_in INTEGER, records_out INTEGER,
                        dead_lettered INTEGER, duplicates INTEGER, message TEXT);
                    """)
        }
        migrator.registerMigration("v2-push") { db in
            // AUTOINCREMENT: a sequence is never reused, even after the queue was emptied,
            // because the consuming pipeline's checkpoint is a sequence.
            try db.execute(
                sql: """
                    CREATE TABLE push_queue (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, request_id TEXT NOT NULL,
                        payload BLOB NOT NULL, records INTEGER NOT NULL, bytes INTEGER NOT NULL, received_at REAL NOT NULL);
                    CREATE INDEX push_queue_stream ON push_queue(stream, seq);
                    -- How far each stream's queue is committed downstream. Rows up to it are never read
                    -- again and are deleted lazily, in small chunks, so a large commit never stalls appends.
                    CREATE TABLE push_streams (stream TEXT PRIMARY KEY, consumed_through INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE idempotency_keys (
                        stream TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
                        response BLOB NOT NULL, created_at REAL NOT NULL,
                        PRIMARY KEY (stream, key)) WITHOUT ROWID;
                    CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash TEXT NOT NULL, streams TEXT NOT NULL,
                        created_at REAL NOT NULL, revoked_at REAL);
                    """)
        }
        migrator.registerMigration("v3-registry") { db in
            try db.execute(
                sql: """
                    CREATE TABLE registry_schemas (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, format TEXT NOT NULL, canonical TEXT NOT NULL, text TEXT NOT NULL,
                        UNIQUE (format, canonical));
                    CREATE TABLE registry_versions (
                        subject TEXT NOT NULL, version INTEGER NOT NULL, schema_id INTEGER NOT NULL REFERENCES registry_schemas(id),
                        deleted INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
                        PRIMARY KEY (subject, version));
                    -- subject '' holds the global setting.
                    CREATE TABLE registry_config (subject TEXT PRIMARY KEY, compatibility TEXT NOT NULL);
                    CREATE TABLE schema_drift (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, subject TEXT NOT NULL,
                        from_version INTEGER, to_version INTEGER, kinds TEXT NOT NULL, diff TEXT NOT NULL,
                        action TEXT NOT NULL, at REAL NOT NULL);
                    CREATE INDEX schema_drift_subject ON schema_drift(subject, id);
                    """)
        }
        migrator.registerMigration("v4-schedule") { db in
            try db.execute(
                sql: """
                    CREATE TABLE schedule_claims (pipeline TEXT NOT NULL, slot REAL NOT NULL, claimed_at REAL NOT NULL,
                        renewed_at REAL NOT NULL, finished INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (pipeline, slot));
                    """)
        }
        migrator.registerMigration("v5-registry-mode") { db in
            try db.execute(
                sql: """
                    -- subject '' holds the global mode.
                    CREATE TABLE registry_mode (subject TEXT PRIMARY KEY, mode TEXT NOT NULL);
                    CREATE INDEX registry_versions_schema ON registry_versions(schema_id);
                    """)
        }
        migrator.registerMigration("v6-alerts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE alerts (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, name TEXT NOT NULL, severity TEXT NOT NULL,
                        summary TEXT NOT NULL, value REAL NOT NULL, fired_at REAL NOT NULL, resolved_at REAL);
                    CREATE INDEX alerts_firing ON alerts(pipeline, name, resolved_at);
                    CREATE TABLE hourly_volume (pipeline TEXT NOT NULL, hour INTEGER NOT NULL, records INTEGER NOT NULL,
                        PRIMARY KEY (pipeline, hour));
                    """)
        }
        migrator.registerMigration("v7-dead-letter-schema") { db in
            // The schema of a row a later stage refused (its raw bytes are the row as JSON).
            try db.execute(sql: "ALTER TABLE dead_letters ADD COLUMN schema TEXT")
        }
        migrator.registerMigration("v8-usage") { db in
            // Cost accounting: usage per pipeline and hour.
            try db.execute(
                sql: """
                    CREATE TABLE usage_hourly (
                        pipeline TEXT NOT NULL, hour INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
                        records_in INTEGER NOT NULL, records_out INTEGER NOT NULL, cpu_seconds REAL NOT NULL, requests INTEGER NOT NULL,
                        storage_bytes INTEGER NOT NULL, ingest_dollars REAL NOT NULL, PRIMARY KEY (pipeline, hour));
                    """)
        }
        migrator.registerMigration("v9-dead-letter-blocks") { db in
            // The dead-letter queue in blocks (SQLiteDeadLetterBlocks): a replay deletes a block, not
            // each of its letters.
            try SQLiteDeadLetterBlocks.migrate(db)
        }
        migrator.registerMigration("v10-dedupe-runs") { db in
            // Dedupe keys as hashes in rows of one bucket and one commit (SQLiteDedupeKeys); the
            // text keys of `dedupe_keys` are converted when their pipeline next opens dedupe.
            try db.execute(
                sql: """
                    CREATE TABLE dedupe_meta (pipeline TEXT PRIMARY KEY, seed BLOB NOT NULL, last_run INTEGER NOT NULL);
                    CREATE TABLE dedupe_runs (
                        pipeline TEXT NOT NULL, bucket INTEGER NOT NULL, run INTEGER NOT NULL, seen_at REAL NOT NULL,
                        writer INTEGER NOT NULL, keys BLOB NOT NULL, PRIMARY KEY (pipeline, bucket, run)) WITHOUT ROWID;
                    CREATE INDEX dedupe_runs_run ON dedupe_runs(pipeline, run, bucket, writer, seen_at);
                    """)
        }
        migrator.registerMigration("v11-dedupe-filters") { db in
            // A deduplicator's Bloom filter, saved so a restart need not read every stored key
            // (DedupeFilterSnapshot): its header, and its words in chunks of 8 MiB.
            try db.execute(
                sql: """
                    CREATE TABLE dedupe_filters (pipeline TEXT PRIMARY KEY, run INTEGER NOT NULL, header BLOB NOT NULL, words INTEGER NOT NULL);
                    CREATE TABLE dedupe_filter_chunks (pipeline TEXT NOT NULL, chunk INTEGER NOT NULL, bits BLOB NOT NULL, PRIMARY KEY (pipeline, chunk));
                    """)
        }
        migrator.registerMigration("v12-dedupe-runs-rowid") { db in
            // A table without rowid keeps whole rows in its B-tree, and SQLite compares a key
            // with a row that overflows its page by reading the row whole: every seek read a
            // dozen rows of 16 KB of keys (a lookup of one bucket, an insert). The rows now live
            // in a rowid table; its indexes hold only the small columns.
            try db.execute(
                sql: """
                    CREATE TABLE dedupe_runs_v12 (
                        pipeline TEXT NOT NULL, bucket INTEGER NOT NULL, run INTEGER NOT NULL, seen_at REAL NOT NULL,
                        writer INTEGER NOT NULL, keys BLOB NOT NULL);
                    INSERT INTO dedupe_runs_v12 (pipeline, bucket, run, seen_at, writer, keys)
                        SELECT pipeline, bucket, run, seen_at, writer, keys FROM dedupe_runs ORDER BY pipeline, run, bucket;
                    DROP TABLE dedupe_runs;
                    ALTER TABLE dedupe_runs_v12 RENAME TO dedupe_runs;
                    CREATE UNIQUE INDEX dedupe_runs_bucket ON dedupe_runs(pipeline, bucket, run);
                    CREATE INDEX dedupe_runs_run ON dedupe_runs(pipeline, run, bucket, writer, seen_at);
                    """)
        }
        return migrator
    }
}
