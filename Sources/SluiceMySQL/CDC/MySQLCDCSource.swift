import Foundation
import Logging
import SluiceCore

/// Options of `source: {mysql_cdc: {...}}`; each one is declared, with its default, in ``MySQLCDCSource/spec``.
public struct MySQLCDCOptions: Decodable, Sendable {
    public enum SnapshotMode: String, Sendable { case initial, never }
    /// How a stream finds its place again.
    public enum ResumeMode: String, Sendable { case gtid, position }

    public var url: MySQLURL
    /// Captured tables, `database.table`.
    public var tables: [String] = []
    /// The replica id this client registers with (unique among the server's replicas).
    public var serverID: UInt32?
    public var snapshot: SnapshotMode = .initial
    public var snapshotChunk = 10_000
    /// How often an idle server sends a heartbeat (and so the longest a lone change waits).
    public var heartbeat: Duration = .milliseconds(100)
    public var resume: ResumeMode = .gtid

    enum CodingKeys: String, CodingKey {
        case url, tables, snapshot, heartbeat, resume
        case serverID = "server_id"
        case snapshotChunk = "snapshot_chunk"
    }

    public init(url: String, tables: [String], serverID: UInt32? = nil) throws {
        self.url = try MySQLURL(url)
        self.tables = tables
        self.serverID = serverID
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodeMySQLURL(forKey: .url)
        for t in try c.decode([String].self, forKey: .tables) {
            let parts = t.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw try c.superDecoder(forKey: .tables).configError("'\(t)' is not a table name; write database.table (shop.orders)")
            }
            tables.append(t)
        }
        guard !tables.isEmpty else { throw try c.superDecoder(forKey: .tables).configError("name at least one table (database.table)") }
        if let id = try c.decodeIfPresent(Int.self, forKey: .serverID, in: 1...4_294_967_295) { serverID = UInt32(id) }
        if let m = try c.decodeIfPresent(String.self, forKey: .snapshot) {
            guard let parsed = SnapshotMode(rawValue: m) else {
                throw try c.superDecoder(forKey: .snapshot).configError("unknown snapshot mode '\(m)'; use initial or never")
            }
            snapshot = parsed
        }
        if let m = try c.decodeIfPresent(String.self, forKey: .resume) {
            guard let parsed = ResumeMode(rawValue: m) else {
                throw try c.superDecoder(forKey: .resume).configError("unknown resume mode '\(m)'; use gtid or position")
            }
            resume = parsed
        }
        snapshotChunk = try c.decodeIfPresent(Int.self, forKey: .snapshotChunk, in: 1...1_000_000) ?? snapshotChunk
        if let h = try c.decodeIfPresent(ConfigDuration.self, forKey: .heartbeat) {
            guard h.duration >= .milliseconds(10), h.duration <= .seconds(60) else {
                throw try c.superDecoder(forKey: .heartbeat).configError("a heartbeat between 10ms and 60s")
            }
            heartbeat = h.duration
        }
    }
}

/// Log-based change data capture from MySQL and MariaDB: reads the binlog as a replica does
/// (`COM_REGISTER_SLAVE`, `COM_BINLOG_DUMP`) and emits one change event per row change
/// (``MySQLChangeEvents``), transaction by transaction in commit order. Needs row-based logging
/// with full table-map metadata (`binlog_format=ROW`, `binlog_row_metadata=FULL`), so every row
/// carries the names of the columns it was written with: a restart after a DDL decodes older
/// events with their own columns. Full row images (`binlog_row_image=FULL`) are best; with
/// MINIMAL or NOBLOB the columns the server did not log are left out of the events, and what
/// the binlog cannot say is refused (``MySQLBinlogStream/images(_:_:_:_:at:)``).
///
/// The checkpoint (``MySQLCDCPosition``) is the binlog file and position after the last
/// transaction committed downstream and the GTID position there; the stream resumes exactly
/// there (MariaDB: after the GTID position; MySQL: with the GTID set of everything before it,
/// `COM_BINLOG_DUMP_GTID`; on whichever server of the topology `url` names),
/// so nothing is read twice or skipped. A large transaction is handed over in parts,
/// each checkpointed as its start plus the changes delivered.
///
/// Snapshots (`snapshot: initial`) read each table's existing rows in key-ordered chunks while
/// streaming (``MySQLSnapshot``); tables added to `tables` later are snapshotted the same way.
public struct MySQLCDCSource: Source {
    public var options: MySQLCDCOptions
    /// The replica id: the option, or one derived from the pipeline name.
    public var serverID: UInt32

