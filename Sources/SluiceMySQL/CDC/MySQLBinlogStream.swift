import Foundation
import SluiceCore

/// Assembles binlog events into committed transactions of the captured tables, in commit
/// order, and keeps the position (file, position, GTIDs) after each. Pure: the reader feeds it
/// decoded events and hands over what is ``ready``.
///
/// A transaction starts at its GTID event (or `BEGIN`) and ends at its `XID` event (or a
/// `COMMIT` query); a DDL statement is a transaction of its own (a `TRUNCATE` of a captured
/// table becomes a change with op `t`). Transactions without changes of captured tables still
/// move the position on (consecutive ones are merged into one empty entry).
struct MySQLBinlogStream {
    /// Tables (`db.table`) whose changes are captured.
    let captured: Set<String>
    /// Collation id → character set name.
    let collations: [Int: String]
    let mariaDB: Bool
    /// The position after the last thing appended to ``ready`` (or where streaming started).
    var position: MySQLCDCPosition
    /// The binlog file events now come from.
    var file: String
    /// How far the server's events have been read, outside transactions: a snapshot chunk read
    /// at or before this point can be handed over.
    var seen: BinlogCoordinates
    /// Completed transactions (and snapshot chunks), in order, not yet handed over.
    var ready: [MySQLTransaction] = []
    /// The transaction being read.
    var open: Open?
    /// A transaction handed over in parts before a crash: the changes to skip when it comes
    /// again (it starts at the position the stream resumed from; by GTID, it is the one with
    /// this GTID).
    var skip: (start: BinlogCoordinates, gtid: String?, count: Int)?
    /// The latest GTID of each MariaDB replication domain.
    var domains: [UInt32: String] = [:]
    /// MySQL: the GTID set of every transaction before the open one (nil: not known yet).
    var executed: MySQLGTIDSet?
    /// MariaDB: the SQL of the current row statement (`ANNOTATE_ROWS`). Read only when an
    /// update comes without some columns: a REPLACE is logged so under MINIMAL, as an update of
    /// the columns it names, while the others took their defaults.
    var annotation: [UInt8]?
    /// Table maps of captured tables by table id, and their shapes.
    var shapes: [UInt64: (map: MySQLTableMap, shape: MySQLTableShape)] = [:]
    /// Shapes met since the reader last took them (for the schema registry), in order.
    var newShapes: [MySQLTableShape] = []

    struct Open {
        var start: BinlogCoordinates
        var gtid: String?
        var serverID: UInt32
        var timestamp: UInt32
        /// A MariaDB GTID with the standalone flag: one DDL statement, no COMMIT follows.
        var standalone = false
        /// A transaction of several statements (a BEGIN, or a MariaDB GTID without the
        /// standalone flag): only COMMIT, ROLLBACK or XID ends it.
        var explicit = false
        /// An XA transaction (`XA START`).
        var xa = false
        /// MySQL: its GTID's server and number.
        var sourceGTID: (uuid: [UInt8], number: UInt64)?
        var changes: [MySQLChange] = []
        /// Changes of this transaction seen so far (skipped and handed over ones included).
        var seen = 0
        /// Changes to leave out (delivered before a crash).
        var skip = 0
        /// Changes handed over already in parts.
        var handedOver = 0
    }

    /// What the reader should know about an event.
    enum Note: Equatable {
        case none
        /// A DDL statement (logged; rows carry their own column names).
        case ddl(database: String, sql: String)
        /// The server had nothing to send for the heartbeat period.
        case idle
    }

    /// - Parameter byGTID: the server streams from after `position.gtid` (MariaDB), wherever that
    ///   is in its files: `position.at` may be another server's place, so where the stream is
    ///   becomes known from the server's first rotate event.
    init(position: MySQLCDCPosition, captured: Set<String>, collations: [Int: String], mariaDB: Bool, byGTID: Bool = false) {
        self.position = position
        self.captured = captured
        self.collations = collations
        self.mariaDB = mariaDB
        file = byGTID ? "" : position.at.file
        seen = byGTID ? BinlogCoordinates(file: "", position: 0) : position.at
        // Found again by its GTID when one is recorded (resumed by position too: after a pending
        // skip was carried past other transactions, the checkpoint's place is not its start).
        if let delivered = position.delivered { skip = (position.at, position.part, delivered) }
        self.position.delivered = nil
        self.position.part = nil
        for part in (position.gtid ?? "").split(separator: ",") where mariaDB {
            if let domain = part.split(separator: "-").first.flatMap({ UInt32($0) }) { domains[domain] = String(part) }
        }
        if !mariaDB, let text = position.executed { executed = try? MySQLGTIDSet(parsing: text) }
    }

