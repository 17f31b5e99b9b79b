import Foundation
import GRDB
import SluiceCore

extension SQLiteStateStore: SchemaRegistryStore {
    public func registryRegister(
        subject: String, format: SchemaFormat, identity: String, text: String, at: Date,
        decide: @escaping @Sendable ([RegisteredSchema], CompatibilityMode) throws -> Void
    ) async throws -> (id: Int64, version: Int, isNew: Bool) {
        try await write { db in
            let existing = try Int64.fetchOne(
                db, sql: "SELECT id FROM registry_schemas WHERE format = ? AND canonical = ?",
                arguments: [format.rawValue, identity])
            let live = try Row.fetchAll(
                db,
                sql: """
                    SELECT v.version, s.id, s.format, s.text FROM registry_versions v JOIN registry_schemas s ON s.id = v.schema_id
                    WHERE v.subject = ? AND v.deleted = 0 ORDER BY v.version
                    """, arguments: [subject])
            if let existing, let row = live.first(where: { ($0["id"] as Int64) == existing }) {
                return (existing, row["version"], false)
            }
            let mode =
                try String.fetchOne(db, sql: "SELECT compatibility FROM registry_config WHERE subject = ?", arguments: [subject])
                .flatMap(CompatibilityMode.init(rawValue:))
                ?? String.fetchOne(db, sql: "SELECT compatibility FROM registry_config WHERE subject = ''").flatMap(CompatibilityMode.init(rawValue:))
                ?? .default
            try decide(live.map { RegisteredSchema(id: $0["id"], format: SchemaFormat(rawValue: $0["format"]) ?? .avro, text: $0["text"]) }, mode)
            let id: Int64
            if let existing {
                id = existing
            } else {
                try db.execute(
                    sql: "INSERT INTO registry_schemas(format, canonical, text) VALUES (?, ?, ?)",
                    arguments: [format.rawValue, identity, text])
                id = db.lastInsertedRowID
            }
            let next = (try Int.fetchOne(db, sql: "SELECT max(version) FROM registry_versions WHERE subject = ?", arguments: [subject]) ?? 0) + 1
            try db.execute(
                sql: "INSERT INTO registry_versions(subject, version, schema_id, deleted, created_at) VALUES (?, ?, ?, 0, ?)",
                arguments: [subject, next, id, at.timeIntervalSince1970])
            return (id, next, true)
        }
    }

