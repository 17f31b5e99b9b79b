/// `Protocol::HandshakeV10`, the server's first packet.
public struct MySQLServerHandshake: Equatable, Sendable {
    public var protocolVersion: UInt8
    /// As the server reports it; MariaDB prefixes `5.5.5-` for old clients.
    public var serverVersion: String
    public var connectionID: UInt32
    /// The 20-byte challenge the password is scrambled with.
    public var scramble: [UInt8]
    public var capabilities: MySQLCapabilities
    public var characterSet: UInt8
    public var statusFlags: UInt16
    /// The authentication method the scramble is for (`mysql_native_password`,
    /// `caching_sha2_password`…); empty when the server does not name one.
    public var authPlugin: String

    /// A MariaDB server (it says so in its version).
    public var isMariaDB: Bool { serverVersion.contains("MariaDB") }

    /// The version without MariaDB's `5.5.5-` prefix.
    public var version: String {
        serverVersion.hasPrefix("5.5.5-") && isMariaDB ? String(serverVersion.dropFirst(6)) : serverVersion
    }

    public init(parsing payload: [UInt8]) throws {
        var r = MySQLByteReader(payload)
        if payload.first == 0xFF {
            throw MySQLProtocolError("the server refused the connection: \(MySQLServerError(parsing: payload, capabilities: .protocol41).description)", at: 0)
        }
        protocolVersion = try r.uint8("protocol version")
        guard protocolVersion == 10 else {
            throw MySQLProtocolError("protocol version \(protocolVersion); only 10 is supported", at: 0)
        }
        serverVersion = String(decoding: try r.nulTerminated("server version"), as: UTF8.self)
        connectionID = try r.uint32("connection id")
        var scramble = try r.bytes(8, "auth-plugin-data-part-1")
        try r.skip(1, "filler")
        var flags = UInt32(try r.uint16("capability flags"))
        characterSet = 0
        statusFlags = 0
        authPlugin = ""
        capabilities = MySQLCapabilities(rawValue: flags)
        guard !r.isAtEnd else {
            self.scramble = scramble
            return
        }
        characterSet = try r.uint8("character set")
        statusFlags = try r.uint16("status flags")
        flags |= UInt32(try r.uint16("capability flags (upper)")) << 16
        capabilities = MySQLCapabilities(rawValue: flags)
        let dataLength = Int(try r.uint8("auth-plugin-data length"))
        try r.skip(10, "reserved")
        if capabilities.contains(.secureConnection) {
            let part2 = max(13, dataLength - 8)
            var rest = try r.bytes(part2, "auth-plugin-data-part-2")
            // The scramble's second part ends with a NUL that is not part of it.
            if rest.last == 0 { rest.removeLast() }
            scramble += rest
        }
        if capabilities.contains(.pluginAuth) {
            // Some servers omit the final NUL.
            let name = r.bytes[r.offset...].contains(0) ? try r.nulTerminated("auth plugin name") : r.rest()
            authPlugin = String(decoding: name, as: UTF8.self)
        }
        self.scramble = scramble
    }
}

/// `Protocol::HandshakeResponse41`, the client's answer (and, cut short, `Protocol::SSLRequest`).
public struct MySQLHandshakeResponse: Sendable {
    public var capabilities: MySQLCapabilities
    public var maxPacketSize: UInt32 = 1 << 24
    /// utf8mb4_general_ci.
    public var characterSet: UInt8 = 45
    public var user: String
    public var authResponse: [UInt8]
    public var database: String?
    public var authPlugin: String
    public var attributes: [(String, String)] = []

    public init(capabilities: MySQLCapabilities, user: String, authResponse: [UInt8], database: String?, authPlugin: String) {
        self.capabilities = capabilities
        self.user = user
        self.authResponse = authResponse
        self.database = database
        self.authPlugin = authPlugin
    }

    /// The flags to send: what Sluice wants and the server offers, plus the connection's options.
    public static func negotiate(server: MySQLCapabilities, database: Bool, tls: Bool) -> MySQLCapabilities {
        var flags = MySQLCapabilities.sluiceWants.intersection(server)
        if database { flags.insert(.connectWithDatabase) }
        if tls { flags.insert(.ssl) }
        return flags
    }

    /// The first 32 bytes, which are also the whole `SSLRequest` packet.
    func head(_ flags: MySQLCapabilities) -> MySQLByteWriter {
        var w = MySQLByteWriter()
        w.integer(UInt64(flags.rawValue), 4)
        w.integer(UInt64(maxPacketSize), 4)
        w.integer(UInt64(characterSet), 1)
        w.zeros(23)
        return w
    }

    /// The flags both packets carry: MySQL reads them from the `SSLRequest` only, so the
    /// response sent over TLS must not add any.
    public var flags: MySQLCapabilities {
        var flags = capabilities
        if database != nil { flags.insert(.connectWithDatabase) }
        if !attributes.isEmpty { flags.insert(.connectAttributes) }
        return flags
    }

    /// The `SSLRequest` payload: sent before the TLS handshake, then this response follows over TLS
    /// (``capabilities`` must then hold `.ssl`).
    public func sslRequest() -> [UInt8] { head(flags.union(.ssl)).bytes }

    public func encoded() throws -> [UInt8] {
        let flags = self.flags
        var w = head(flags)
        w.nulTerminated(Array(user.utf8))
        if flags.contains(.pluginAuthLengthEncodedData) {
            w.lengthEncodedBytes(authResponse)
        } else if flags.contains(.secureConnection) {
            guard authResponse.count < 256 else { throw MySQLProtocolError("an authentication response longer than 255 bytes", at: 0) }
            w.integer(UInt64(authResponse.count), 1)
            w.append(authResponse)
        } else {
            w.nulTerminated(authResponse)
        }
        if let database { w.nulTerminated(Array(database.utf8)) }
        if flags.contains(.pluginAuth) { w.nulTerminated(Array(authPlugin.utf8)) }
        if flags.contains(.connectAttributes) {
            var a = MySQLByteWriter()
            for (key, value) in attributes {
                a.lengthEncodedBytes(Array(key.utf8))
                a.lengthEncodedBytes(Array(value.utf8))
            }
            w.lengthEncodedBytes(a.bytes)
        }
        return w.bytes
    }
}
