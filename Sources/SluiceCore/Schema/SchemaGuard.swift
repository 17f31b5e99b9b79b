import Foundation
import Logging
import Metrics

/// What a pipeline does when the data's schema changes (in the spirit of dlt's schema contracts).
public enum SchemaPolicy: String, Sendable {
    /// Register a new version when compatible (new columns, widened types) and write it; refuse
    /// (stop the pipeline, nothing written) an incompatible change.
    case evolve
    /// Keep the registered schema: rows that do not fit go to the dead-letter queue with the diff.
    case freeze
    /// Keep the registered schema: rows that do not fit are dropped (counted).
    case discardRow = "discard_row"
    /// Keep the registered schema: offending values are dropped (extra fields, values that do not fit).
    case discardValue = "discard_value"
}

/// A pipeline's `schema:` settings.
public struct SchemaSettings: Sendable {
    public var policy: SchemaPolicy
    /// The registry subject (default: the pipeline's name).
    public var subject: String?
    /// The first version, when the data should not decide it.
    public var declared: Schema?
    public var widenToString: Bool

    public init(policy: SchemaPolicy, subject: String? = nil, declared: Schema? = nil, widenToString: Bool = false) {
        self.policy = policy
        self.subject = subject
        self.declared = declared
        self.widenToString = widenToString
    }
}

/// Watches the schema of a pipeline's batches against its subject in the registry and applies
/// the pipeline's policy. Without `schema:` settings it only detects and records drift (new
/// versions are registered without a compatibility check and batches pass unchanged).
///
/// Used by one task (the pipeline's source task), in order.
public final class SchemaGuard: @unchecked Sendable {
    let registry: SchemaRegistry
    let pipeline: String
    let subject: String
    let settings: SchemaSettings?
    let logger: Logger
    /// Called once per drift event recorded (the alert engine counts them).
    var onDrift: @Sendable () -> Void = {}
    /// Called with the registry version the records have, when it is known or changes.
    var onVersion: @Sendable (Int) -> Void = { _ in }
    /// The registered schema batches are held to, and its version.
    var current: Schema?
    var version: Int?
    /// The last shape seen (detection only), so a run of batches of one shape costs one comparison each.
    var lastSeen: Schema?
    /// Drift already recorded for a frozen subject (one event per distinct change, not per batch).
    var recorded = Set<String>()

    public init(registry: SchemaRegistry, pipeline: String, settings: SchemaSettings?, logger: Logger) {
        self.registry = registry
        self.pipeline = pipeline
        self.subject = settings?.subject ?? pipeline
        self.settings = settings
        self.logger = logger
    }

    /// Loads the subject's latest version, registering the declared schema first if there is none.
    public func start() async throws {
        if let latest = try await registry.latestRecordSchema(subject: subject) {
            current = latest.schema
            version = latest.version
            onVersion(latest.version)
        } else if let declared = settings?.declared {
            try await register(declared, diff: nil)
        }
    }

    /// Applies the policy to one batch: the batch to pass on (conformed to the registered schema),
    /// with rows that did not fit added to its rejects (`freeze`) or dropped.
    public func apply(_ batch: SourceBatch) async throws -> SourceBatch {
        guard batch.records.count > 0 else { return batch }
        let schema = effectiveSchema(batch.records)
        guard let current else {
            if settings == nil {
                await detect(schema)
            } else {
                try await register(Self.relaxed(schema), diff: nil)
            }
            return batch
        }
        if Self.sameShape(schema, current) {
            // Same columns and types, in another order or with all-null columns typed otherwise.
            guard settings != nil, batch.records.schema != current else { return batch }
            return try conform(batch, to: current, drop: false, deadLetter: true, diff: SchemaDiff())
        }
        guard let settings else {
            await detect(schema)
            return batch
        }
        let diff = SchemaDiff(from: current, to: schema)
        switch settings.policy {
        case .evolve:
            let (merged, refused) = merge(current, with: schema)
            if !refused.isEmpty {
                if recorded.insert("refused " + diff.description).inserted { try await recordDrift(diff, to: nil, action: "refused") }
                logger.error("schema change refused", metadata: ["subject": "\(subject)", "diff": "\(diff.summary())"])
                let listed = refused.prefix(10).joined(separator: ", ") + (refused.count > 10 ? " and \(refused.count - 10) more" : "")
                throw SluiceError(
                    .schemaViolation,
                    "schema change refused under `on_change: evolve`: \(listed) "
                        + "cannot be evolved (not a widening). Nothing of this batch was written and the checkpoint did not move. "
                        + "Fix the data, or set `schema: {widen_to_string: true}` or `on_change: freeze`, then run again "
                        + "(`sluice schema show \(subject)` shows the registered versions).", location: "pipelines.\(pipeline).schema")
            }
            if !Self.sameShape(merged, current) {
                try await register(merged, diff: diff)
            } else if recorded.insert(diff.description).inserted {
                // A column missing from the data (kept, nullable) or a narrower type: no new version, still an event.
                try await recordDrift(diff, to: version, action: "conformed")
            }
            return try conform(batch, to: self.current!, drop: false, deadLetter: true, diff: diff)
        case .freeze:
            return try await enforce(batch, diff: diff, action: "dead_lettered", drop: false, deadLetter: true)
        case .discardRow:
            return try await enforce(batch, diff: diff, action: "discarded_rows", drop: true, deadLetter: false)
        case .discardValue:
            return try await enforce(batch, diff: diff, action: "discarded_values", drop: true, deadLetter: false, nullValues: true)
        }
    }

