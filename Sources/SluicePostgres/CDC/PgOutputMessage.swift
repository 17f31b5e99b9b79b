/// One message of PostgreSQL's `pgoutput` logical-decoding plugin, protocol version 1
/// (the layout is in the PostgreSQL docs, "Logical Replication Message Formats").
///
/// All integers are big-endian; strings are NUL-terminated UTF-8; LSNs are u64; timestamps are
/// microseconds since 2000-01-01 UTC.
public enum PgOutputMessage: Sendable, Hashable {
    /// `B`: a transaction starts. `finalLSN` is its commit record's LSN.
    case begin(finalLSN: UInt64, commitTime: Int64, xid: UInt32)
    /// `C`: the transaction committed. Advance the slot to `endLSN` once it is durable downstream.
    case commit(flags: UInt8, commitLSN: UInt64, endLSN: UInt64, commitTime: Int64)
    /// `O`: the transaction was replayed from another node.
    case origin(commitLSN: UInt64, name: String)
    /// `R`: a table's shape; sent before its first change in a session and after any change to it.
    case relation(PgRelation)
    /// `Y`: a non-built-in type (an enum, a domain) used by a following relation.
    case type(oid: UInt32, namespace: String, name: String)
    /// `I`: a new row.
    case insert(relation: UInt32, new: PgTuple)
    /// `U`: a changed row. `old` is the old key (`K`, replica identity default/index, only when the
    /// key changed) or the whole old row (`O`, replica identity full).
    case update(relation: UInt32, old: PgTuple?, oldIsKeyOnly: Bool, new: PgTuple)
    /// `D`: a deleted row: its key (`K`) or whole old row (`O`).
    case delete(relation: UInt32, old: PgTuple, oldIsKeyOnly: Bool)
    /// `T`: tables emptied. Options: 1 = CASCADE, 2 = RESTART IDENTITY.
    case truncate(relations: [UInt32], options: UInt8)
    /// `M`: a message from `pg_logical_emit_message` (with the `messages` option).
    case message(transactional: Bool, lsn: UInt64, prefix: String, content: [UInt8])
}

/// A relation as pgoutput describes it.
public struct PgRelation: Sendable, Hashable {
    public var oid: UInt32
    public var namespace: String
    public var name: String
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    public var replicaIdentity: UInt8
    public var columns: [PgColumn]
}

public struct PgColumn: Sendable, Hashable {
    /// Part of the replica identity key.
    public var isKey: Bool
    public var name: String
    public var typeOID: UInt32
    public var typeModifier: Int32
}

/// One column value of a tuple.
public enum PgValue: Sendable, Hashable {
    case null
    /// A TOASTed value that did not change (its bytes are not sent).
    case unchangedToast
    /// The value in its text output format.
    case text([UInt8])
    /// The value in its binary send format (only with the `binary` option).
    case binary([UInt8])
}

public typealias PgTuple = [PgValue]

/// A pgoutput message that could not be decoded: what was expected and at which byte.
public struct PgOutputError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var offset: Int

    public var description: String { "pgoutput: \(message) at byte \(offset)" }
}
