import Foundation
import NIOSSL
import SluiceCore

/// A client session with a MySQL or MariaDB server over its client/server protocol: the
/// handshake (TLS as the URL asks, `mysql_native_password`, `caching_sha2_password` with its
/// RSA-encrypted full login when there is no TLS), text-protocol queries, and the binlog stream
/// of a replica (``startBinlogDump(file:position:gtid:gtidSet:serverID:heartbeat:)``).
///
/// One caller at a time: a connection is a sequence of commands, each answered in turn.
public final class MySQLConnection {
    let channel: MySQLPacketChannel
    public let url: MySQLURL
    public let server: MySQLServerHandshake
    public private(set) var capabilities: MySQLCapabilities
    public private(set) var isTLS: Bool
    /// The sequence id the next packet sent carries.
    var sequence: UInt8 = 0
    /// How long a query may take before the connection is given up.
    public var queryTimeout: Duration = .seconds(300)

    private init(channel: MySQLPacketChannel, url: MySQLURL, server: MySQLServerHandshake, capabilities: MySQLCapabilities, isTLS: Bool) {
        self.channel = channel
        self.url = url
        self.server = server
        self.capabilities = capabilities
        self.isTLS = isTLS
    }

    /// Connects and authenticates. Refusals (wrong password, unknown user, TLS required but not
    /// offered) are not retryable; a server that cannot be reached is.
    public static func connect(_ url: MySQLURL, timeout: Duration = .seconds(10)) async throws -> MySQLConnection {
        let channel = try await MySQLPacketChannel.connect(host: url.host, port: url.port, timeout: timeout)
        do {
            return try await handshake(channel, url: url, timeout: timeout)
        } catch {
            await channel.close()
            throw error
        }
    }

    private static func handshake(_ channel: MySQLPacketChannel, url: MySQLURL, timeout: Duration) async throws -> MySQLConnection {
        let greeting = try await channel.next(timeout: timeout)
        if greeting.payload.first == 0xFF {
            throw refusal(MySQLServerError(parsing: greeting.payload, capabilities: .protocol41), url: url)
        }
        let server = try MySQLServerHandshake(parsing: greeting.payload)
        let offersTLS = server.capabilities.contains(.ssl)
        let useTLS: Bool
        switch url.tls {
        case .disable: useTLS = false
        case .prefer: useTLS = offersTLS
        case .require, .verifyFull:
            guard offersTLS else {
                throw SluiceError(
                    .configuration, "the MySQL server at \(url.host):\(url.port) does not offer TLS, and the URL asks for tls=\(url.tls.rawValue)",
                    retryable: false)
            }
            useTLS = true
        }
        let flags = MySQLHandshakeResponse.negotiate(server: server.capabilities, database: url.database != nil, tls: useTLS)
        let plugin = server.authPlugin.isEmpty ? "mysql_native_password" : server.authPlugin
        var response = MySQLHandshakeResponse(
            capabilities: flags, user: url.user, authResponse: [], database: url.database, authPlugin: plugin)
        response.authResponse = MySQLAuthentication.response(plugin: plugin, password: url.password, scramble: server.scramble) ?? []
        if server.capabilities.contains(.connectAttributes) { response.attributes = [("_client_name", "sluice"), ("program_name", "sluice")] }
        let connection = MySQLConnection(channel: channel, url: url, server: server, capabilities: response.flags, isTLS: useTLS)
        connection.sequence = greeting.sequence &+ 1
        if useTLS {
            try await connection.writePacket(response.sslRequest())
            var tls = TLSConfiguration.makeClientConfiguration()
            // A server streaming the binlog does not answer close_notify: do not wait long for it.
            tls.shutdownTimeout = .milliseconds(200)
            if url.tls == .verifyFull {
                if let ca = url.caFile { tls.trustRoots = .file(ca) }
            } else {
                tls.certificateVerification = .none
            }
            let isAddress = url.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" }
            try await channel.startTLS(tls, serverHostname: isAddress ? nil : url.host)
        }
        try await connection.writePacket(response.encoded())
        try await connection.authenticate(plugin: plugin, scramble: server.scramble, timeout: timeout)
        return connection
    }

