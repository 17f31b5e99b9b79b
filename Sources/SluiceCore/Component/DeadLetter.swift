import Foundation

/// A record that could not be ingested, with everything needed to find, understand and replay it.
public struct DeadLetter: Sendable, Hashable, Codable {
    /// Which stage rejected it: `decode`, `schema`, `transform`, `sink`.
    public var stage: String
    /// A short machine-readable classification: `malformed_row`, `type_mismatch`, `sink_rejected`…
    public var errorKind: String
    /// What is wrong and, where possible, how to fix it.
    public var message: String
    /// Where it came from: `file:line`, an LSN, a request id. Unique per pipeline.
    public var location: String
    /// The original bytes, as read.
    public var raw: [UInt8]
    public var attempts: Int
    /// For a row a stage after decoding refused (`schema`, `dedupe`, `sink`): ``raw`` is the row
    /// rendered as a JSON object (``RowRendering``) and this is its schema
    /// (``SluiceSchemaText``), so that a replay reads it back into the same types. Nil for raw
    /// bytes as read.
    public var schema: String?

    public init(stage: String, errorKind: String, message: String, location: String, raw: [UInt8], attempts: Int = 1, schema: String? = nil) {
        self.stage = stage
        self.errorKind = errorKind
        self.message = message
        self.location = location
        self.raw = raw
        self.attempts = attempts
        self.schema = schema
    }
}

/// A dead letter as stored, with its identity and timestamps.
public struct StoredDeadLetter: Sendable, Hashable {
    public var id: Int64
    public var pipeline: String
    public var letter: DeadLetter
    public var firstSeen: Date
    public var lastSeen: Date

    public init(id: Int64, pipeline: String, letter: DeadLetter, firstSeen: Date, lastSeen: Date) {
        self.id = id
        self.pipeline = pipeline
        self.letter = letter
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }
}

extension StoredDeadLetter {
    /// This letter failing again (`sluice dlq replay`): the same location, bytes and schema (what
    /// a later replay decodes), one more attempt, the new reason.
    public func failedAgain(kind: String, message: String, stage: String? = nil) -> DeadLetter {
        var again = letter
        again.stage = stage ?? letter.stage
        again.errorKind = kind
        again.message = message
        again.attempts = 1
        return again
    }
}
