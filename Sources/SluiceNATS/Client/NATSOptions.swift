import Foundation

/// How to reach a NATS server or cluster, and how hard to try.
public struct NATSOptions: Sendable {
    /// Seed servers (`nats://host:port`, user and password may be in the URL). The cluster's
    /// other members, announced by the server (`connect_urls`), are added once connected.
    public var servers: [NATSServerAddress]
    public var user: String?
    public var password: String?
    public var token: String?
    /// The connection name the server shows in its monitoring.
    public var name = "sluice"
    /// How long one attempt (TCP connect, INFO, CONNECT, PONG) may take.
    public var connectTimeout: Duration = .seconds(5)
    /// The first pause between reconnect attempts; it doubles up to ``maxReconnectWait``.
    public var reconnectWait: Duration = .milliseconds(100)
    public var maxReconnectWait: Duration = .seconds(2)
    /// Rounds over every known server before the first connect gives up.
    public var initialConnectRounds = 3
    /// How often the client pings a quiet server; two unanswered pings drop the connection.
    public var pingInterval: Duration = .seconds(10)

    public init(servers: [NATSServerAddress]) { self.servers = servers }

    /// Parses a comma-separated list or a single URL (`nats://u:p@h:4222,nats://h2:4222`).
    public init(urls: [String]) throws {
        var servers: [NATSServerAddress] = []
        for url in urls.flatMap({ $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }) where !url.isEmpty {
            let address = try NATSServerAddress(parsing: url)
            if user == nil, let u = address.user { user = u; password = address.password }
            if token == nil, let t = address.token { token = t }
            servers.append(address)
        }
        guard !servers.isEmpty else { throw NATSError.badURL("no server URL given") }
        self.servers = servers
    }
}

/// One server: host and port, with credentials when the URL carried them.
public struct NATSServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var token: String?

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `nats://[user:password@|token@]host[:port]`; `host:port` alone is accepted too.
    public init(parsing url: String) throws {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") {
            let name = rest[..<scheme.lowerBound].lowercased()
            guard name == "nats" || name == "tcp" else {
                throw NATSError.badURL("'\(url)': the scheme must be nats:// (TLS is not supported yet)")
            }
            rest = rest[scheme.upperBound...]
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncoding
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                token = String(credentials).removingPercentEncoding
            }
        }
        let hostPart: Substring, portPart: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        } else {
            hostPart = rest
            portPart = nil
        }
        guard !hostPart.isEmpty else { throw NATSError.badURL("'\(Self.masked(url))' has no host") }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65_535).contains(p) else {
                throw NATSError.badURL("'\(Self.masked(url))': port '\(portPart)' is not a number from 1 to 65535")
            }
            port = p
        } else {
            port = 4222
        }
    }

    public var description: String { "nats://\(host.contains(":") ? "[\(host)]" : host):\(port)" }

    /// The URL with any password or token replaced by `***`.
    public static func masked(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        let credentials = url[scheme.upperBound..<at]
        if let colon = credentials.firstIndex(of: ":") {
            return String(url[..<colon]) + ":***" + String(url[at...])
        }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at...])
    }
}

/// What went wrong talking to NATS, worded for the person who has to fix it.
public enum NATSError: Error, Sendable, CustomStringConvertible {
    case badURL(String)
    /// No server could be reached (the last error of each).
    case unreachable(String)
    /// The server refused the connection (`-ERR 'Authorization Violation'`).
    case refused(String)
    /// The connection dropped; the client is reconnecting.
    case disconnected
    /// The connection was closed by ``NATSConnection/close()``.
    case closed
    case timeout(String)
    /// A request found nobody subscribed to its subject (status 503).
    case noResponders(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case let .badURL(m): "bad NATS URL: \(m)"
        case let .unreachable(m): "cannot reach NATS: \(m)"
        case let .refused(m): "NATS refused the connection: \(m)"
        case .disconnected: "the NATS connection dropped (reconnecting)"
        case .closed: "the NATS connection is closed"
        case let .timeout(m): "NATS did not answer in time: \(m)"
        case let .noResponders(subject): "no responders on '\(subject)'"
        case let .protocolViolation(m): "NATS protocol error: \(m)"
        }
    }

    /// True when trying again later can succeed (the server is down or restarting).
    public var isRetryable: Bool {
        switch self {
        case .badURL, .refused, .closed, .protocolViolation: false
        case .unreachable, .disconnected, .timeout, .noResponders: true
        }
    }
}
