import Foundation

/// A schema as stored: its global id, its format and its text as registered.
public struct RegisteredSchema: Sendable, Hashable {
    public var id: Int64
    public var format: SchemaFormat
    public var text: String

    public init(id: Int64, format: SchemaFormat, text: String) {
        self.id = id
        self.format = format
        self.text = text
    }
}

/// One version of a subject.
public struct SubjectVersion: Sendable, Hashable {
    public var subject: String
    public var version: Int
    public var schemaID: Int64
    public var deleted: Bool
    public var createdAt: Date

    public init(subject: String, version: Int, schemaID: Int64, deleted: Bool, createdAt: Date) {
        self.subject = subject
        self.version = version
        self.schemaID = schemaID
        self.deleted = deleted
        self.createdAt = createdAt
    }
}

/// A schema change a pipeline noticed, and what its policy did about it.
public struct SchemaDriftEvent: Sendable, Hashable {
    public var id: Int64
    public var pipeline: String
    public var subject: String
    public var fromVersion: Int?
    public var toVersion: Int?
    /// `added_column`, `removed_column`, `type_change`, `nullability_change`.
    public var kinds: [String]
    /// The diff, one change per line (`+ name: type`, `- name: type`, `~ name: from -> to`).
    public var diff: String
    /// `registered`, `dead_lettered`, `discarded_rows`, `discarded_values`, `refused`.
    public var action: String
    public var at: Date

    public init(
        id: Int64 = 0, pipeline: String, subject: String, fromVersion: Int?, toVersion: Int?, kinds: [String],
        diff: String, action: String, at: Date = Date()
    ) {
        self.id = id
        self.pipeline = pipeline
        self.subject = subject
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.kinds = kinds
        self.diff = diff
        self.action = action
        self.at = at
    }
}

/// Storage of the schema registry (DESIGN.md §4): schemas by global id, subjects and their
/// versions, compatibility settings and drift events. ``SchemaRegistry`` holds the rules.
public protocol SchemaRegistryStore: Sendable {
    /// Registers a schema under `subject` in one transaction: if it is already a live version,
    /// returns that; otherwise calls `decide` with the subject's live versions (oldest first) and
    /// its effective compatibility mode (`decide` throws to refuse), then stores the schema (one
    /// global id per identity) and the next version. Atomic, so concurrent registrations (in this
    /// process or another) cannot both pass the check against the same latest version.
    func registryRegister(
        subject: String, format: SchemaFormat, identity: String, text: String, at: Date,
        decide: @escaping @Sendable ([RegisteredSchema], CompatibilityMode) throws -> Void
    ) async throws -> (id: Int64, version: Int, isNew: Bool)
    /// The id of a schema with this identity, if any.
    func registryExistingSchemaID(format: SchemaFormat, canonical identity: String) async throws -> Int64?
    func registrySchema(id: Int64) async throws -> RegisteredSchema?
    func registrySubjects(includeDeleted: Bool) async throws -> [String]
    /// Versions of a subject, oldest first.
    func registryVersions(subject: String, includeDeleted: Bool) async throws -> [SubjectVersion]
    /// Every subject version (soft-deleted ones included) that refers to schema `id`, by subject then version.
    func registryVersions(schemaID id: Int64) async throws -> [SubjectVersion]
    /// Marks versions deleted (all of the subject's when `version` is nil).
    func registrySoftDelete(subject: String, version: Int?) async throws
    /// Removes versions for good (all of the subject's when `version` is nil).
    func registryPurge(subject: String, version: Int?) async throws
    /// The compatibility mode of a subject, or the global one for nil; nil when not set.
    func registryCompatibility(subject: String?) async throws -> CompatibilityMode?
    /// Sets (or, with nil, clears) the compatibility mode of a subject, or the global one.
    func registrySetCompatibility(subject: String?, mode: CompatibilityMode?) async throws
    /// The mode of a subject, or the global one for nil; nil when not set.
    func registryMode(subject: String?) async throws -> RegistryMode?
    /// Sets (or, with nil, clears) the mode of a subject, or the global one.
    func registrySetMode(subject: String?, mode: RegistryMode?) async throws

    func recordDrift(_ event: SchemaDriftEvent) async throws
    /// Drift events, newest first, of one subject or all.
    func driftEvents(subject: String?, limit: Int) async throws -> [SchemaDriftEvent]
}
