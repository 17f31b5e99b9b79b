/// An error with a classification the runtime acts on, a message that says what to do, and where it came from.
public struct SluiceError: Error, Sendable, CustomStringConvertible {
    /// A broad classification; extensible without breaking users.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// Raw values are the names metrics and dead letters carry (`kind`), in snake case.
        enum Base: String, Sendable, Hashable {
            case configuration, connection, timeout, unavailable, authentication, constraint, io, unsupported, conflict
            case malformedInput = "malformed_input"
            case schemaViolation = "schema_violation"
            case rateLimited = "rate_limited"
            case corruptState = "corrupt_state"
            case internalError = "internal_error"
        }
        let base: Base
        init(_ base: Base) { self.base = base }

        public static let configuration = Code(.configuration)
        public static let malformedInput = Code(.malformedInput)
        public static let schemaViolation = Code(.schemaViolation)
        public static let connection = Code(.connection)
        public static let timeout = Code(.timeout)
        public static let rateLimited = Code(.rateLimited)
        public static let unavailable = Code(.unavailable)
        public static let authentication = Code(.authentication)
        public static let constraint = Code(.constraint)
        public static let io = Code(.io)
        public static let unsupported = Code(.unsupported)
        public static let corruptState = Code(.corruptState)
        public static let internalError = Code(.internalError)
        /// Another worker sharing the state store committed the same records first (a commit's
        /// dedupe keys were already stored): the commit is refused and its output discarded.
        public static let conflict = Code(.conflict)

        public var description: String { base.rawValue }

        /// Timeouts, refused or reset connections, 429/503 and serialization failures are worth retrying.
        public var isRetryableByDefault: Bool {
            switch base {
            case .connection, .timeout, .rateLimited, .unavailable: true
            default: false
            }
        }
    }

    public var code: Code
    /// What went wrong and how to remedy it.
    public var message: String
    /// Where: a file:line, a key path, an LSN, a request id.
    public var location: String?
    /// Overrides the code's default retry classification.
    public var retryable: Bool?
    /// Server-requested wait before retrying (Retry-After).
    public var retryAfter: Duration?
    public var underlying: (any Error)?

    public init(
        _ code: Code, _ message: String, location: String? = nil, retryable: Bool? = nil,
        retryAfter: Duration? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.location = location
        self.retryable = retryable
        self.retryAfter = retryAfter
        self.underlying = underlying
    }

    public var isRetryable: Bool { retryable ?? code.isRetryableByDefault }

    public var description: String {
        var text = location.map { "\($0): \(message)" } ?? message
        if let underlying { text += " (\(underlying))" }
        return text
    }
}

extension SluiceError {
    /// Classifies any error: a ``SluiceError`` as it says, POSIX errors by errno, others as non-retryable.
    public static func classify(_ error: any Error) -> SluiceError {
        if let e = error as? SluiceError { return e }
        if let e = error as? any POSIXErrorLike { return e.sluiceError }
        return SluiceError(.internalError, "\(error)", underlying: error)
    }
}

/// Errors that know their own classification (POSIX-style I/O errors).
public protocol POSIXErrorLike: Error {
    var sluiceError: SluiceError { get }
}

/// Masks secrets in locations that may be URLs, for logs, errors and output.
public enum Redaction {
    /// `scheme://user:password@host/…` → `scheme://user:***@host/…`, and `password=…` → `password=***`.
    public static func url(_ text: String) -> String {
        var out = text
        if let scheme = out.range(of: "://") {
            let rest = out[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                out.replaceSubrange(out.index(after: colon)..<at, with: "***")
            }
        }
        if let r = out.range(of: #"password=[^&]*"#, options: .regularExpression) {
            out.replaceSubrange(r, with: "password=***")
        }
        return out
    }
}
