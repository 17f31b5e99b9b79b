import Synchronization
import SluiceCore

/// A small pool of connections to one server. A borrowed connection goes back to the pool
/// only when it is healthy and idle (not inside a transaction); a broken one is dropped.
public final class PostgresPool: Sendable {
    public let url: PostgresURL
    let maxConnections: Int
    private let state = Mutex<(idle: [PostgresConnection], open: Int)>(([], 0))

    public init(url: PostgresURL, maxConnections: Int = 8) {
        self.url = url
        self.maxConnections = maxConnections
    }

    /// Runs `body` on a session of a pooled connection (its own serial queue, off the cooperative pool).
    @discardableResult
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await connection.run(body)
            release(connection, healthy: true)
            return result
        } catch {
            release(connection, healthy: false)
            throw error
        }
    }

    /// Runs `body` inside `BEGIN … COMMIT` (rolled back when it throws).
    @discardableResult
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withSession { session in
            try session.execute("BEGIN")
            do {
                let result = try body(session)
                try session.execute("COMMIT")
                return result
            } catch {
                try? session.execute("ROLLBACK")
                throw error
            }
        }
    }

    func acquire() async throws -> PostgresConnection {
        while true {
            enum Next {
                case use(PostgresConnection)
                case open, wait
            }
            let next: Next = state.withLock { s in
                if let c = s.idle.popLast() { return .use(c) }
                if s.open < maxConnections { s.open += 1; return .open }
                return .wait
            }
            switch next {
            case let .use(c): return c
            case .open:
                do {
                    return try await PostgresConnection.connect(url)
                } catch {
                    state.withLock { $0.open -= 1 }
                    throw error
                }
            case .wait:
                try await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    func release(_ connection: PostgresConnection, healthy: Bool) {
        // After a failed statement the session may be inside an aborted transaction; do not reuse it.
        state.withLock { s in
            if healthy { s.idle.append(connection) } else { s.open -= 1 }
        }
    }
}

/// A PostgreSQL array literal (`{"a","b"}`) for binding a list of strings as one `text[]` parameter.
func textArrayLiteral(_ values: [String]) -> String {
    "{"
        + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        .joined(separator: ",") + "}"
}

/// bytea's text input form (`\x0a1b…`) for binding bytes as a parameter.
func byteaHex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]("\\x".utf8)
    out.reserveCapacity(2 + bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
