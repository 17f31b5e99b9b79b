import Foundation

/// The stored answer to a request that carried an `Idempotency-Key`, replayed for its repeats.
public struct IdempotencyRecord: Sendable, Hashable {
    public var stream: String
    public var key: String
    /// A hash of what makes two requests the same (method, stream, content type, body).
    public var fingerprint: String
    public var status: Int
    public var response: [UInt8]
    public var createdAt: Date

    public init(stream: String, key: String, fingerprint: String, status: Int, response: [UInt8], createdAt: Date) {
        self.stream = stream
        self.key = key
        self.fingerprint = fingerprint
        self.status = status
        self.response = response
        self.createdAt = createdAt
    }
}

/// One accepted HTTP request, to be made durable in one piece.
public struct PushAppend: Sendable {
    public var stream: String
    /// The pipeline that consumes the stream (dead letters are filed under it).
    public var pipeline: String
    public var requestID: String
    /// The accepted records, one JSON object per line.
    public var payload: [UInt8]
    public var records: Int
    public var receivedAt: Date
    /// Stored with the records, in the same transaction, when the request had a key.
    public var idempotency: IdempotencyRecord?
    /// A stored key older than this has expired and does not count as a repeat.
    public var idempotencySince: Date
    /// Records refused by validation when the stream dead-letters instead of rejecting.
    public var deadLetters: [DeadLetter]

    public init(
        stream: String, pipeline: String, requestID: String, payload: [UInt8], records: Int, receivedAt: Date,
        idempotency: IdempotencyRecord? = nil, idempotencySince: Date = .distantPast, deadLetters: [DeadLetter] = []
    ) {
        self.stream = stream
        self.pipeline = pipeline
        self.requestID = requestID
        self.payload = payload
        self.records = records
        self.receivedAt = receivedAt
        self.idempotency = idempotency
        self.idempotencySince = idempotencySince
        self.deadLetters = deadLetters
    }
}

/// What happened to one ``PushAppend``.
public enum PushAppendOutcome: Sendable, Hashable {
    /// Durable at this queue sequence.
    case appended(sequence: Int64)
    /// The idempotency key was already stored (by an earlier request): nothing was written.
    case duplicate(IdempotencyRecord)
}

/// One request's records, as queued.
public struct QueuedPush: Sendable {
    public var sequence: Int64
    public var requestID: String
    public var payload: [UInt8]
    public var records: Int
    public var receivedAt: Date

    public init(sequence: Int64, requestID: String, payload: [UInt8], records: Int, receivedAt: Date) {
        self.sequence = sequence
        self.requestID = requestID
        self.payload = payload
        self.records = records
        self.receivedAt = receivedAt
    }
}

/// Records and bytes waiting in a stream's queue (accepted, not yet committed by the pipeline).
public struct PushBacklog: Sendable, Hashable {
    public var requests = 0
    public var records = 0
    public var bytes = 0

    public init(requests: Int = 0, records: Int = 0, bytes: Int = 0) {
        self.requests = requests
        self.records = records
        self.bytes = bytes
    }
}

/// An API key as stored: never the secret, only its SHA-256.
public struct StoredAPIKey: Sendable, Hashable {
    /// The public part of the key (`slk_<id>_…`), shown in listings and logs.
    public var id: String
    public var name: String
    /// Hex SHA-256 of the secret part.
    public var secretHash: String
    /// The key's scopes: names of streams it may write to, `*` for every stream, and
    /// ``registryWriteScope`` for writes to the schema registry API. (Stream names cannot hold a
    /// `:`, so no stream is mistaken for a scope.)
    public var streams: [String]
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, name: String, secretHash: String, streams: [String], createdAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.streams = streams
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    /// The scope that lets a key register, delete and configure in the schema registry API.
    public static let registryWriteScope = "registry:write"

    /// True when the key may write to `stream`.
    public func allows(stream: String) -> Bool { revokedAt == nil && (streams.contains("*") || streams.contains(stream)) }

    /// True when the key may write to the schema registry API: only with ``registryWriteScope``
    /// (a key for streams, even for every stream, may not).
    public var allowsRegistryWrite: Bool { revokedAt == nil && streams.contains(Self.registryWriteScope) }
}

/// The durable queue behind the HTTP push endpoint, with its idempotency keys and API keys.
///
/// A request is answered 2xx only after ``append(_:)`` returned: its records, its dead letters
/// and its idempotency key are then on disk together (one transaction), so a `kill -9` can
/// neither lose an acknowledged request nor let its retry be ingested twice.
public protocol PushQueueStore: Sendable {
    /// Appends the requests in one transaction, in order. A request whose idempotency key is
    /// already stored (since its `idempotencySince`) is not written; its outcome carries the stored record.
    func append(_ requests: [PushAppend]) async throws -> [PushAppendOutcome]
    /// The stored answer for a key, if it was stored at or after `since`.
    func idempotencyRecord(stream: String, key: String, since: Date) async throws -> IdempotencyRecord?
    /// Deletes idempotency keys stored before `before`; returns how many.
    func sweepIdempotencyKeys(before: Date) async throws -> Int

    /// Queued requests after `sequence` (and after what was committed downstream), in order, up to
    /// `limit` requests or about `maxBytes` of payload.
    func queued(stream: String, after sequence: Int64, limit: Int, maxBytes: Int) async throws -> [QueuedPush]
    /// Deletes up to `limit` of the oldest requests already committed downstream; returns how many.
    /// Deletion is lazy and chunked so that it never holds the writer for long.
    func trimConsumed(stream: String, limit: Int) async throws -> Int
    /// What waits in the stream's queue. Kept in memory after the first call, so it is cheap.
    func backlog(stream: String) async throws -> PushBacklog

    func createAPIKey(_ key: StoredAPIKey) async throws
    func apiKey(id: String) async throws -> StoredAPIKey?
    func apiKeys() async throws -> [StoredAPIKey]
    /// Revokes a key; returns false when there is no such key.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool
}

/// The checkpoint partition that owns a stream's push queue.
///
/// A state store that implements ``PushQueueStore`` marks the queued requests of `stream` up to
/// the committed sequence as consumed in the same transaction as a checkpoint of this partition:
/// from then on they count no more in the backlog and are never read again (not even by another
/// pipeline that takes the stream over), and ``PushQueueStore/trimConsumed(stream:limit:)`` deletes them.
public enum PushQueuePartition {
    public static let prefix = "queue:"

    public static func name(stream: String) -> String { prefix + stream }

    /// The stream a partition name belongs to, if it is a queue partition.
    public static func stream(of partition: String) -> String? {
        partition.hasPrefix(prefix) ? String(partition.dropFirst(prefix.count)) : nil
    }
}