    public func registryExistingSchemaID(format: SchemaFormat, canonical identity: String) async throws -> Int64? {
        try await pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT id FROM registry_schemas WHERE format = ? AND canonical = ?",
                arguments: [format.rawValue, identity])
        }
    }

    public func registrySchema(id: Int64) async throws -> RegisteredSchema? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM registry_schemas WHERE id = ?", arguments: [id]).map {
                RegisteredSchema(id: $0["id"], format: SchemaFormat(rawValue: $0["format"]) ?? .avro, text: $0["text"])
            }
        }
    }

    public func registrySubjects(includeDeleted: Bool) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(
                db,
                sql: includeDeleted
                    ? "SELECT DISTINCT subject FROM registry_versions ORDER BY subject"
                    : "SELECT DISTINCT subject FROM registry_versions WHERE deleted = 0 ORDER BY subject")
        }
    }

    public func registryVersions(subject: String, includeDeleted: Bool) async throws -> [SubjectVersion] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM registry_versions WHERE subject = ? \(includeDeleted ? "" : "AND deleted = 0") ORDER BY version
                    """, arguments: [subject]
            ).map {
                SubjectVersion(
                    subject: $0["subject"], version: $0["version"], schemaID: $0["schema_id"],
                    deleted: ($0["deleted"] as Int) != 0, createdAt: Date(timeIntervalSince1970: $0["created_at"]))
            }
        }
    }

    public func registryVersions(schemaID id: Int64) async throws -> [SubjectVersion] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM registry_versions WHERE schema_id = ? ORDER BY subject, version", arguments: [id]).map {
                SubjectVersion(
                    subject: $0["subject"], version: $0["version"], schemaID: $0["schema_id"],
                    deleted: ($0["deleted"] as Int) != 0, createdAt: Date(timeIntervalSince1970: $0["created_at"]))
            }
        }
    }

    public func registrySoftDelete(subject: String, version: Int?) async throws {
        try await write { db in
            if let version {
                try db.execute(sql: "UPDATE registry_versions SET deleted = 1 WHERE subject = ? AND version = ?", arguments: [subject, version])
            } else {
                try db.execute(sql: "UPDATE registry_versions SET deleted = 1 WHERE subject = ?", arguments: [subject])
            }
        }
    }

    public func registryPurge(subject: String, version: Int?) async throws {
        try await write { db in
            if let version {
                try db.execute(sql: "DELETE FROM registry_versions WHERE subject = ? AND version = ?", arguments: [subject, version])
            } else {
                try db.execute(sql: "DELETE FROM registry_versions WHERE subject = ?", arguments: [subject])
                try db.execute(sql: "DELETE FROM registry_config WHERE subject = ?", arguments: [subject])
                try db.execute(sql: "DELETE FROM registry_mode WHERE subject = ?", arguments: [subject])
            }
        }
    }

    public func registryCompatibility(subject: String?) async throws -> CompatibilityMode? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT compatibility FROM registry_config WHERE subject = ?", arguments: [subject ?? ""])
                .flatMap(CompatibilityMode.init(rawValue:))
        }
    }

    public func registrySetCompatibility(subject: String?, mode: CompatibilityMode?) async throws {
        try await write { db in
            if let mode {
                try db.execute(
                    sql: """
                        INSERT INTO registry_config(subject, compatibility) VALUES (?, ?)
                        ON CONFLICT(subject) DO UPDATE SET compatibility = excluded.compatibility
                        """, arguments: [subject ?? "", mode.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM registry_config WHERE subject = ?", arguments: [subject ?? ""])
            }
        }
    }

    public func registryMode(subject: String?) async throws -> RegistryMode? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT mode FROM registry_mode WHERE subject = ?", arguments: [subject ?? ""]).flatMap(RegistryMode.init(rawValue:))
        }
    }

    public func registrySetMode(subject: String?, mode: RegistryMode?) async throws {
        try await write { db in
            if let mode {
                try db.execute(
                    sql: "INSERT INTO registry_mode(subject, mode) VALUES (?, ?) ON CONFLICT(subject) DO UPDATE SET mode = excluded.mode",
                    arguments: [subject ?? "", mode.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM registry_mode WHERE subject = ?", arguments: [subject ?? ""])
            }
        }
    }

    public func recordDrift(_ e: SchemaDriftEvent) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO schema_drift(pipeline, subject, from_version, to_version, kinds, diff, action, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    e.pipeline, e.subject, e.fromVersion, e.toVersion, e.kinds.joined(separator: ","), e.diff, e.action,
                    e.at.timeIntervalSince1970,
                ])
        }
    }

    public func driftEvents(subject: String?, limit: Int) async throws -> [SchemaDriftEvent] {
        try await pool.read { db in
            let rows =
                if let subject {
                    try Row.fetchAll(db, sql: "SELECT * FROM schema_drift WHERE subject = ? ORDER BY id DESC LIMIT ?", arguments: [subject, limit])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM schema_drift ORDER BY id DESC LIMIT ?", arguments: [limit])
                }
            return rows.map {
                SchemaDriftEvent(
                    id: $0["id"], pipeline: $0["pipeline"], subject: $0["subject"], fromVersion: $0["from_version"],
                    toVersion: $0["to_version"], kinds: ($0["kinds"] as String).split(separator: ",").map(String.init),
                    diff: $0["diff"], action: $0["action"], at: Date(timeIntervalSince1970: $0["at"]))
            }
        }
    }
}
