import Foundation

/// The JetStream API over a ``NATSConnection``: JSON requests to `$JS.API.*`.
public struct JetStream: Sendable {
    public let connection: NATSConnection
    /// How long an API request waits for its reply (a leader election takes a few seconds).
    public var timeout: Duration = .seconds(5)

    public init(_ connection: NATSConnection) { self.connection = connection }

    /// Sends `$JS.API.<api>` and returns the reply as a JSON object. Throws
    /// ``JetStreamError/api(code:errorCode:description:)`` for an error reply and
    /// ``JetStreamError/notEnabled`` when nobody answers (JetStream is off).
    public func request(_ api: String, _ body: [String: Any]? = nil) async throws -> [String: Any] {
        let payload = try body.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) } ?? Data()
        let reply: NATSInboundMessage
        do {
            reply = try await connection.request("$JS.API." + api, payload: Array(payload), timeout: timeout)
        } catch NATSError.noResponders {
            throw JetStreamError.notEnabled
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(reply.payload))) as? [String: Any] else {
            throw JetStreamError.malformedReply(api, String(decoding: reply.payload.prefix(200), as: UTF8.self))
        }
        if let error = object["error"] as? [String: Any] {
            throw JetStreamError.api(
                code: error["code"] as? Int ?? 0, errorCode: error["err_code"] as? Int ?? 0,
                description: error["description"] as? String ?? "unknown error")
        }
        return object
    }

    // MARK: Streams

    public func streamInfo(_ name: String) async throws -> StreamInfo? {
        do {
            return StreamInfo(try await request("STREAM.INFO.\(name)"))
        } catch let JetStreamError.api(code, errorCode, _) where code == 404 || errorCode == 10059 {
            return nil
        }
    }

    /// Creates the stream, or checks that an existing one can take `config`: its subjects
    /// must cover the wanted ones and its replica count must match. A conflicting existing
    /// stream is never changed; the error says what differs.
    public func ensureStream(_ config: StreamConfig) async throws -> StreamInfo {
        if let existing = try await streamInfo(config.name) {
            let missing = config.subjects.filter { s in !existing.subjects.contains { NATSSubject.matches(pattern: $0, subject: s) } }
            if !missing.isEmpty {
                throw JetStreamError.conflict(
                    "stream \(config.name) exists with subjects \(existing.subjects) that do not cover \(missing); "
                        + "add them (`nats stream edit`) or use another stream name")
            }
            if existing.replicas != config.replicas {
                throw JetStreamError.conflict(
                    "stream \(config.name) exists with \(existing.replicas) replica(s), the config asks for \(config.replicas); "
                        + "make them agree")
            }
            return existing
        }
        do {
            return StreamInfo(try await request("STREAM.CREATE.\(config.name)", config.json))
        } catch let JetStreamError.api(_, errorCode, description) where errorCode == 10065 {
            throw JetStreamError.conflict(
                "stream \(config.name) cannot be created: \(description) (another stream already takes these subjects: \(config.subjects))")
        }
    }

    public func deleteStream(_ name: String) async throws {
        _ = try await request("STREAM.DELETE.\(name)")
    }

    // MARK: Consumers

    public func consumerInfo(stream: String, consumer: String) async throws -> ConsumerInfo? {
        do {
            return ConsumerInfo(try await request("CONSUMER.INFO.\(stream).\(consumer)"))
        } catch let JetStreamError.api(code, errorCode, _) where code == 404 || errorCode == 10014 {
            return nil
        }
    }

    /// Creates the durable consumer, or leaves an existing one as it is (several workers
    /// share it; the first creates it).
    public func ensureConsumer(stream: String, _ config: ConsumerConfig) async throws -> ConsumerInfo {
        if let existing = try await consumerInfo(stream: stream, consumer: config.durable) { return existing }
        let body: [String: Any] = ["stream_name": stream, "config": config.json]
        do {
            return ConsumerInfo(try await request("CONSUMER.CREATE.\(stream).\(config.durable)", body))
        } catch let JetStreamError.api(_, errorCode, description) where errorCode == 10148 || errorCode == 10013 {
            // Created by another worker at the same moment with a slightly different config.
            if let existing = try await consumerInfo(stream: stream, consumer: config.durable) { return existing }
            throw JetStreamError.conflict("consumer \(config.durable) on \(stream): \(description)")
        }
    }

    public func streamNames() async throws -> [String] {
        (try await request("STREAM.NAMES"))["streams"] as? [String] ?? []
    }

    public func consumerNames(stream: String) async throws -> [String] {
        (try await request("CONSUMER.NAMES.\(stream)"))["consumers"] as? [String] ?? []
    }
}

/// What the JetStream API said no to, or could not be asked.
public enum JetStreamError: Error, Sendable, CustomStringConvertible {
    case notEnabled
    case api(code: Int, errorCode: Int, description: String)
    case conflict(String)
    case malformedReply(String, String)
    case publishFailed(String)

    public var description: String {
        switch self {
        case .notEnabled:
            "JetStream is not enabled on this NATS server (nobody answered $JS.API); start nats-server with -js (or `jetstream {}` in its config)"
        case let .api(code, errorCode, description): "JetStream error \(code) (\(errorCode)): \(description)"
        case let .conflict(m): m
        case let .malformedReply(api, text): "JetStream answered $JS.API.\(api) with something that is not JSON: \(text)"
        case let .publishFailed(m): m
        }
    }
}

/// Subject wildcard matching: `*` one token, `>` the rest.
public enum NATSSubject {
    public static func matches(pattern: String, subject: String) -> Bool {
        let p = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let s = subject.split(separator: ".", omittingEmptySubsequences: false)
        for (i, token) in p.enumerated() {
            if token == ">" { return s.count > i }
            guard i < s.count else { return false }
            if token != "*" && token != s[i] { return false }
        }
        return p.count == s.count
    }
}