    public var isContinuous: Bool { true }

    public init(options: MySQLCDCOptions, pipeline: String) {
        self.options = options
        serverID = options.serverID ?? Self.defaultServerID(pipeline)
    }

    /// A replica id from the pipeline's name, stable across runs: FNV-1a into 1,000,000–4,000,999,999.
    static func defaultServerID(_ pipeline: String) -> UInt32 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in pipeline.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return UInt32(1_000_000 + hash % 4_000_000_000)
    }

    public static let spec = ComponentSpec(
        type: "mysql_cdc",
        summary: "change data capture from the MySQL or MariaDB binlog: a snapshot of existing rows, then one event per row change",
        options: [
            OptionSpec(
                "url", .string, required: true, example: #""${MYSQL_URL}""#, secret: true,
                "`mysql://user:password@host:3306/database` (or `mariadb://`), with `?tls=require` or `?tls=verify-full&ca=/path/ca.pem`; without TLS, a first `caching_sha2_password` login needs `server_public_key=/path/key.pem` or `get_server_public_key=true`; the user needs `REPLICATION SLAVE`, `REPLICATION CLIENT` and `SELECT` on the tables (`sluice cdc setup` checks). The password is never logged."
            ),
            OptionSpec(
                "tables", .list(.string), required: true, example: "[shop.orders, shop.customers]",
                "Tables to capture, `database.table`. Tables added later are snapshotted while streaming."),
            OptionSpec(
                "server_id", .integer(1...4_294_967_295), example: "4242",
                "The replica id Sluice registers with; it must differ from every other replica of the server. Default: derived from the pipeline name."
            ),
            OptionSpec(
                "snapshot", .choice(["initial", "never"]), default: "initial", example: "never",
                "`initial` reads the existing rows too (op `r`), chunk by chunk while streaming; `never` streams changes only."),
            OptionSpec(
                "snapshot_chunk", .integer(1...1_000_000), default: "10000", example: "50000",
                "Rows per snapshot chunk; each is read in its own consistent snapshot and committed, and a crash resumes after the last one."),
            OptionSpec(
                "resume", .choice(["gtid", "position"]), default: "gtid", example: "position",
                "How the stream finds its place again. `gtid`: after the checkpoint's GTID position (MariaDB) or GTID set (MySQL with `gtid_mode=ON`; else by position), wherever the server holds it, so a pipeline follows a failover to a replica (with `log_slave_updates`; point `url` at it). `position`: by binlog file and position on the same server."
            ),
            OptionSpec(
                "heartbeat", .duration, default: "100ms", example: "1s",
                "How often an idle server sends a heartbeat: the longest a lone change waits before it is handed over."),
        ],
        example: """
            source:
              mysql_cdc: { url: "${MYSQL_URL}", tables: [shop.orders], server_id: 4242 }
            """,
        capabilities: [.cdcAdministration],
        exampleFile: "examples/mysql-cdc.yaml"
    )

    public static let factory = SourceFactory(spec: spec) { config, context in
        MySQLCDCSource(options: try config.decodeOptions(MySQLCDCOptions.self), pipeline: context.pipeline)
    }

    var partition: String { "mysql_cdc" }

    public var readIdentities: [String] {
        options.tables.map { "mysql://\(options.url.host):\(options.url.port) \($0)" }
    }

    public func checkReachable() async throws {
        let c = try await MySQLConnection.connect(options.url)
        let problems: [String]
        do {
            problems = try await MySQLServerSettings.check(c, tables: options.tables)
        } catch {
            await c.close()
            throw error
        }
        await c.close()
        if !problems.isEmpty { throw SluiceError(.configuration, problems.joined(separator: "; "), retryable: false) }
    }

    public func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
        let stored = checkpoint[partition]
        let position = stored.flatMap(MySQLCDCPosition.parse)
        if stored != nil && position == nil {
            throw SluiceError(.corruptState, "the checkpoint of \(partition) is not a binlog position: \(stored!)", retryable: false)
        }
        let reader = try await MySQLCDCReader(source: self, checkpoint: position, context: context)
        return reader
    }
}