    /// Detection only (no `schema:`): a new shape becomes a version (no compatibility check) and
    /// an event; a known one is not; the batch passes unchanged, and a registry failure is logged,
    /// never a reason to stop the pipeline.
    func detect(_ schema: Schema) async {
        if let lastSeen, Self.sameShape(lastSeen, schema) { return }
        lastSeen = schema
        do {
            let from = version
            let (_, v, isNew) = try await registry.register(
                subject: subject, text: SluiceSchemaText.render(schema), format: .sluice,
                checkCompatibility: false)
            if isNew, let old = current {
                try await recordDrift(SchemaDiff(from: old, to: schema), to: v, action: "registered", from: from)
            }
            current = schema
            version = v
            onVersion(v)
        } catch {
            logger.warning("schema detection could not record this shape", metadata: ["subject": "\(subject)", "error": "\(error)"])
        }
    }

    /// The batch's schema for comparison: a column whose values are all null says nothing about
    /// its type, so it takes the registered type, or is left out when the registry does not know it.
    func effectiveSchema(_ batch: RecordBatch) -> Schema {
        var fields: [Field] = []
        for (c, field) in batch.schema.fields.enumerated() {
            let column = batch.columns[c]
            guard column.count > 0, column.nullCount == column.count else { fields.append(field); continue }
            if let known = current?.fields.first(where: { $0.name == field.name }) {
                fields.append(Field(field.name, known.type, nullable: true))
            }
        }
        return Schema(fields)
    }

