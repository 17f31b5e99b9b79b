import Foundation
import SluiceCore

extension PostgresStateStore: SchemaRegistryStore {
    public func registryRegister(
        subject: String, format: SchemaFormat, identity: String, text: String, at: Date,
        decide: @escaping @Sendable ([RegisteredSchema], CompatibilityMode) throws -> Void
    ) async throws -> (id: Int64, version: Int, isNew: Bool) {
        try await pool.transaction { s in
            // One registration per subject at a time, across every worker sharing this database.
            try s.query("SELECT pg_advisory_xact_lock(hashtext('sluice.registry:' || $1))", [subject])
            let existingResult = try s.query("SELECT id FROM sluice.registry_schemas WHERE format = $1 AND canonical = $2", [format.rawValue, identity])
            let existing = existingResult.rows == 1 ? Int64(existingResult.string(0, 0)!) : nil
            let live = try s.query(
                """
                SELECT v.version, s.id, s.format, s.text FROM sluice.registry_versions v JOIN sluice.registry_schemas s ON s.id = v.schema_id
                WHERE v.subject = $1 AND NOT v.deleted ORDER BY v.version
                """, [subject])
            if let existing, let row = (0..<live.rows).first(where: { Int64(live.string($0, 1)!) == existing }) {
                return (existing, Int(live.string(row, 0)!)!, false)
            }
            let config = try s.query(
                """
                SELECT compatibility FROM sluice.registry_config WHERE subject IN ($1, '') ORDER BY subject = '' LIMIT 1
                """, [subject])
            let mode = config.string(0, 0).flatMap(CompatibilityMode.init(rawValue:)) ?? .default
            try decide(
                (0..<live.rows).map {
                    RegisteredSchema(id: Int64(live.string($0, 1)!)!, format: SchemaFormat(rawValue: live.string($0, 2)!) ?? .avro, text: live.string($0, 3)!)
                }, mode)
            // Another subject may register the same schema at the same moment: the schema row is shared.
            let id =
                try existing
                ?? {
                    try s.query(
                        "INSERT INTO sluice.registry_schemas(format, canonical, text) VALUES ($1, $2, $3) ON CONFLICT (format, canonical) DO NOTHING",
                        [format.rawValue, identity, text])
                    return Int64(
                        try s.query(
                            "SELECT id FROM sluice.registry_schemas WHERE format = $1 AND canonical = $2",
                            [format.rawValue, identity]
                        ).string(0, 0)!)!
                }()
            let next = Int(try s.query("SELECT coalesce(max(version), 0) + 1 FROM sluice.registry_versions WHERE subject = $1", [subject]).string(0, 0)!)!
            try s.query(
                "INSERT INTO sluice.registry_versions(subject, version, schema_id, created_at) VALUES ($1, $2::int, $3::bigint, $4::float8)",
                [subject, String(next), String(id), String(at.timeIntervalSince1970)])
            return (id, next, true)
        }
    }

    public func registryExistingSchemaID(format: SchemaFormat, canonical identity: String) async throws -> Int64? {
        try await pool.withSession { s in
            let r = try s.query("SELECT id FROM sluice.registry_schemas WHERE format = $1 AND canonical = $2", [format.rawValue, identity])
            return r.rows == 1 ? Int64(r.string(0, 0)!) : nil
        }
    }

    public func registrySchema(id: Int64) async throws -> RegisteredSchema? {
        try await pool.withSession { s in
            let r = try s.query("SELECT id, format, text FROM sluice.registry_schemas WHERE id = $1::bigint", [String(id)])
            return r.rows == 1 ? RegisteredSchema(id: id, format: SchemaFormat(rawValue: r.string(0, 1)!) ?? .avro, text: r.string(0, 2)!) : nil
        }
    }

    public func registrySubjects(includeDeleted: Bool) async throws -> [String] {
        try await pool.withSession { s in
            let r = try s.query(
                "SELECT DISTINCT subject FROM sluice.registry_versions WHERE $1::bool OR NOT deleted ORDER BY subject",
                [includeDeleted ? "true" : "false"])
            return (0..<r.rows).map { r.string($0, 0)! }
        }
    }

