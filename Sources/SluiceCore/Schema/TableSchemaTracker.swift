import Logging

/// The schemas of the tables a change-data-capture source reads, in the schema registry: each
/// table is a subject of its own (`<subject>.<table>`, the subject being the pipeline's name
/// unless `schema: {subject: …}` says otherwise). A table's columns are registered when the
/// stream first describes them (with its first change) and again when a DDL changes them, each
/// change recorded as a drift event (`sluice schema drift`, the dashboard, the drift alert).
///
/// Change events carry their rows as JSON images, so the pipeline's own schema (the envelope)
/// never drifts: this is where a table's drift meets the pipeline's policy.
/// - no `schema:` settings: detection only (registered without a compatibility check; a registry
///   failure is logged, never a reason to stop);
/// - `on_change: evolve`: registered under the subject's compatibility; a change it refuses stops
///   the pipeline before any change of the new shape is delivered;
/// - `on_change: freeze`: a shape not registered for the table stops the pipeline (a shape
///   registered already passes: one registered by hand after a stop, or an older one replayed
///   from the checkpoint);
/// - `discard_row` and `discard_value` would drop changes (a current-state table would silently
///   differ from its source): refused, with the reason.
///
/// Used by one task (the source's reader), in order.
public final class TableSchemaTracker: @unchecked Sendable {
    let registry: SchemaRegistry?
    let pipeline: String
    let settings: SchemaSettings?
    let logger: Logger
    let onDrift: @Sendable () -> Void
    /// The shape each table was last checked with (one registry round trip per change).
    var known: [String: Schema] = [:]

    /// - Parameters:
    ///   - state: the pipeline's state store (no registry in it: nothing is tracked).
    ///   - detection: false with `schema: {on_change: ignore}`: nothing is tracked.
    ///   - onDrift: called once per drift event recorded (the drift alert and the dashboard count them).
    public init(
        state: any StateStore, pipeline: String, settings: SchemaSettings?, detection: Bool = true, logger: Logger,
        onDrift: @escaping @Sendable () -> Void = {}
    ) {
        registry = detection ? state.schemaRegistry.map { SchemaRegistry(store: $0) } : nil
        self.pipeline = pipeline
        self.settings = settings
        self.logger = logger
        self.onDrift = onDrift
    }

    /// The registry subject of `table` (subjects hold at most 255 bytes: a longer name keeps its
    /// start and a hash of the whole).
    public func subject(for table: String) -> String {
        let full = "\(settings?.subject ?? pipeline).\(table)"
        guard full.utf8.count > 255 else { return full }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in full.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return String(decoding: Array(full.utf8.prefix(200)), as: UTF8.self) + "~" + String(hash, radix: 16)
    }

    /// Checks `table`'s columns as the source now reads them: registers a new shape, records the
    /// drift, or stops the pipeline as its policy says (a ``SluiceError`` of kind `schemaViolation`).
    public func observe(table: String, schema: Schema) async throws {
        if let last = known[table], SchemaGuard.sameShape(last, schema) { return }
        guard let registry else { return }
        let subject = subject(for: table)
        let latest: (version: Int, schema: Schema)?
        do {
            latest = try await registry.latestRecordSchema(subject: subject)
        } catch  where settings == nil {
            logger.warning("schema detection could not read the table's subject", metadata: ["subject": "\(subject)", "error": "\(error)"])
            return
        }
        if let latest, SchemaGuard.sameShape(latest.schema, schema) {
            known[table] = schema
            return
        }
        let diff = latest.map { SchemaDiff(from: $0.schema, to: schema) }
        switch settings?.policy {
        case nil:
            do {
                try await register(schema, subject: subject, diff: diff, from: latest?.version, check: false)
            } catch {
                // Logged once per shape: detection never stops a pipeline, nor repeats itself.
                logger.warning("schema detection could not record this table's shape", metadata: ["subject": "\(subject)", "error": "\(error)"])
            }
        case .evolve?:
            do {
                try await register(schema, subject: subject, diff: diff, from: latest?.version, check: true)
            } catch let e as RegistryError where e.errorCode == 409 || e.errorCode == 42205 {
                if let diff { try await record(diff, subject: subject, from: latest?.version, to: nil, action: "refused") }
                throw SluiceError(
                    .schemaViolation,
                    "the columns of \(table) changed in a way the registry refuses (\(e.message)): \(diff?.summary() ?? "")."
                        + " No change of the new shape was delivered. Change the subject's compatibility (`PUT /config/\(subject)`)"
                        + " or set `schema: {on_change: …}` otherwise, then run again (`sluice schema show \(subject)`).",
                    location: "pipelines.\(pipeline).schema", retryable: false)
            }
        case .freeze?:
            guard let latest, let diff else {
                try await register(schema, subject: subject, diff: nil, from: nil, check: true)
                break
            }
            if try await isRegistered(schema, subject: subject) { break }
            try await record(diff, subject: subject, from: latest.version, to: nil, action: "refused")
            throw SluiceError(
                .schemaViolation,
                "the columns of \(table) changed under `on_change: freeze`: \(diff.summary()). No change of the new shape was"
                    + " delivered. Register the new shape (`sluice schema` or the registry API, subject \(subject)) or set"
                    + " `on_change: evolve`, then run again.",
                location: "pipelines.\(pipeline).schema", retryable: false)
        case .discardRow?, .discardValue?:
            throw SluiceError(
                .configuration,
                "`on_change: discard_row` and `discard_value` do not apply to change events: dropping a change would leave current-state tables and audit trails silently different from the source; use evolve or freeze",
                location: "pipelines.\(pipeline).schema", retryable: false)
        }
        known[table] = schema
    }

    func register(_ schema: Schema, subject: String, diff: SchemaDiff?, from: Int?, check: Bool) async throws {
        guard let registry else { return }
        let (_, version, isNew) = try await registry.register(
            subject: subject, text: SluiceSchemaText.render(schema), format: .sluice, checkCompatibility: check,
            widenToString: settings?.widenToString ?? false)
        if let diff, isNew { try await record(diff, subject: subject, from: from, to: version, action: "registered") }
        logger.info("table schema registered", metadata: ["subject": "\(subject)", "version": "\(version)", "diff": "\(diff?.summary() ?? "initial")"])
    }

    /// Whether `schema` is one of the subject's versions already.
    func isRegistered(_ schema: Schema, subject: String) async throws -> Bool {
        guard let registry else { return false }
        do {
            _ = try await registry.lookup(subject: subject, text: SluiceSchemaText.render(schema), format: .sluice)
            return true
        } catch let e as RegistryError where e.errorCode == 40403 || e.errorCode == 40401 {
            return false
        }
    }

    func record(_ diff: SchemaDiff, subject: String, from: Int?, to: Int?, action: String) async throws {
        guard let registry else { return }
        let event = SchemaDriftEvent(
            pipeline: pipeline, subject: subject, fromVersion: from, toVersion: to, kinds: diff.kinds, diff: diff.description, action: action)
        try await registry.recordDrift(event, summary: diff.summary(), logger: logger, onDrift: onDrift)
    }
}
