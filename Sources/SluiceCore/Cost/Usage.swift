import Foundation
import Synchronization

/// What a pipeline used in some period: the quantities cost accounting turns into money.
public struct Usage: Sendable, Hashable {
    /// Bytes read from the source (as read: compressed files count compressed).
    public var bytesIn = 0
    /// Bytes handed to the sink.
    public var bytesOut = 0
    public var recordsIn = 0
    public var recordsOut = 0
    /// CPU time of the process, shared among the pipelines running by the bytes each moved.
    public var cpuSeconds = 0.0
    /// Requests to HTTP APIs and object storage.
    public var requests = 0
    /// Bytes of files published to storage (local or object storage).
    public var storageBytes = 0

    public init(
        bytesIn: Int = 0, bytesOut: Int = 0, recordsIn: Int = 0, recordsOut: Int = 0, cpuSeconds: Double = 0, requests: Int = 0,
        storageBytes: Int = 0
    ) {
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.recordsIn = recordsIn
        self.recordsOut = recordsOut
        self.cpuSeconds = cpuSeconds
        self.requests = requests
        self.storageBytes = storageBytes
    }

    public var isZero: Bool { self == Usage() }

    public static func + (a: Usage, b: Usage) -> Usage {
        Usage(
            bytesIn: a.bytesIn + b.bytesIn, bytesOut: a.bytesOut + b.bytesOut, recordsIn: a.recordsIn + b.recordsIn,
            recordsOut: a.recordsOut + b.recordsOut, cpuSeconds: a.cpuSeconds + b.cpuSeconds, requests: a.requests + b.requests,
            storageBytes: a.storageBytes + b.storageBytes)
    }

    /// Compression ratio of what was read against what was written (nil when nothing was written).
    public var compressionRatio: Double? { bytesOut > 0 ? Double(bytesIn) / Double(bytesOut) : nil }
}

/// A pipeline's usage in one hour, as the state store keeps it.
public struct UsageRow: Sendable, Hashable {
    public var pipeline: String
    /// Unix seconds, a multiple of 3600 (UTC).
    public var hour: Int64
    public var usage: Usage
    /// What ingesting cost, at the price per GB in force when it happened (that depends on the
    /// pipeline's freshness then); storage, requests and CPU are priced when reported.
    public var ingestDollars: Double

    public init(pipeline: String, hour: Int64, usage: Usage, ingestDollars: Double) {
        self.pipeline = pipeline
        self.hour = hour
        self.usage = usage
        self.ingestDollars = ingestDollars
    }
}

/// Requests one pipeline's components made to APIs and object storage, counted as they go.
/// One per pipeline, made when the configuration is loaded and handed to its components.
public final class RequestTally: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public func add(_ n: Int = 1) { count.add(n, ordering: .relaxed) }

    public var total: Int { count.load(ordering: .relaxed) }
}