    public func registryVersions(subject: String, includeDeleted: Bool) async throws -> [SubjectVersion] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT subject, version, schema_id, deleted, created_at FROM sluice.registry_versions
                WHERE subject = $1 AND ($2::bool OR NOT deleted) ORDER BY version
                """, [subject, includeDeleted ? "true" : "false"])
            return (0..<r.rows).map {
                SubjectVersion(
                    subject: r.string($0, 0)!, version: Int(r.string($0, 1)!)!, schemaID: Int64(r.string($0, 2)!)!,
                    deleted: r.string($0, 3) == "t", createdAt: r.date($0, 4))
            }
        }
    }

    public func registryVersions(schemaID id: Int64) async throws -> [SubjectVersion] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT subject, version, schema_id, deleted, created_at FROM sluice.registry_versions
                WHERE schema_id = $1::bigint ORDER BY subject, version
                """, [String(id)])
            return (0..<r.rows).map {
                SubjectVersion(
                    subject: r.string($0, 0)!, version: Int(r.string($0, 1)!)!, schemaID: Int64(r.string($0, 2)!)!,
                    deleted: r.string($0, 3) == "t", createdAt: r.date($0, 4))
            }
        }
    }

    public func registrySoftDelete(subject: String, version: Int?) async throws {
        try await pool.withSession { s in
            try s.query(
                "UPDATE sluice.registry_versions SET deleted = true WHERE subject = $1 AND ($2::int IS NULL OR version = $2::int)",
                [subject, version.map(String.init)])
        }
    }

    public func registryPurge(subject: String, version: Int?) async throws {
        try await pool.transaction { s in
            try s.query(
                "DELETE FROM sluice.registry_versions WHERE subject = $1 AND ($2::int IS NULL OR version = $2::int)",
                [subject, version.map(String.init)])
            if version == nil {
                try s.query("DELETE FROM sluice.registry_config WHERE subject = $1", [subject])
                try s.query("DELETE FROM sluice.registry_mode WHERE subject = $1", [subject])
            }
        }
    }

    public func registryCompatibility(subject: String?) async throws -> CompatibilityMode? {
        try await pool.withSession { s in
            try s.query("SELECT compatibility FROM sluice.registry_config WHERE subject = $1", [subject ?? ""]).string(0, 0)
                .flatMap(CompatibilityMode.init(rawValue:))
        }
    }

    public func registrySetCompatibility(subject: String?, mode: CompatibilityMode?) async throws {
        try await pool.withSession { s in
            if let mode {
                try s.query(
                    """
                    INSERT INTO sluice.registry_config(subject, compatibility) VALUES ($1, $2)
                    ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility
                    """, [subject ?? "", mode.rawValue])
            } else {
                try s.query("DELETE FROM sluice.registry_config WHERE subject = $1", [subject ?? ""])
            }
        }
    }

    public func registryMode(subject: String?) async throws -> RegistryMode? {
        try await pool.withSession { s in
            try s.query("SELECT mode FROM sluice.registry_mode WHERE subject = $1", [subject ?? ""]).string(0, 0).flatMap(RegistryMode.init(rawValue:))
        }
    }

    public func registrySetMode(subject: String?, mode: RegistryMode?) async throws {
        try await pool.withSession { s in
            if let mode {
                try s.query(
                    "INSERT INTO sluice.registry_mode(subject, mode) VALUES ($1, $2) ON CONFLICT (subject) DO UPDATE SET mode = EXCLUDED.mode",
                    [subject ?? "", mode.rawValue])
            } else {
                try s.query("DELETE FROM sluice.registry_mode WHERE subject = $1", [subject ?? ""])
            }
        }
    }

    public func recordDrift(_ e: SchemaDriftEvent) async throws {
        try await pool.withSession { s in
            try s.query(
                """
                INSERT INTO sluice.schema_drift(pipeline, subject, from_version, to_version, kinds, diff, action, at)
                VALUES ($1, $2, $3::int, $4::int, $5, $6, $7, $8::float8)
                """,
                [
                    e.pipeline, e.subject, e.fromVersion.map(String.init), e.toVersion.map(String.init), e.kinds.joined(separator: ","),
                    e.diff, e.action, String(e.at.timeIntervalSince1970),
                ])
        }
    }

    public func driftEvents(subject: String?, limit: Int) async throws -> [SchemaDriftEvent] {
        try await pool.withSession { s in
            let r = try s.query(
                """
                SELECT id, pipeline, subject, from_version, to_version, kinds, diff, action, at FROM sluice.schema_drift
                WHERE ($1::text IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2::int
                """, [subject, String(limit)])
            return (0..<r.rows).map {
                SchemaDriftEvent(
                    id: Int64(r.string($0, 0)!)!, pipeline: r.string($0, 1)!, subject: r.string($0, 2)!,
                    fromVersion: r.string($0, 3).flatMap { Int($0) }, toVersion: r.string($0, 4).flatMap { Int($0) },
                    kinds: r.string($0, 5)!.split(separator: ",").map(String.init), diff: r.string($0, 6)!,
                    action: r.string($0, 7)!, at: r.date($0, 8))
            }
        }
    }
}