    /// Answers the server's authentication replies until it accepts or refuses.
    private func authenticate(plugin initialPlugin: String, scramble initialScramble: [UInt8], timeout: Duration) async throws {
        var plugin = initialPlugin, scramble = initialScramble
        // Asked the server for its RSA public key (a full caching_sha2_password login without TLS).
        var awaitingKey = false
        // The password went encrypted with an RSA key (a refusal then says so).
        var encrypted = false
        for _ in 0..<8 {
            let packet = try await readPacket(timeout: timeout)
            switch try MySQLAuthReply(parsing: packet, capabilities: capabilities) {
            case .ok:
                return
            case let .error(error):
                let refusal = Self.refusal(error, url: url)
                guard encrypted else { throw refusal }
                throw SluiceError(
                    refusal.code,
                    refusal.message + " (after a login with the password encrypted by the server's RSA key, without TLS: check the key, or use tls=require)",
                    retryable: refusal.isRetryable)
            case let .switchMethod(next, data):
                plugin = next
                scramble = data
                awaitingKey = false
                if plugin == "mysql_clear_password" && !isTLS {
                    throw SluiceError(
                        .configuration,
                        "the MySQL server asks for the password in clear text (mysql_clear_password); Sluice sends it only over TLS (tls=require)",
                        retryable: false)
                }
                guard let answer = MySQLAuthentication.response(plugin: plugin, password: url.password, scramble: scramble) else {
                    throw SluiceError(
                        .configuration,
                        "the MySQL user \(url.user) authenticates with \(plugin), which Sluice does not speak (it speaks mysql_native_password and caching_sha2_password)",
                        retryable: false)
                }
                try await writePacket(answer)
            case let .moreData(data):
                guard plugin == "caching_sha2_password", let status = data.first else {
                    throw MySQLProtocolError("unexpected authentication data for \(plugin)", at: 0)
                }
                if awaitingKey {
                    // The server's public key (PEM): the password goes encrypted with it.
                    awaitingKey = false
                    let pem = String(decoding: data, as: UTF8.self)
                    try await writePacket(try MySQLAuthentication.rsaEncryptedPassword(url.password, scramble: scramble, publicKeyPEM: pem))
                    encrypted = true
                    continue
                }
                switch status {
                case 3:  // fast authentication succeeded; an OK follows
                    continue
                case 4:
                    // Full authentication (the password is not cached on the server yet): the
                    // password itself over TLS; without TLS, encrypted with the server's RSA
                    // key: a pinned one, or (when the URL allows it) one asked for (byte 2).
                    // Never a key nobody vouched for: whoever answers for the server could read
                    // the password.
                    if isTLS {
                        try await writePacket(Array(url.password.utf8) + [0])
                    } else if let path = url.serverPublicKeyFile {
                        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
                            throw SluiceError(
                                .configuration, "cannot read the MySQL server's public key from \(path) (server_public_key in the URL)", retryable: false)
                        }
                        try await writePacket(try MySQLAuthentication.rsaEncryptedPassword(url.password, scramble: scramble, publicKeyPEM: pem))
                        encrypted = true
                    } else if url.getServerPublicKey {
                        awaitingKey = true
                        try await writePacket([0x02])
                    } else {
                        throw SluiceError(
                            .configuration,
                            "the MySQL server wants the full password of \(url.user) (caching_sha2_password, not cached yet), which Sluice sends in clear only over TLS: use tls=require, or give the server's RSA public key (server_public_key=/path/key.pem in the URL, or get_server_public_key=true to ask the server for it), or log in once with the mysql client so the server caches it",
                            retryable: false)
                    }
                default:
                    throw MySQLProtocolError("caching_sha2_password status \(status)", at: 0)
                }
            }
        }
        throw MySQLProtocolError("authentication did not end after 8 exchanges", at: 0)
    }

    static func refusal(_ error: MySQLServerError, url: MySQLURL) -> SluiceError {
        // 1045 access denied, 1044 no access to the database, 1049 unknown database: check the URL.
        SluiceError(
            .authentication, "the MySQL server at \(url.host):\(url.port) refused \(url.user): \(url.scrub(error.description))",
            retryable: [1040, 1203, 1129].contains(error.code))
    }

    // MARK: Packets

    func writePacket(_ payload: [UInt8]) async throws {
        let (bytes, next) = MySQLPacketFramer.frame(payload, sequence: sequence)
        sequence = next
        try await channel.write(bytes)
    }

    /// The next packet's payload.
    func readPacket(timeout: Duration) async throws -> [UInt8] {
        let packet = try await channel.next(timeout: timeout)
        sequence = packet.sequence &+ 1
        return packet.payload
    }

    /// Sends a command (a new exchange: sequence 0).
    func command(_ payload: [UInt8]) async throws {
        sequence = 0
        try await writePacket(payload)
    }

    // MARK: Queries

    /// Runs a statement; returns its rows (an empty set for a statement without).
    @discardableResult
    public func query(_ sql: String) async throws -> MySQLResultSet {
        try await command(MySQLCommand.query(sql))
        var reader = MySQLQueryResponseReader(capabilities: capabilities)
        while true {
            let payload = try await readPacket(timeout: queryTimeout)
            do {
                switch try reader.take(payload) {
                case nil: continue
                case .ok: return MySQLResultSet()
                case let .rows(result): return result
                }
            } catch let error as MySQLServerError {
                throw SluiceError(
                    .unavailable, "MySQL: \(error) (in: \(sql.prefix(200)))",
                    retryable: [1205, 1213, 2006, 2013, 1927, 1053].contains(error.code))
            }
        }
    }

    /// Runs statements that return no rows, one after the other.
    public func execute(_ statements: String...) async throws {
        for sql in statements { try await query(sql) }
    }

    // MARK: Replication

    /// Registers as a replica and asks for the binlog from `file` at `position`, or (MariaDB)
    /// from after the GTID position `gtid` (`domain-server-sequence` per domain, as
    /// `gtid_binlog_pos` shows it), wherever that is in this server's files, or (MySQL) every
    /// transaction the GTID set `gtidSet` does not hold (`COM_BINLOG_DUMP_GTID`); then read it
    /// with ``nextBinlogEvent(timeout:)``. `heartbeat`: the server sends a heartbeat event when it has
    /// had nothing to send for this long.
    public func startBinlogDump(
        file: String, position: UInt32, gtid: String? = nil, gtidSet: MySQLGTIDSet? = nil, serverID: UInt32, heartbeat: Duration
    ) async throws {
        let nanoseconds = heartbeat.nanosecondCount
        // The events carry checksums when the server writes them; the client says it reads them.
        // MySQL 8.0.26+ reads the `source_` names, older servers and MariaDB the `master_` ones.
        try await execute(
            "SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum",
            "SET @master_heartbeat_period = \(nanoseconds), @source_heartbeat_period = \(nanoseconds)")
        if server.isMariaDB {
            // 4: MariaDB's GTID events and annotate rows are understood (MARIA_SLAVE_CAPABILITY_GTID).
            try await execute("SET @mariadb_slave_capability = 4")
        }
        if let gtid {
            guard server.isMariaDB else { throw SluiceError(.unsupported, "resuming by GTID is built for MariaDB only", retryable: false) }
            // Strict: a position the server's binlog does not hold (purged, or a replica behind
            // the checkpoint) is an error, not a silent jump to somewhere else.
            guard !gtid.isEmpty, gtid.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-" || $0 == ",") }) else {
                throw SluiceError(
                    .corruptState, "'\(gtid.prefix(100))' is not a MariaDB GTID position (domain-server-sequence, comma-separated)", retryable: false)
            }
            try await execute("SET @slave_connect_state = '\(gtid)'", "SET @slave_gtid_strict_mode = 1")
        }
        try await command(MySQLCommand.registerReplica(serverID: serverID))
        let reply = try await readPacket(timeout: queryTimeout)
        if reply.first == 0xFF { throw Self.replicationError(MySQLServerError(parsing: reply, capabilities: capabilities)) }
        if let gtidSet {
            guard !server.isMariaDB else { throw SluiceError(.unsupported, "a MySQL GTID set cannot position a MariaDB binlog", retryable: false) }
            try await command(MySQLCommand.binlogDumpGTID(gtids: gtidSet, serverID: serverID))
            return
        }
        try await command(
            MySQLCommand.binlogDump(
                file: gtid == nil ? file : "", position: gtid == nil ? position : 4, serverID: serverID, annotate: server.isMariaDB))
    }

    /// The next binlog event (header, body and checksum). Throws the server's error (a binlog
    /// purged, a server id in use) or when the stream ends.
    public func nextBinlogEvent(timeout: Duration) async throws -> [UInt8] {
        let payload = try await readPacket(timeout: timeout)
        switch payload.first {
        case 0x00: return Array(payload.dropFirst())
        case 0xFF: throw Self.replicationError(MySQLServerError(parsing: payload, capabilities: capabilities))
        case 0xFE where payload.count < 9: throw SluiceError(.unavailable, "the MySQL server ended the binlog stream", retryable: true)
        default: throw MySQLProtocolError("a binlog packet starting with \(payload.first ?? 0)", at: 0)
        }
    }

    /// A replication error: 1236 (the binlog position is gone or invalid) is not retryable.
    static func replicationError(_ error: MySQLServerError) -> SluiceError {
        if error.code == 1236 {
            return SluiceError(
                .corruptState,
                "the MySQL server cannot send the binlog from the checkpoint: \(error.message). The changes since are gone (binlog purged?); "
                    + "take a new snapshot with `sluice cdc resnapshot PIPELINE`", retryable: false)
        }
        return SluiceError(.unavailable, "MySQL replication: \(error)", retryable: true)
    }

    public func close() async {
        try? await command(MySQLCommand.quit)
        await channel.close()
    }
}
