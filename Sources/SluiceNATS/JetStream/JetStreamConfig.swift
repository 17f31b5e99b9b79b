import Foundation

/// A stream's configuration, as Sluice creates streams.
public struct StreamConfig: Sendable {
    public enum Storage: String, Sendable { case file, memory }
    public var name: String
    public var subjects: [String]
    public var replicas = 1
    public var storage = Storage.file
    /// Messages older than this are removed (nil: kept until `maxBytes`).
    public var maxAge: Duration?
    public var maxBytes: Int64?
    /// How long the server remembers a `Nats-Msg-Id` to drop a repeated publish.
    public var duplicateWindow: Duration = .seconds(120)

    public init(name: String, subjects: [String]) {
        self.name = name
        self.subjects = subjects
    }

    var json: [String: Any] {
        var j: [String: Any] = [
            "name": name, "subjects": subjects, "retention": "limits", "storage": storage.rawValue,
            "num_replicas": replicas, "discard": "old", "duplicate_window": duplicateWindow.nanoseconds,
        ]
        if let maxAge { j["max_age"] = maxAge.nanoseconds }
        if let maxBytes { j["max_bytes"] = maxBytes }
        return j
    }
}

/// A durable pull consumer's configuration.
public struct ConsumerConfig: Sendable {
    public var durable: String
    public var filterSubject: String?
    /// How long a delivered message may stay unacknowledged before it goes to another worker.
    public var ackWait: Duration = .seconds(30)
    /// Messages delivered and not acknowledged, across all workers sharing the consumer.
    public var maxAckPending = 200_000
    /// The server's own delivery limit; -1 leaves it to Sluice (which terminates and
    /// dead-letters a message delivered `max_deliveries` times).
    public var maxDeliver = -1
    public var deliverPolicy = "all"

    public init(durable: String) { self.durable = durable }

    var json: [String: Any] {
        var j: [String: Any] = [
            "durable_name": durable, "ack_policy": "explicit", "ack_wait": ackWait.nanoseconds,
            "max_ack_pending": maxAckPending, "max_deliver": maxDeliver, "deliver_policy": deliverPolicy,
            "replay_policy": "instant", "max_waiting": 512,
        ]
        if let filterSubject { j["filter_subject"] = filterSubject }
        return j
    }
}

/// What `$JS.API.STREAM.INFO` says, in the parts Sluice uses.
public struct StreamInfo: Sendable {
    public var name: String
    public var subjects: [String]
    public var replicas: Int
    public var messages: Int64
    public var bytes: Int64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var consumers: Int
    public var leader: String?
    public var replicaStates: [(name: String, current: Bool)]
    /// How long the server remembers a `Nats-Msg-Id` to drop a repeat (nil when not reported).
    public var duplicateWindow: Duration?

    init(_ o: [String: Any]) {
        let config = o["config"] as? [String: Any] ?? [:]
        let state = o["state"] as? [String: Any] ?? [:]
        let cluster = o["cluster"] as? [String: Any] ?? [:]
        name = config["name"] as? String ?? ""
        subjects = config["subjects"] as? [String] ?? []
        replicas = config["num_replicas"] as? Int ?? 1
        messages = (state["messages"] as? NSNumber)?.int64Value ?? 0
        bytes = (state["bytes"] as? NSNumber)?.int64Value ?? 0
        firstSequence = (state["first_seq"] as? NSNumber)?.uint64Value ?? 0
        lastSequence = (state["last_seq"] as? NSNumber)?.uint64Value ?? 0
        consumers = state["consumer_count"] as? Int ?? 0
        leader = cluster["leader"] as? String
        duplicateWindow = (config["duplicate_window"] as? NSNumber).map { .nanoseconds($0.int64Value) }
        replicaStates = (cluster["replicas"] as? [[String: Any]] ?? []).map { ($0["name"] as? String ?? "", $0["current"] as? Bool ?? false) }
    }
}

/// What `$JS.API.CONSUMER.INFO` says, in the parts Sluice uses.
public struct ConsumerInfo: Sendable {
    public var name: String
    public var stream: String
    /// Messages in the stream not yet delivered to this consumer (the lag).
    public var pending: Int64
    /// Delivered and not yet acknowledged.
    public var ackPending: Int64
    public var redelivered: Int64
    public var waiting: Int64
    public var deliveredStreamSequence: UInt64
    /// Deliveries so far, redeliveries included.
    public var deliveries: UInt64
    public var ackFloorStreamSequence: UInt64
    public var ackWait: Duration
    public var maxAckPending: Int

    init(_ o: [String: Any]) {
        let config = o["config"] as? [String: Any] ?? [:]
        name = o["name"] as? String ?? ""
        stream = o["stream_name"] as? String ?? ""
        pending = (o["num_pending"] as? NSNumber)?.int64Value ?? 0
        ackPending = (o["num_ack_pending"] as? NSNumber)?.int64Value ?? 0
        redelivered = (o["num_redelivered"] as? NSNumber)?.int64Value ?? 0
        waiting = (o["num_waiting"] as? NSNumber)?.int64Value ?? 0
        deliveredStreamSequence = ((o["delivered"] as? [String: Any])?["stream_seq"] as? NSNumber)?.uint64Value ?? 0
        deliveries = ((o["delivered"] as? [String: Any])?["consumer_seq"] as? NSNumber)?.uint64Value ?? 0
        ackFloorStreamSequence = ((o["ack_floor"] as? [String: Any])?["stream_seq"] as? NSNumber)?.uint64Value ?? 0
        ackWait = .nanoseconds((config["ack_wait"] as? NSNumber)?.int64Value ?? 30_000_000_000)
        maxAckPending = config["max_ack_pending"] as? Int ?? 0
    }
}
