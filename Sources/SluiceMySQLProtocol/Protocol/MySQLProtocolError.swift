/// Bytes from a MySQL or MariaDB server that do not follow the client/server protocol: what was
/// expected, and where in the packet (a byte offset) it went wrong.
public struct MySQLProtocolError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    /// Offset in the packet's payload where reading failed.
    public var offset: Int

    public init(_ message: String, at offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "MySQL protocol: \(message) (at byte \(offset) of the packet)" }
}
