import Foundation

/// A registry error with Confluent Schema Registry's error code and HTTP status.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public var errorCode: Int
    public var message: String

    public init(_ errorCode: Int, _ message: String) {
        self.errorCode = errorCode
        self.message = message
    }

    /// The HTTP status: the first three digits of the error code (40401 → 404), or the code itself (409).
    public var httpStatus: Int { errorCode >= 1000 ? errorCode / 100 : errorCode }
    public var description: String { "\(message) (error \(errorCode))" }

    static func subjectNotFound(_ s: String) -> RegistryError { RegistryError(40401, "Subject '\(s)' not found.") }
    static func versionNotFound(_ v: Int) -> RegistryError { RegistryError(40402, "Version \(v) not found.") }
    static let schemaNotFound = RegistryError(40403, "Schema not found")
    static func schemaIDNotFound(_ id: Int64) -> RegistryError { RegistryError(40403, "Schema \(id) not found") }
    static func readOnly(_ subject: String) -> RegistryError { RegistryError(42205, "Subject '\(subject)' is in read-only mode") }
    static func invalidMode(_ m: String) -> RegistryError {
        RegistryError(42204, "Invalid mode '\(m)'. Valid values are \(RegistryMode.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    static func invalidSchema(_ why: String) -> RegistryError { RegistryError(42201, "Invalid schema: \(why)") }
    static func invalidVersion(_ v: String) -> RegistryError {
        RegistryError(42202, "The specified version '\(v)' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")
    }
    public static func modeNotConfigured(_ s: String) -> RegistryError {
        RegistryError(40409, "Subject '\(s)' does not have subject-level mode configured")
    }
    static func invalidCompatibility(_ m: String) -> RegistryError {
        RegistryError(42203, "Invalid compatibility level '\(m)'. Valid values are \(CompatibilityMode.allCases.map(\.rawValue).joined(separator: ", "))")
    }
}

/// The schema registry: subjects with versioned schemas, global schema ids and compatibility
/// modes, with Confluent Schema Registry's semantics. Serves the HTTP API and every pipeline's
/// drift detection. A registration checks compatibility and stores the version in one store
/// transaction, so concurrent registrations (from any process) cannot both pass the check
/// against the same latest version.
public actor SchemaRegistry {
    public let store: any SchemaRegistryStore

    public init(store: any SchemaRegistryStore) { self.store = store }

    // MARK: Reading

    public func subjects(includeDeleted: Bool = false) async throws -> [String] {
        try await store.registrySubjects(includeDeleted: includeDeleted)
    }

    /// Live versions of a subject (40401 when none).
    public func versions(subject: String, includeDeleted: Bool = false) async throws -> [SubjectVersion] {
        let all = try await store.registryVersions(subject: subject, includeDeleted: includeDeleted)
        guard !all.isEmpty else { throw RegistryError.subjectNotFound(subject) }
        return all
    }

    /// Parses a version reference: a number, `latest` or `-1`.
    public static func versionNumber(_ text: String) throws -> Int? {
        if text == "latest" || text == "-1" { return nil }
        guard let v = Int(text), v >= 1, v <= Int(Int32.max) else { throw RegistryError.invalidVersion(text) }
        return v
    }

    /// One version (`nil` = latest) and its schema.
    public func version(subject: String, _ number: Int?, includeDeleted: Bool = false) async throws -> (SubjectVersion, RegisteredSchema) {
        let all = try await versions(subject: subject, includeDeleted: includeDeleted)
        let live = includeDeleted ? all : all.filter { !$0.deleted }
        guard !live.isEmpty else { throw RegistryError.subjectNotFound(subject) }
        let v: SubjectVersion
        if let number {
            guard let found = live.first(where: { $0.version == number }) else { throw RegistryError.versionNotFound(number) }
            v = found
        } else {
            v = live.last!
        }
        guard let schema = try await store.registrySchema(id: v.schemaID) else { throw RegistryError.schemaNotFound }
        return (v, schema)
    }

    /// A schema by its global id: 40403 when no subject version refers to it any more (soft-deleted
    /// versions still do; a permanent delete of the last one retires the id, as in Confluent's registry).
    public func schema(id: Int64) async throws -> RegisteredSchema {
        guard let s = try await store.registrySchema(id: id), !(try await store.registryVersions(schemaID: id).isEmpty) else {
            throw RegistryError.schemaIDNotFound(id)
        }
        return s
    }

    /// The subject versions that refer to schema `id` (soft-deleted ones with `includeDeleted`),
    /// optionally of one subject; 40403 when no version at all refers to it.
    public func versions(schemaID id: Int64, subject: String? = nil, includeDeleted: Bool = false) async throws -> [SubjectVersion] {
        let all = try await store.registryVersions(schemaID: id)
        guard !all.isEmpty else { throw RegistryError.schemaIDNotFound(id) }
        return all.filter { (includeDeleted || !$0.deleted) && (subject == nil || $0.subject == subject) }
    }

    /// The latest live version of `subject` as a Sluice schema, if the subject exists and is in that format.
    public func latestRecordSchema(subject: String) async throws -> (version: Int, schema: Schema)? {
        let live = try await store.registryVersions(subject: subject, includeDeleted: false)
        guard let last = live.last, let stored = try await store.registrySchema(id: last.schemaID), stored.format == .sluice,
            case let .sluice(schema) = try ParsedSchema.parse(stored.text, format: .sluice)
        else { return nil }
        return (last.version, schema)
    }

    // MARK: Compatibility settings

    /// The mode that applies to `subject` (its own, else the global one, else BACKWARD).
    public func effectiveCompatibility(subject: String?) async throws -> CompatibilityMode {
        if let subject, let m = try await store.registryCompatibility(subject: subject) { return m }
        return try await store.registryCompatibility(subject: nil) ?? .default
    }

    public func compatibility(subject: String?) async throws -> CompatibilityMode? {
        try await store.registryCompatibility(subject: subject)
    }

    public func setCompatibility(_ text: String, subject: String?) async throws -> CompatibilityMode {
        guard let mode = CompatibilityMode(rawValue: text.uppercased()) else { throw RegistryError.invalidCompatibility(text) }
        try await store.registrySetCompatibility(subject: subject, mode: mode)
        return mode
    }

    public func deleteCompatibility(subject: String) async throws -> CompatibilityMode {
        let previous = try await effectiveCompatibility(subject: subject)
        try await store.registrySetCompatibility(subject: subject, mode: nil)
        return previous
    }

    // MARK: Modes

    /// The mode that applies to `subject` (its own, else the global one, else READWRITE).
    public func effectiveMode(subject: String?) async throws -> RegistryMode {
        if let subject, let m = try await store.registryMode(subject: subject) { return m }
        return try await store.registryMode(subject: nil) ?? .default
    }

    public func mode(subject: String?) async throws -> RegistryMode? {
        try await store.registryMode(subject: subject)
    }

    /// Sets the mode of `subject` (nil: the global one). IMPORT is refused: registering schemas
    /// under ids chosen by the client is not supported.
    public func setMode(_ text: String, subject: String?) async throws -> RegistryMode {
        if text.uppercased() == "IMPORT" {
            throw RegistryError(
                42205,
                "IMPORT mode is not supported by this registry (schemas cannot be registered under given ids); use READWRITE, READONLY or READONLY_OVERRIDE")
        }
        guard let mode = RegistryMode(rawValue: text.uppercased()) else { throw RegistryError.invalidMode(text) }
        try await store.registrySetMode(subject: subject, mode: mode)
        return mode
    }

    /// Clears the mode of `subject` and returns it (40409 when it had none).
    public func deleteMode(subject: String) async throws -> RegistryMode {
        guard let previous = try await store.registryMode(subject: subject) else { throw RegistryError.modeNotConfigured(subject) }
        try await store.registrySetMode(subject: subject, mode: nil)
        return previous
    }

    /// Throws 42205 unless `subject` accepts changes.
    func requireWritable(_ subject: String) async throws {
        guard try await effectiveMode(subject: subject).allowsWrites else { throw RegistryError.readOnly(subject) }
    }

    // MARK: Registering

    static func parse(_ text: String, format: SchemaFormat) throws -> ParsedSchema {
        do { return try ParsedSchema.parse(text, format: format) } catch let e as InvalidSchema { throw RegistryError.invalidSchema(e.message) }
    }

    /// Problems registering `parsed` under `subject` would have with its live versions.
    func problems(_ parsed: ParsedSchema, subject: String, against live: [SubjectVersion], widenToString: Bool = false) async throws -> [String] {
        let mode = try await effectiveCompatibility(subject: subject)
        var earlier: [ParsedSchema] = []
        for v in live {
            guard let s = try await store.registrySchema(id: v.schemaID) else { continue }
            earlier.append(try Self.parse(s.text, format: s.format))
        }
        return parsed.compatibilityProblems(with: earlier, mode: mode, widenToString: widenToString)
    }

    /// Registers a schema under `subject`: returns its global id and version. The same schema
    /// registered again returns the existing version; an incompatible one is refused (409).
    /// The check and the insert are one store transaction.
    public func register(
        subject: String, text: String, format: SchemaFormat, checkCompatibility: Bool = true,
        widenToString: Bool = false, at: Date = Date()
    ) async throws -> (id: Int64, version: Int, isNew: Bool) {
        guard !subject.isEmpty, subject.utf8.count <= 255 else { throw RegistryError(42201, "Invalid subject name") }
        let parsed = try Self.parse(text, format: format)
        // A schema already live under the subject is answered in any mode (nothing changes);
        // a new version needs a writable subject (42205 otherwise).
        let writable = try await effectiveMode(subject: subject).allowsWrites
        return try await store.registryRegister(subject: subject, format: format, identity: try Self.identity(text, parsed), text: text, at: at) { live, mode in
            guard writable else { throw RegistryError.readOnly(subject) }
            guard checkCompatibility else { return }
            let earlier = try live.map { try Self.parse($0.text, format: $0.format) }
            let problems = parsed.compatibilityProblems(with: earlier, mode: mode, widenToString: widenToString)
            if !problems.isEmpty {
                throw RegistryError(
                    409,
                    "Schema being registered is incompatible with an earlier schema for subject \"\(subject)\" (\(mode.rawValue)): "
                        + problems.joined(separator: "; "))
            }
        }
    }

    /// What makes two schemas the same schema (one global id): the whole text as normalized JSON
    /// (keys sorted, whitespace dropped), so no keyword is lost; Sluice schemas by their fields.
    static func identity(_ text: String, _ parsed: ParsedSchema) throws -> String {
        if case let .sluice(schema) = parsed {
            // Column order is not part of a record schema's identity (files list columns in any order).
            return SluiceSchemaText.render(Schema(schema.fields.sorted { $0.name < $1.name }))
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else {
            throw RegistryError.invalidSchema("the schema is not valid JSON")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Finds the version of `subject` holding this schema (40401 no subject, 40403 not registered there).
    public func lookup(subject: String, text: String, format: SchemaFormat) async throws -> (SubjectVersion, RegisteredSchema) {
        let parsed = try Self.parse(text, format: format)
        let live = try await versions(subject: subject).filter { !$0.deleted }
        guard !live.isEmpty else { throw RegistryError.subjectNotFound(subject) }
        guard let id = try await store.registryExistingSchemaID(format: format, canonical: try Self.identity(text, parsed)),
            let v = live.last(where: { $0.schemaID == id }), let s = try await store.registrySchema(id: id)
        else {
            throw RegistryError.schemaNotFound
        }
        return (v, s)
    }

    /// Whether `text` could be registered after version `number` (nil = latest) under the subject's mode.
    public func checkCompatibility(subject: String, version number: Int?, text: String, format: SchemaFormat) async throws -> [String] {
        let parsed = try Self.parse(text, format: format)
        let live = try await store.registryVersions(subject: subject, includeDeleted: false)
        if live.isEmpty {
            // As Confluent: anything is compatible with a subject that has no versions yet (for `latest`).
            if number == nil { return [] }
            throw RegistryError.subjectNotFound(subject)
        }
        let upTo: [SubjectVersion]
        if let number {
            // A given version is checked alone, whatever the mode.
            guard let v = live.first(where: { $0.version == number }) else { throw RegistryError.versionNotFound(number) }
            return try await problems(parsed, subject: subject, against: [v])
        } else {
            upTo = live
        }
        return try await problems(parsed, subject: subject, against: upTo)
    }

    // MARK: Deleting

    /// Deletes a subject: soft (versions hidden, ids kept) or, after that, permanent.
    public func deleteSubject(_ subject: String, permanent: Bool) async throws -> [Int] {
        let all = try await versions(subject: subject, includeDeleted: true)
        try await requireWritable(subject)
        let live = all.filter { !$0.deleted }
        if permanent {
            guard live.isEmpty else {
                throw RegistryError(40405, "Subject '\(subject)' was not deleted first before being permanently deleted")
            }
            try await store.registryPurge(subject: subject, version: nil)
            return all.map(\.version)
        }
        guard !live.isEmpty else {
            throw RegistryError(40404, "Subject '\(subject)' was soft deleted.Set permanent=true to delete permanently")
        }
        try await store.registrySoftDelete(subject: subject, version: nil)
        return live.map(\.version)
    }

    public func deleteVersion(subject: String, version number: Int?, permanent: Bool) async throws -> Int {
        let all = try await versions(subject: subject, includeDeleted: true)
        try await requireWritable(subject)
        guard all.contains(where: { !$0.deleted }) || permanent else { throw RegistryError.subjectNotFound(subject) }
        let target: SubjectVersion?
        if let number { target = all.first { $0.version == number } } else { target = all.last { !$0.deleted } }
        guard let v = target else { throw RegistryError.versionNotFound(number ?? -1) }
        if permanent {
            guard v.deleted else {
                throw RegistryError(40407, "Subject '\(subject)' Version \(v.version) was not deleted first before being permanently deleted")
            }
            try await store.registryPurge(subject: subject, version: v.version)
        } else {
            guard !v.deleted else {
                throw RegistryError(40406, "Subject '\(subject)' Version \(v.version) was soft deleted.Set permanent=true to delete permanently")
            }
            try await store.registrySoftDelete(subject: subject, version: v.version)
        }
        return v.version
    }
}
