import Logging
import SluiceCore
import SluiceNATS

/// Where a JetStream stream lives and how Sluice creates it when it is missing. Shared by the
/// `jetstream` source and sink; each option is declared, with its default, in ``JetStreamSource/spec``
/// and ``JetStreamSink/spec`` (from ``specOptions(subject:own:)``).
public struct JetStreamStreamOptions: Decodable, Sendable {
    public var url: String
    public var stream: String
    public var subject: String?
    public var create = true
    public var replicas = 1
    public var maxAge: Duration?
    public var maxBytes: Int64?
    public var duplicateWindow: Duration = .seconds(120)

    enum CodingKeys: String, CodingKey {
        case url, stream, subject, create, replicas
        case maxAge = "max_age"
        case maxBytes = "max_bytes"
        case duplicateWindow = "duplicate_window"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decode(String.self, forKey: .url)
        do {
            _ = try NATSOptions(urls: [url])
        } catch {
            throw try c.superDecoder(forKey: .url).configError("\(error); write nats://host:4222 (several separated by commas)")
        }
        stream = try c.decode(String.self, forKey: .stream)
        guard stream.range(of: #"^[A-Za-z0-9_-]{1,64}$"#, options: .regularExpression) != nil else {
            throw try c.superDecoder(forKey: .stream).configError("a stream name is letters, digits, '_' and '-' (no dots, spaces or wildcards)")
        }
        subject = try c.decodeIfPresent(String.self, forKey: .subject)
        if let subject, !Self.validSubject(subject) {
            throw try c.superDecoder(forKey: .subject).configError(
                "'\(subject)' is not a NATS subject (dot-separated tokens without spaces; it may end in `.{table}`, `.{partition}` or both)")
        }
        create = try c.decodeIfPresent(Bool.self, forKey: .create) ?? true
        if let r = try c.decodeIfPresent(Int.self, forKey: .replicas) {
            guard (1...5).contains(r) else { throw try c.superDecoder(forKey: .replicas).configError("replicas must be 1 to 5") }
            replicas = r
        }
        maxAge = try c.decodeIfPresent(ConfigDuration.self, forKey: .maxAge)?.duration
        maxBytes = try c.decodeIfPresent(ConfigByteSize.self, forKey: .maxBytes).map { Int64($0.bytes) }
        duplicateWindow = try c.decodeIfPresent(ConfigDuration.self, forKey: .duplicateWindow)?.duration ?? duplicateWindow
    }

    init(url: String, stream: String, subject: String?) {
        self.url = url
        self.stream = stream
        self.subject = subject
    }