    /// The GTID position after the last transaction: MariaDB's per-domain list; on MySQL the
    /// last transaction's GTID.
    var gtidState: String? {
        domains.isEmpty ? (open?.gtid ?? position.gtid) : domains.keys.sorted().map { domains[$0]! }.joined(separator: ",")
    }

    mutating func receive(_ header: MySQLBinlogEventHeader, _ event: MySQLBinlogEvent) throws -> Note {
        // Events the server makes up for the client (the first rotate, the format description
        // of a resumed file) have no place in the file.
        let artificial = header.flags & 0x20 != 0 || header.nextPosition == 0
        let start = BinlogCoordinates(file: file, position: UInt64(header.nextPosition) &- UInt64(header.eventSize))
        let end = BinlogCoordinates(file: file, position: UInt64(header.nextPosition))
        switch event {
        case let .rotate(next, position):
            file = next
            if open == nil { seen = max(seen, BinlogCoordinates(file: next, position: position)) }
            return .none
        case let .mariaDBGTID(domain, sequence, standalone):
            let gtid = "\(domain)-\(header.serverID)-\(sequence)"
            open = Open(start: start, gtid: gtid, serverID: header.serverID, timestamp: header.timestamp, standalone: standalone, explicit: !standalone)
            domains[domain] = gtid
            beginSkip()
            return .none
        case let .mysqlGTID(uuid, number):
            let text = MySQLJSON.hex(uuid)
            let id = [text.prefix(8), text.dropFirst(8).prefix(4), text.dropFirst(12).prefix(4), text.dropFirst(16).prefix(4), text.dropFirst(20)]
                .map(String.init).joined(separator: "-")
            open = Open(start: start, gtid: "\(id):\(number)", serverID: header.serverID, timestamp: header.timestamp)
            open!.sourceGTID = (uuid, number)
            beginSkip()
            return .none
        case let .mariaDBAnnotateRows(sql):
            annotation = sql
            return .none
        case let .mysqlPreviousGTIDs(set):
            // Every transaction of the files before this one: all before this place. Added to
            // what is known (a stream resumed by GTID set knows more: the server skips what the
            // set holds), never taken for it.
            guard !mariaDB, open == nil, !artificial else { return .none }
            var known = executed ?? MySQLGTIDSet()
            known.formUnion(set)
            executed = known
            position.executed = known.description
            return .none
        case let .query(database, sql, _):
            let statement = Self.withoutLeadingComments(sql)
            let upper = statement.uppercased()
            if upper == "BEGIN" || upper.hasPrefix("XA START") {
                if open == nil {
                    open = Open(start: start, gtid: nil, serverID: header.serverID, timestamp: header.timestamp)
                    beginSkip()
                }
                open!.explicit = true
                if upper.hasPrefix("XA ") { open!.xa = true }
                return .none
            }
            if upper == "COMMIT" || upper.hasPrefix("XA COMMIT") || upper.hasPrefix("XA END") || upper.hasPrefix("XA PREPARE") {
                if open?.xa == true && open?.changes.isEmpty == false {
                    throw SluiceError(
                        .unsupported,
                        "an XA transaction changed captured tables (at \(start)); Sluice does not capture XA transactions yet", retryable: false)
                }
                if upper.hasPrefix("XA END") { return .none }
                commit(at: end, timestamp: header.timestamp)
                return .none
            }
            if upper == "ROLLBACK" {
                // Written after a transaction that also changed non-transactional tables was
                // rolled back: those changes stayed, the others did not, and the binlog does
                // not say which is which.
                if open?.changes.isEmpty == false || (open?.seen ?? 0) > 0 {
                    throw SluiceError(
                        .unsupported,
                        "a rolled-back transaction at \(start) changed captured tables together with non-transactional ones (MyISAM, Aria); Sluice cannot tell which of its changes stayed",
                        retryable: false)
                }
                commit(at: end, timestamp: header.timestamp)
                return .none
            }
            if let open, open.explicit {
                // Inside a transaction: savepoints are bookkeeping; any other statement is SQL
                // logged as such (a session with binlog_format=STATEMENT), whose rows are not
                // in the binlog. Refused when it names a captured table, else left alone.
                if upper.hasPrefix("SAVEPOINT") || upper.hasPrefix("RELEASE SAVEPOINT") || upper.hasPrefix("ROLLBACK TO") { return .none }
                if let table = captured.first(where: { Self.mentions(statement, table: $0) }) {
                    throw SluiceError(
                        .unsupported,
                        "a statement on \(table) was logged as SQL, not as rows (at \(start): \(statement.prefix(200))); a session used binlog_format=STATEMENT or MIXED, and its changes cannot be captured",
                        retryable: false)
                }
                return .ddl(database: database, sql: statement)
            }
            if open == nil { open = Open(start: start, gtid: nil, serverID: header.serverID, timestamp: header.timestamp) }
            if let table = Self.truncatedTable(statement, database: database), captured.contains(table) {
                add(MySQLChange(op: "t", table: table))
            }
            // DDL commits implicitly, and a standalone (DDL) GTID holds one statement.
            commit(at: end, timestamp: header.timestamp)
            return .ddl(database: database, sql: statement)
        case .xid:
            commit(at: end, timestamp: header.timestamp)
            return .none
        case let .tableMap(map):
            let name = map.database + "." + map.table
            guard captured.contains(name) else {
                // Table ids are reused (from 1 after a server restart): an old id of a captured
                // table must not stand for this one.
                shapes[map.tableID] = nil
                return .none
            }
            if let known = shapes[map.tableID], known.map == map { return .none }
            let shape = try MySQLTableShape(map: map, collations: collations, mariaDB: mariaDB)
            shapes[map.tableID] = (map, shape)
            newShapes.append(shape)
            return .none
        case let .rows(rows):
            guard let shape = shapes[rows.tableID]?.shape, shape.database == rows.database, shape.table == rows.table else { return .none }
            try addRows(rows, shape, at: start)
            return .none
        case let .heartbeat(named):
            // Everything up to here was sent (a stream resumed by GTID starts without saying
            // where its first unsent event is: the first heartbeat says it).
            if open == nil, let named, !named.isEmpty, header.nextPosition > 0 {
                seen = max(seen, BinlogCoordinates(file: named, position: UInt64(header.nextPosition)))
            }
            return .idle
        case .other(type: 26):
            // An incident: the server says its binlog misses changes (a replica must stop).
            throw SluiceError(
                .corruptState,
                "the binlog has an incident event at \(start): the server lost changes here; take a new snapshot with `sluice cdc resnapshot PIPELINE`",
                retryable: false)
        case .formatDescription, .other:
            if open == nil && !artificial { seen = max(seen, end) }
            return .none
        case .transactionPayload:
            // The reader hands over the events inside, one by one.
            throw SluiceError(.internalError, "a compressed transaction at \(start) reached the stream without being unpacked", retryable: false)
        }
    }

