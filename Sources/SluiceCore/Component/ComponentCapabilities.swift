/// What some components can do beyond reading and writing, as protocols the commands cast to
/// (instead of to concrete connectors). Each matches a ``ComponentCapability`` of the spec;
/// `ComponentSpecTests` checks that the two agree.

/// A change-data-capture source whose server-side objects (a slot, a publication) `sluice cdc`
/// sets up and tears down. Each operation returns the lines to print: the statements it ran.
public protocol CDCAdministrable: Source {
    /// What the server lacks for this source, each with the statement that fixes it (empty: ready).
    func missingServerSettings() async throws -> [String]
    /// Creates what is missing; the first run then snapshots the tables while streaming.
    func setUp() async throws -> [String]
    /// Drops the change stream's position on the server (and its table list unless
    /// `keepPublication`); refuses while a process streams from it.
    func tearDown(keepPublication: Bool) async throws -> [String]
    /// The objects ``tearDown(keepPublication:)`` drops, for the confirmation prompt.
    func objectsDropped(keepPublication: Bool) -> String
}

/// A source or sink backed by a queue that `sluice queue status` inspects.
public protocol QueueInspectable: Sendable {
    /// The queue as it stands now. Throws when the queue's server cannot be reached; a stream
    /// or consumer that cannot be described is reported in the status.
    func queueStatus() async throws -> QueueStatus
}

/// What ``QueueInspectable/queueStatus()`` reports.
public struct QueueStatus: Sendable {
    /// The stream (or topic) name.
    public var stream: String
    /// Stream-level numbers: `messages`, `bytes`, `first_seq`, `last_seq`, `replicas`, `leader`.
    public var fields: [String: QueueStatusValue] = [:]
    /// The consumer this component reads as, if it reads.
    public var consumer: String?
    /// Consumer-level numbers: `lag`, `ack_pending`, `redelivered`, `waiting_pulls`, `deliveries`, `ack_floor_seq`.
    public var consumerFields: [String: QueueStatusValue] = [:]
    /// Why the stream (or the consumer) could not be described.
    public var error: String?
    public var consumerError: String?

    public init(stream: String) { self.stream = stream }
}

/// A number or a word in a ``QueueStatus``.
public enum QueueStatusValue: Sendable, CustomStringConvertible {
    case number(Int64)
    case text(String)

    public var description: String {
        switch self {
        case let .number(n): "\(n)"
        case let .text(t): t
        }
    }

    /// For JSON output.
    public var jsonValue: Any {
        switch self {
        case let .number(n): n
        case let .text(t): t
        }
    }
}