    /// A subject, optionally ending in `.{table}`, `.{partition}` or `.{table}.{partition}`.
    static func validSubject(_ s: String) -> Bool {
        var body = s
        if body.hasSuffix(".{partition}") { body = String(body.dropLast(12)) }
        if body.hasSuffix(".{table}") { body = String(body.dropLast(8)) }
        return body.range(of: #"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$"#, options: .regularExpression) != nil
    }

    /// The subject filter the stream must cover: `{table}` (and what follows) becomes `>`,
    /// a `{partition}` alone becomes `*`.
    var streamSubject: String? {
        subject.map { s in
            if let r = s.range(of: ".{table}") { return String(s[..<r.lowerBound]) + ".>" }
            if s.hasSuffix(".{partition}") { return String(s.dropLast(11)) + "*" }
            return s
        }
    }

    public func connect(logger: Logger, name: String) async throws -> NATSConnection {
        var options = try NATSOptions(urls: [url])
        options.name = name
        do {
            return try await NATSConnection.connect(options, logger: logger)
        } catch let error as NATSError {
            throw SluiceError(.unavailable, "\(error)", location: "jetstream.url", retryable: error.isRetryable)
        }
    }

    /// Connects and checks the stream (for `sluice validate --connect` and `/readyz`).
    func checkReachable() async throws {
        let connection = try await connect(logger: Logger(label: "sluice.check"), name: "sluice check")
        do {
            _ = try await ensureStream(JetStream(connection))
            await connection.close()
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Runs `body` again while it fails with a retryable error (a cluster electing its leaders,
    /// a server restarting), for up to a minute.
    static func whileElecting<T>(logger: Logger, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        var wait: Duration = .milliseconds(200)
        while true {
            do {
                return try await body()
            } catch let error as SluiceError where error.isRetryable && ContinuousClock.now < deadline {
                logger.warning("JetStream not ready; trying again", metadata: ["error": "\(error.message)", "in": "\(wait)"])
                try await Task.sleep(for: wait)
                wait = min(wait * 2, .seconds(5))
            }
        }
    }

    /// Checks the stream (creating it when allowed and missing), trying again for up to a
    /// minute while the server or cluster is not ready.
    func ensureStream(_ js: JetStream, logger: Logger) async throws -> StreamInfo {
        try await Self.whileElecting(logger: logger) { try await ensureStream(js) }
    }

    /// Checks the stream (creating it when allowed and missing).
    func ensureStream(_ js: JetStream) async throws -> StreamInfo {
        do {
            if !create || subject == nil {
                guard let info = try await js.streamInfo(stream) else {
                    throw SluiceError(
                        .configuration,
                        "JetStream stream \(stream) does not exist"
                            + (subject == nil ? "; give `subject:` so Sluice can create it" : " and `create: false` forbids creating it"),
                        location: "jetstream.stream", retryable: false)
                }
                return info
            }
            var config = StreamConfig(name: stream, subjects: [streamSubject!])
            config.replicas = replicas
            config.maxAge = maxAge
            config.maxBytes = maxBytes
            config.duplicateWindow = duplicateWindow
            return try await js.ensureStream(config)
        } catch let error as JetStreamError {
            throw SluiceError.jetStream(error, location: "jetstream.stream")
        } catch let error as NATSError {
            throw SluiceError(.unavailable, "\(error)", location: "jetstream", retryable: error.isRetryable)
        }
    }
}

extension JetStreamStreamOptions {
    /// The options of the source's or the sink's spec, in the order the reference lists them:
    /// where the stream is (`url`, `stream`, then `subject`, which differs between the two: the
    /// sink requires it), the component's `own` options, then ``creationSpecs``.
    static func specOptions(subject: OptionSpec, own: [OptionSpec]) -> [OptionSpec] {
        var options: [OptionSpec] = [
            OptionSpec(
                "url", .string, required: true, example: #""nats://127.0.0.1:4222""#, secret: true,
                "`nats://host:4222`; a cluster as `nats://a:4222,nats://b:4222` (the others are learned from the server). `user:password@` or `token@` may be given in the URL."
            ),
            OptionSpec(
                "stream", .string, required: true, example: "EVENTS",
                "The stream's name: letters, digits, `_` and `-` (at most 64)."),
            subject,
        ]
        options.append(contentsOf: own)
        options.append(contentsOf: creationSpecs)
        return options
    }

    /// The options of a stream Sluice creates when it is missing (never applied to an existing one).
    static let creationSpecs: [OptionSpec] = [
        OptionSpec(
            "create", .boolean, default: "true", example: "false",
            "Create the stream (with `subject`) when it is missing; with `false` a missing stream stops the pipeline. An existing stream is never changed."),
        OptionSpec(
            "replicas", .integer(1...5), default: "1", example: "3",
            "Replicas of a created stream (3 in a three-node cluster); an existing stream with another count stops the run."),
        OptionSpec(
            "max_age", .duration, example: "7d",
            "Retention of a created stream: messages older than this are removed. Default: no limit."),
        OptionSpec(
            "max_bytes", .byteSize, example: "10GB",
            "Size limit of a created stream (the oldest messages are removed). Default: no limit."),
        OptionSpec(
            "duplicate_window", .duration, default: "2m", example: "10m",
            "How long a created stream remembers a `Nats-Msg-Id`: a message published again within it is dropped."),
    ]
}

extension SluiceError {
    static func jetStream(_ error: JetStreamError, location: String) -> SluiceError {
        switch error {
        case .notEnabled, .conflict:
            SluiceError(.configuration, "\(error)", location: location, retryable: false)
        case let .api(code, _, _) where code == 503 || code == 500:
            SluiceError(.unavailable, "\(error)", location: location, retryable: true)
        default:
            SluiceError(.unavailable, "\(error)", location: location, retryable: true)
        }
    }
}