    /// Skips the changes delivered before a crash when this transaction is the one resumed in.
    mutating func beginSkip() {
        guard let s = skip, let t = open else { return }
        guard s.gtid == nil ? t.start == s.start : t.gtid == s.gtid else { return }
        open?.skip = s.count
        skip = nil
    }

    mutating func add(_ change: MySQLChange) {
        guard open != nil else { return }
        defer { open!.seen += 1 }
        guard open!.seen >= open!.skip else { return }
        open!.changes.append(change)
    }

    mutating func addRows(_ rows: MySQLRowsEvent, _ shape: MySQLTableShape, at start: BinlogCoordinates) throws {
        let table = shape.name
        let types = shape.columnTypes
        // Read from the statement's SQL the first time an update lacks columns.
        var replacing: Bool?
        let annotation = self.annotation
        func isReplace() -> Bool {
            if replacing == nil { replacing = annotation.map(Self.isReplace) ?? false }
            return replacing!
        }
        for row in rows.rows {
            let (before, after, partial) = try Self.images(row.before, row.after, rows.kind, shape, at: start, replacing: isReplace)
            let beforeJSON = try before.map { try MySQLRowRenderer.json($0, shape) }
            let afterJSON = try after.map { try MySQLRowRenderer.json($0, shape) }
            // The key of the row as it is now (its old key for a delete). An update that changes
            // the key stays one `u` with both images, as `postgres_cdc` sends it.
            let keyImage = after ?? before
            let key = shape.key.isEmpty ? nil : try keyImage.map { try MySQLRowRenderer.json($0, shape, keyOnly: true) }
            let op: String
            switch rows.kind {
            case .insert: op = "c"
            case .update: op = "u"
            case .delete: op = "d"
            }
            var change = MySQLChange(op: op, table: table, key: key, before: beforeJSON, after: afterJSON, types: types)
            change.partial = partial
            add(change)
        }
    }

