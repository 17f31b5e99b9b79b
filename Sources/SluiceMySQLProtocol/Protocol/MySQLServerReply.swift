/// `ERR_Packet`: a refusal with the server's error code, SQL state and message.
public struct MySQLServerError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: UInt16
    /// Five characters (`28000` for access denied); empty from pre-4.1 servers.
    public var sqlState: String
    public var message: String

    public init(code: UInt16, sqlState: String, message: String) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
    }

    /// Parses an ERR packet; a malformed one still becomes an error that says so.
    public init(parsing payload: [UInt8], capabilities: MySQLCapabilities) {
        var r = MySQLByteReader(payload, offset: 1)
        code = (try? r.uint16("error code")) ?? 0
        sqlState = ""
        if capabilities.contains(.protocol41), r.bytes.count > r.offset, r.bytes[r.offset] == UInt8(ascii: "#"),
            let state = try? r.bytes(6, "SQL state")
        {
            sqlState = String(decoding: state.dropFirst(), as: UTF8.self)
        }
        message = String(decoding: r.rest(), as: UTF8.self)
    }

    public var description: String {
        sqlState.isEmpty ? "error \(code): \(message)" : "error \(code) (\(sqlState)): \(message)"
    }
}

/// `OK_Packet`.
public struct MySQLOK: Equatable, Sendable {
    public var affectedRows: UInt64
    public var lastInsertID: UInt64
    public var statusFlags: UInt16
    public var warnings: UInt16
    public var info: String

    public init(parsing payload: [UInt8], capabilities: MySQLCapabilities) throws {
        var r = MySQLByteReader(payload, offset: 1)
        affectedRows = try r.lengthEncodedInteger("affected rows") ?? 0
        lastInsertID = try r.lengthEncodedInteger("last insert id") ?? 0
        statusFlags = 0
        warnings = 0
        if capabilities.contains(.protocol41) {
            statusFlags = try r.uint16("status flags")
            warnings = try r.uint16("warnings")
        } else if capabilities.contains(.transactions) {
            statusFlags = try r.uint16("status flags")
        }
        info = String(decoding: r.rest(), as: UTF8.self)
    }
}

/// What the server answers during authentication.
public enum MySQLAuthReply: Equatable, Sendable {
    /// Authenticated.
    case ok
    /// Refused (wrong password, unknown user, no privilege…).
    case error(MySQLServerError)
    /// The server wants another method: its name and a new scramble.
    case switchMethod(plugin: String, data: [UInt8])
    /// More data for the current method (`caching_sha2_password`: 3 is fast-auth success, 4
    /// asks for the full password).
    case moreData([UInt8])

    public init(parsing payload: [UInt8], capabilities: MySQLCapabilities) throws {
        guard let first = payload.first else { throw MySQLProtocolError("an empty authentication reply", at: 0) }
        switch first {
        case 0x00:
            self = .ok
        case 0xFF:
            self = .error(MySQLServerError(parsing: payload, capabilities: capabilities))
        case 0xFE:
            var r = MySQLByteReader(payload, offset: 1)
            // A lone 0xFE is the old (pre-4.1) switch request.
            let plugin = r.isAtEnd ? "mysql_old_password" : String(decoding: try r.nulTerminated("auth plugin name"), as: UTF8.self)
            var data = r.rest()
            if data.last == 0 { data.removeLast() }
            self = .switchMethod(plugin: plugin, data: data)
        case 0x01:
            self = .moreData(Array(payload.dropFirst()))
        default:
            throw MySQLProtocolError("an authentication reply starting with byte \(first)", at: 0)
        }
    }
}
