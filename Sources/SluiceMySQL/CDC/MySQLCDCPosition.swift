import Foundation

/// A place in a server's binlog: a file and a byte position in it. Ordered by the file's
/// sequence number (the digits after its last dot), then the position.
struct BinlogCoordinates: Codable, Sendable, Equatable, Comparable, CustomStringConvertible {
    var file: String
    var position: UInt64

    var sequence: Int { Int(file.split(separator: ".").last ?? "") ?? 0 }

    static func < (a: Self, b: Self) -> Bool {
        (a.sequence, a.position) < (b.sequence, b.position)
    }

    var description: String { "\(file):\(position)" }
}

/// The checkpoint of a `mysql_cdc` source: the end of the last transaction committed downstream
/// (a binlog file and position, with the server's GTID position there) and where the snapshots
/// stand. Stored as JSON.
struct MySQLCDCPosition: Codable, Sendable, Equatable {
    /// Transactions ending at or before this are committed downstream; the stream resumes here.
    var at: BinlogCoordinates
    /// The GTID position there (MariaDB: `domain-server-sequence` per domain; MySQL: the last
    /// transaction's GTID). On MariaDB the stream resumes after it (`resume: gtid`), so the
    /// checkpoint holds on another server of the replication topology; else by file and position.
    var gtid: String?
    /// MySQL: the GTID set of every transaction at or before ``at`` (`gtid_mode=ON`), in text
    /// form. The stream resumes by it (`resume: gtid`), so the checkpoint holds on another server
    /// of the replication topology. Known from the first position on (the server's executed set
    /// there), or from the next binlog file's `PREVIOUS_GTIDS` for older checkpoints.
    var executed: String?
    /// Tables (`db.table`) still to snapshot, the one in progress first.
    var pending: [String] = []
    /// The key of the last snapshotted row of `pending[0]`, as SQL literals in key order.
    var after: [String]?
    /// Tables whose rows are (being) delivered: snapshotted, or queued in ``pending``.
    var known: [String] = []
    /// The first changes of the transaction starting at ``at`` that are committed downstream (a
    /// large transaction handed over in parts); the rest of it is not.
    var delivered: Int?
    /// The GTID of that transaction (how it is found again on another server, where its file
    /// and position differ).
    var part: String?

    enum CodingKeys: String, CodingKey {
        case file, pos, gtid, pending, after, known, delivered, part
        case executed = "gtid_set"
    }

    init(at: BinlogCoordinates, gtid: String? = nil) {
        self.at = at
        self.gtid = gtid
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        at = BinlogCoordinates(file: try c.decode(String.self, forKey: .file), position: try c.decode(UInt64.self, forKey: .pos))
        gtid = try c.decodeIfPresent(String.self, forKey: .gtid)
        executed = try c.decodeIfPresent(String.self, forKey: .executed)
        pending = try c.decodeIfPresent([String].self, forKey: .pending) ?? []
        after = try c.decodeIfPresent([String].self, forKey: .after)
        known = try c.decodeIfPresent([String].self, forKey: .known) ?? []
        delivered = try c.decodeIfPresent(Int.self, forKey: .delivered)
        part = try c.decodeIfPresent(String.self, forKey: .part)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at.file, forKey: .file)
        try c.encode(at.position, forKey: .pos)
        try c.encodeIfPresent(gtid, forKey: .gtid)
        try c.encodeIfPresent(executed, forKey: .executed)
        if !pending.isEmpty { try c.encode(pending, forKey: .pending) }
        try c.encodeIfPresent(after, forKey: .after)
        if !known.isEmpty { try c.encode(known, forKey: .known) }
        try c.encodeIfPresent(delivered, forKey: .delivered)
        try c.encodeIfPresent(part, forKey: .part)
    }

    static func parse(_ text: String) -> MySQLCDCPosition? {
        try? JSONDecoder().decode(MySQLCDCPosition.self, from: Data(text.utf8))
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