    /// A row's images as they are delivered. With `binlog_row_image` FULL (the default) they are
    /// the binlog's. With MINIMAL or NOBLOB (set for the server or by a session) a column is
    /// absent from an image when the server did not log it, and is left out of the event, not
    /// set to null: a before image may hold only the key, and an update's after image only the
    /// columns it set (`mode: apply` keeps the others, as for an unchanged TOAST value). The
    /// columns an update did not set are unchanged, and are carried into its after image from its
    /// before image where that has them (the key; all columns of a table without a key, whose
    /// before image is whole), so every change names its key. An after image still without
    /// some columns is `partial`. `replacing` (asked only for an update that lacks columns) says
    /// whether its statement is a MariaDB REPLACE. What the binlog does not carry is
    /// refused rather than guessed: an insert without some of its columns (they took the
    /// server's defaults, which are not logged), an update that moves a row to a new key
    /// without the columns it did not set (the new key's row is not in the log), and (MariaDB,
    /// `replacing`) a REPLACE logged as an update without the columns it reset to defaults.
    static func images(
        _ before: [MySQLValue?]?, _ after: [MySQLValue?]?, _ kind: MySQLRowsEvent.Kind, _ shape: MySQLTableShape, at start: BinlogCoordinates,
        replacing: () -> Bool = { false }
    ) throws -> (before: [MySQLValue?]?, after: [MySQLValue?]?, partial: Bool) {
        guard after?.contains(where: { $0 == nil }) == true || before?.contains(where: { $0 == nil }) == true else { return (before, after, false) }
        func names(_ columns: [Int]) -> String { columns.map { shape.columns[$0].name }.joined(separator: ", ") }
        let fix =
            "set binlog_row_image = 'FULL' for the server and for the sessions that write to the table, then take a new snapshot with `sluice cdc resnapshot PIPELINE`"
        var image = after
        switch (kind, after, before) {
        case let (.insert, after?, _):
            throw SluiceError(
                .unsupported,
                "an insert into \(shape.name) at \(start) leaves out columns \(names(after.indices.filter { after[$0] == nil })), which took the server's defaults, and the binlog does not carry them (binlog_row_image is MINIMAL or NOBLOB); \(fix)",
                retryable: false)
        case (.update, var filled?, let before?):
            let moved = shape.key.filter { c in c < filled.count && c < before.count && filled[c] != nil && before[c] != nil && filled[c] != before[c] }
            // A column the update did not set is unchanged: its old value, where the before image
            // has it (the key; every column of a table without one), is its new value too.
            for c in filled.indices where c < before.count && filled[c] == nil { filled[c] = before[c] }
            let missing = filled.indices.filter { filled[$0] == nil }
            if !missing.isEmpty && replacing() {
                // The columns it does not name were reset to their defaults, not kept.
                throw SluiceError(
                    .unsupported,
                    "a REPLACE into \(shape.name) at \(start) replaced a row, and MariaDB logged it as an update of the columns it names; the others (\(names(missing))) took their defaults, which the binlog does not carry (binlog_row_image is MINIMAL or NOBLOB); \(fix)",
                    retryable: false)
            }
            if !moved.isEmpty && !missing.isEmpty {
                throw SluiceError(
                    .unsupported,
                    "an update of \(shape.name) at \(start) changes the key (\(names(moved))) but the binlog does not carry the row's other columns (\(names(missing))): binlog_row_image is MINIMAL or NOBLOB; \(fix)",
                    retryable: false)
            }
            image = filled
        default:
            break
        }
        let keyImage = kind == .delete ? before : image
        if let keyImage, let c = shape.key.first(where: { $0 >= keyImage.count || keyImage[$0] == nil }) {
            throw SluiceError(
                .malformedInput, "a change of \(shape.name) at \(start) has no value for its key column \(shape.columns[c].name)", retryable: false)
        }
        return (before, image, image?.contains(where: { $0 == nil }) ?? false)
    }

