/// The command packets Sluice sends after authentication (the payloads; the framer adds the
/// header, sequence 0).
public enum MySQLCommand {
    /// `COM_QUERY`: a statement in the text protocol.
    public static func query(_ sql: String) -> [UInt8] { [0x03] + Array(sql.utf8) }

    /// `COM_QUIT`.
    public static let quit: [UInt8] = [0x01]

    /// `COM_PING`.
    public static let ping: [UInt8] = [0x0E]

    /// `COM_REGISTER_SLAVE`: announces this client as a replica with `serverID` (shown by
    /// `SHOW SLAVE HOSTS`); host, user and password are left empty, port 0.
    public static func registerReplica(serverID: UInt32) -> [UInt8] {
        var w = MySQLByteWriter()
        w.integer(0x15, 1)
        w.integer(UInt64(serverID), 4)
        w.integer(0, 1)  // hostname length
        w.integer(0, 1)  // user length
        w.integer(0, 1)  // password length
        w.integer(0, 2)  // port
        w.integer(0, 4)  // replication rank
        w.integer(0, 4)  // master id
        return w.bytes
    }

    /// `COM_BINLOG_DUMP`: stream the binlog from `file` at `position`. With an empty file name
    /// and a MariaDB server told `@slave_connect_state`, it streams from that GTID position.
    /// `annotate` (MariaDB): send each row statement's SQL first (`ANNOTATE_ROWS` events, flag
    /// `BINLOG_SEND_ANNOTATE_ROWS_EVENT`), where the server logs it.
    public static func binlogDump(file: String, position: UInt32, serverID: UInt32, annotate: Bool = false) -> [UInt8] {
        var w = MySQLByteWriter()
        w.integer(0x12, 1)
        w.integer(UInt64(position), 4)
        // Flags: block at the end of the binlog (no BINLOG_DUMP_NON_BLOCK); 2 asks for annotations.
        w.integer(annotate ? 0x02 : 0, 2)
        w.integer(UInt64(serverID), 4)
        w.append(Array(file.utf8))
        return w.bytes
    }

    /// `COM_BINLOG_DUMP_GTID` (MySQL): stream every transaction the server has that `gtids` does
    /// not hold, from the first binlog file that has one; transactions in the set are not sent.
    /// No flags (as MySQL's own replica sends it: the server reads the set whatever they say),
    /// no file name, position 4, then the set's binary form (``MySQLGTIDSet/encoded``) with its
    /// length.
    public static func binlogDumpGTID(gtids: MySQLGTIDSet, serverID: UInt32) -> [UInt8] {
        let set = gtids.encoded
        var w = MySQLByteWriter()
        w.integer(0x1E, 1)
        w.integer(0, 2)  // flags: blocks at the end of the binlog
        w.integer(UInt64(serverID), 4)
        w.integer(0, 4)  // file name length: none
        w.integer(4, 8)  // position
        w.integer(UInt64(set.count), 4)
        w.append(set)
        return w.bytes
    }
}