    /// Same columns with the same types and nullability, in any order.
    static func sameShape(_ a: Schema, _ b: Schema) -> Bool {
        guard a.count == b.count else { return false }
        let index = Dictionary(a.fields.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        return b.fields.allSatisfy { index[$0.name] == $0 }
    }

    func enforce(
        _ batch: SourceBatch, diff: SchemaDiff, action: String, drop: Bool, deadLetter: Bool,
        nullValues: Bool = false
    ) async throws -> SourceBatch {
        if recorded.insert(diff.description).inserted {
            try await recordDrift(diff, to: nil, action: action)
        }
        return try conform(batch, to: current!, drop: drop, deadLetter: deadLetter, diff: diff, nullValues: nullValues)
    }

    func conform(
        _ batch: SourceBatch, to target: Schema, drop: Bool, deadLetter: Bool, diff: SchemaDiff,
        nullValues: Bool = false
    ) throws -> SourceBatch {
        let conformer = SchemaConformer(target: target, widenToString: settings?.widenToString ?? false, nullOffendingValues: nullValues)
        let (records, failures, droppedValues) = conformer.conformCounting(batch.records)
        if droppedValues > 0 {
            Counter(label: "sluice_schema_discarded_values_total", dimensions: [("pipeline", pipeline)]).increment(by: droppedValues)
        }
        var out = batch
        guard !failures.isEmpty else { out.records = records; return out }
        let keep = (0..<records.count).filter { failures[$0] == nil }
        out.records = records.take(keep)
        let label = drop ? "discarded" : "dead_lettered"
        Counter(label: "sluice_schema_rejected_rows_total", dimensions: [("pipeline", pipeline), ("action", label)]).increment(by: failures.count)
        if deadLetter {
            let types = SluiceSchemaText.render(batch.records.schema)
            for (row, reason) in failures.sorted(by: { $0.key < $1.key }) {
                out.rejects.append(
                    DeadLetter(
                        stage: "schema", errorKind: "schema_violation",
                        message: "\(reason); schema drift from \(subject) v\(version ?? 0): \(diff.summary())",
                        location: "schema:\(batch.position)#\(row)", raw: Array(RowRendering.json(batch.records, rows: row..<row + 1).utf8),
                        schema: types))
            }
        }
        return out
    }

    /// The schema that holds both `current` and `batch` under evolution rules, and the changes
    /// that cannot be evolved (a type change that is not a widening).
    func merge(_ current: Schema, with batch: Schema) -> (Schema, refused: [String]) {
        var fields: [Field] = []
        var refused: [String] = []
        let widen = settings?.widenToString ?? false
        for f in current.fields {
            guard let b = batch.fields.first(where: { $0.name == f.name }) else {
                fields.append(Field(f.name, f.type, nullable: true))  // removed: kept, now nullable
                continue
            }
            var type = f.type
            if b.type != f.type {
                if SchemaDiff.canWiden(f.type, to: b.type) {
                    type = b.type  // the data widened: the schema follows
                } else if SchemaDiff.canWiden(b.type, to: f.type) {
                    type = f.type  // the data is narrower: cast up
                } else if widen && (f.type == .string || b.type == .string) {
                    type = .string
                } else {
                    refused.append("\(f.name): \(f.type) -> \(b.type)")
                }
            }
            fields.append(Field(f.name, type, nullable: f.nullable || b.nullable))
        }
        for b in batch.fields where current.index(of: b.name) == nil { fields.append(Field(b.name, b.type, nullable: true)) }
        return (Schema(fields), refused)
    }

    /// Registers `schema` as the subject's next version (with the subject's compatibility check
    /// unless `check` is false) and records the drift.
    func register(_ schema: Schema, diff: SchemaDiff?, check: Bool = true) async throws {
        let text = SluiceSchemaText.render(schema)
        let from = version
        do {
            let (_, v, isNew) = try await registry.register(
                subject: subject, text: text, format: .sluice, checkCompatibility: check,
                widenToString: settings?.widenToString ?? false)
            current = schema
            version = v
            onVersion(v)
            if let diff, isNew { try await recordDrift(diff, to: v, action: "registered", from: from) }
            logger.info(
                "schema version registered", metadata: ["subject": "\(subject)", "version": "\(v)", "diff": "\(diff.map { $0.summary() } ?? "initial")"])
        } catch let e as RegistryError where e.errorCode == 409 {
            if let diff { try await recordDrift(diff, to: nil, action: "refused", from: from) }
            throw SluiceError(
                .schemaViolation,
                "schema change refused by the registry: \(e.message). Nothing of this batch was written. "
                    + "Change the subject's compatibility (`PUT /config/\(subject)`), or fix the data.", location: "pipelines.\(pipeline).schema")
        } catch let e as RegistryError where e.errorCode == 42205 {
            if let diff { try await recordDrift(diff, to: nil, action: "refused", from: from) }
            throw SluiceError(
                .schemaViolation,
                "schema change refused by the registry: \(e.message). Nothing of this batch was written. "
                    + "Make the subject writable (`PUT /mode/\(subject)` with {\"mode\": \"READWRITE\"}, or `DELETE /mode/\(subject)`), or fix the data.",
                location: "pipelines.\(pipeline).schema")
        }
    }

    /// Records a drift event and logs it (see ``SchemaRegistry/recordDrift(_:summary:logger:onDrift:)``:
    /// an event that registers no version is recorded once).
    func recordDrift(_ diff: SchemaDiff, to: Int?, action: String, from: Int?? = nil) async throws {
        let event = SchemaDriftEvent(
            pipeline: pipeline, subject: subject, fromVersion: from ?? version, toVersion: to,
            kinds: diff.kinds, diff: diff.description, action: action)
        try await registry.recordDrift(event, summary: diff.summary(), logger: logger, onDrift: onDrift)
    }

    /// Inferred first versions are nullable throughout: a column that held values in the first
    /// batch may be empty in the next one.
    static func relaxed(_ schema: Schema) -> Schema {
        Schema(schema.fields.map { Field($0.name, $0.type, nullable: true) })
    }
}