    mutating func commit(at end: BinlogCoordinates, timestamp: UInt32) {
        annotation = nil
        guard var t = open else { return }
        open = nil
        t.timestamp = timestamp
        position.at = end
        // MySQL: the transaction's own GTID (read before `open` was cleared, which the GTID
        // state falls back to).
        position.gtid = domains.isEmpty ? (t.gtid ?? position.gtid) : gtidState
        if let (uuid, number) = t.sourceGTID, executed != nil {
            executed!.insert(uuid, number)
            position.executed = executed!.description
        }
        // A transaction delivered in part that has not come again yet (resumed by GTID, another
        // domain's transactions may come first): its checkpoint goes on holding what to skip.
        position.delivered = skip?.count
        position.part = skip?.gtid
        seen = max(seen, end)
        let firstSeq = t.skip + t.handedOver
        if t.changes.isEmpty, let last = ready.last, last.changes.isEmpty, !last.snapshot {
            // Transactions without captured changes only move the position on.
            ready[ready.count - 1].end = end
            ready[ready.count - 1].gtid = t.gtid
            ready[ready.count - 1].position = position
            return
        }
        ready.append(
            MySQLTransaction(
                start: t.start, end: end, gtid: t.gtid, serverID: t.serverID, timestamp: timestamp, changes: t.changes,
                firstSeq: max(firstSeq, t.skip), position: position))
    }

    /// The open transaction's changes so far, handed over as a part (when it has grown large):
    /// checkpointed as its start with the changes delivered, so that after a crash the stream
    /// resumes at its start and skips those.
    mutating func takePart() -> MySQLTransaction? {
        // One checkpoint holds one partly delivered transaction: while another one's skip is
        // pending, this one stays whole.
        guard skip == nil, var t = open, !t.changes.isEmpty else { return nil }
        var at = position
        at.at = t.start
        at.delivered = t.skip + t.handedOver + t.changes.count
        at.part = t.gtid
        // The GTID position before this transaction.
        let part = MySQLTransaction(
            start: t.start, end: t.start, gtid: t.gtid, serverID: t.serverID, timestamp: t.timestamp, changes: t.changes,
            firstSeq: t.skip + t.handedOver, position: at)
        t.handedOver += t.changes.count
        t.changes = []
        open = t
        return part
    }

    /// Whether a statement's SQL is a REPLACE (or a LOAD DATA … REPLACE).
    static func isReplace(_ sql: [UInt8]) -> Bool {
        let upper = withoutLeadingComments(String(decoding: sql.prefix(4096), as: UTF8.self)).uppercased()
        return upper.hasPrefix("REPLACE") || (upper.hasPrefix("LOAD") && upper.contains(" REPLACE "))
    }

    /// A statement without the comments before it (`/* app */ TRUNCATE t`).
    static func withoutLeadingComments(_ sql: String) -> String {
        var rest = Substring(sql)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
            guard rest.hasPrefix("/*"), let end = rest.range(of: "*/") else { break }
            rest = rest[end.upperBound...]
        }
        return String(rest).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `statement` names `table` (`db.table`): its table name as a word, with or
    /// without backquotes (a deliberate over-approximation: refusing is the safe side).
    static func mentions(_ statement: String, table: String) -> Bool {
        guard let name = table.split(separator: ".").last.map(String.init)?.lowercased() else { return false }
        let words = statement.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "$") }
        return words.contains { $0 == name }
    }

    /// The table a `TRUNCATE [TABLE] [db.]name` statement empties, as `db.table`.
    static func truncatedTable(_ sql: String, database: String) -> String? {
        var words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        guard words.first?.uppercased() == "TRUNCATE" else { return nil }
        words.removeFirst()
        if words.first?.uppercased() == "TABLE" { words.removeFirst() }
        guard var name = words.first else { return nil }
        if name.hasSuffix(";") { name.removeLast() }
        let parts = name.split(separator: ".", maxSplits: 1).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
        return parts.count == 2 ? parts[0] + "." + parts[1] : database + "." + parts[0]
    }
}
