import SluiceMySQL
import Testing

/// The connection-phase codecs of the MySQL client/server protocol, byte for byte. The server
/// handshake is one MariaDB 10.11 sent; expected scrambles and responses were computed with
/// Python's hashlib and struct, not with this code.
@Suite struct MySQLProtocolTests {
    static func hex(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            let j = text.index(i, offsetBy: 2)
            out.append(UInt8(text[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// Captured from `mariadbd` 10.11.19 (Debian 12) on connect.
    static let mariaDBHandshake = hex(
        "680000000a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f670005000000762f256963357b3000fef7080200ff81150000000000001d00000079353a60566d43446b6f6c51006d7973716c5f6e61746976655f70617373776f726400"
    )

    @Test func aMariaDBHandshakeIsParsed() throws {
        var framer = MySQLPacketFramer()
        framer.append(Self.mariaDBHandshake.prefix(50))
        #expect(try framer.next() == nil, "half a packet waits for the rest")
        framer.append(Self.mariaDBHandshake.dropFirst(50))
        let packet = try #require(try framer.next())
        #expect(packet.sequence == 0)
        #expect(packet.payload.count == 104)
        let handshake = try MySQLServerHandshake(parsing: packet.payload)
        #expect(handshake.serverVersion == "5.5.5-10.11.19-MariaDB-0+deb12u1-log")
        #expect(handshake.version == "10.11.19-MariaDB-0+deb12u1-log")
        #expect(handshake.isMariaDB)
        #expect(handshake.connectionID == 5)
        #expect(handshake.scramble == Array("v/%ic5{0y5:`VmCDkolQ".utf8))
        #expect(handshake.authPlugin == "mysql_native_password")
        #expect(handshake.characterSet == 8)
        #expect(handshake.statusFlags == 2)
        #expect(handshake.capabilities.contains([.protocol41, .secureConnection, .pluginAuth, .pluginAuthLengthEncodedData]))
        #expect(!handshake.capabilities.contains(.ssl), "this server had no certificate")
        #expect(!handshake.capabilities.contains(.longPassword), "MariaDB leaves CLIENT_MYSQL clear")
        #expect(framer.bufferedBytes == 0)
    }

    @Test func truncatedOrForeignHandshakesAreRefusedWithTheirOffset() throws {
        let payload = Array(Self.mariaDBHandshake.dropFirst(4))
        #expect(throws: MySQLProtocolError.self) { try MySQLServerHandshake(parsing: Array(payload.prefix(40))) }
        do {
            _ = try MySQLServerHandshake(parsing: [9] + payload.dropFirst())
            Issue.record("protocol 9 was accepted")
        } catch let error as MySQLProtocolError {
            #expect(error.message.contains("protocol version 9"))
        }
        // A server that refuses at once (too many connections) sends ERR instead.
        let refusal: [UInt8] = [0xFF, 0x10, 0x04] + Array("Too many connections".utf8)
        #expect(throws: MySQLProtocolError.self) { try MySQLServerHandshake(parsing: refusal) }
    }

    @Test func scramblesMatchAnIndependentImplementation() {
        let scramble = Array(1...20) as [UInt8]
        #expect(MySQLAuthentication.nativePassword("secret", scramble: scramble) == Self.hex("b32bb3a583e1340c0a1108d58b1be49781ad8c2f"))
        #expect(
            MySQLAuthentication.cachingSHA2("secret", scramble: scramble)
                == Self.hex("746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9"))
        #expect(MySQLAuthentication.nativePassword("", scramble: scramble).isEmpty)
        #expect(MySQLAuthentication.response(plugin: "sha256_password", password: "x", scramble: scramble) == nil)
    }

    @Test func theHandshakeResponseIsLaidOutAsTheProtocolSays() throws {
        let offered = try MySQLServerHandshake(parsing: Array(Self.mariaDBHandshake.dropFirst(4))).capabilities
        let flags = MySQLHandshakeResponse.negotiate(server: offered.union(.longPassword), database: true, tls: false)
        let response = MySQLHandshakeResponse(
            capabilities: flags, user: "sluice",
            authResponse: Self.hex("b32bb3a583e1340c0a1108d58b1be49781ad8c2f"), database: "shop", authPlugin: "mysql_native_password")
        #expect(
            try response.encoded()
                == Self.hex(
                    "0da22a01000000012d0000000000000000000000000000000000000000000000736c756963650014b32bb3a583e1340c0a1108d58b1be49781ad8c2f73686f70006d7973716c5f6e61746976655f70617373776f726400"
                ))
        let ssl = response.sslRequest()
        #expect(ssl.count == 32)
        #expect(ssl[1] & 0x08 == 0x08, "CLIENT_SSL is bit 11")
        // MySQL takes the flags from the SSLRequest only: over TLS the response must carry the same.
        var overTLS = response
        overTLS.capabilities.insert(.ssl)
        #expect(Array(try overTLS.encoded().prefix(4)) == Array(ssl.prefix(4)))
    }

    @Test func largePayloadsAreSplitAndJoined() throws {
        for size in [0, 10, MySQLPacketFramer.maxPacketPayload - 1, MySQLPacketFramer.maxPacketPayload, MySQLPacketFramer.maxPacketPayload + 7] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let (bytes, next) = MySQLPacketFramer.frame(payload, sequence: 3)
            let parts = size / MySQLPacketFramer.maxPacketPayload + 1
            #expect(bytes.count == size + 4 * parts, "size \(size)")
            #expect(next == 3 &+ UInt8(parts))
            var framer = MySQLPacketFramer()
            // Fed in odd pieces, as a socket would.
            var offset = 0
            var got: [MySQLPacketFramer.Packet] = []
            while offset < bytes.count {
                let end = min(bytes.count, offset + 1_000_003)
                framer.append(bytes[offset..<end])
                while let p = try framer.next() { got.append(p) }
                offset = end
            }
            #expect(got.count == 1, "size \(size)")
            #expect(got.first?.payload == payload, "size \(size)")
            #expect(got.first?.sequence == next &- 1)
        }
        var small = MySQLPacketFramer(maxPayload: 100)
        small.append(MySQLPacketFramer.frame(Array(repeating: 1, count: 101), sequence: 0).bytes)
        #expect(throws: MySQLProtocolError.self) { try small.next() }
    }

    @Test func serverRepliesAreParsed() throws {
        let caps: MySQLCapabilities = [.protocol41, .transactions]
        // ERR 1045 (28000) Access denied.
        let denied = [0xFF, 0x15, 0x04] + Array("#28000Access denied for user 'sluice'".utf8)
        #expect(
            try MySQLAuthReply(parsing: denied, capabilities: caps)
                == .error(MySQLServerError(code: 1045, sqlState: "28000", message: "Access denied for user 'sluice'")))
        #expect(try MySQLAuthReply(parsing: [0, 0, 0, 2, 0, 0, 0], capabilities: caps) == .ok)
        let switchRequest = [0xFE] + Array("caching_sha2_password".utf8) + [0] + Array(1...20) + [0]
        #expect(try MySQLAuthReply(parsing: switchRequest, capabilities: caps) == .switchMethod(plugin: "caching_sha2_password", data: Array(1...20)))
        #expect(try MySQLAuthReply(parsing: [0x01, 0x03], capabilities: caps) == .moreData([3]))
        #expect(throws: MySQLProtocolError.self) { try MySQLAuthReply(parsing: [0x42], capabilities: caps) }
        let ok = try MySQLOK(parsing: [0x00, 0xFC, 0x10, 0x27, 0x05, 0x02, 0x00, 0x01, 0x00] + Array("done".utf8), capabilities: caps)
        #expect(ok.affectedRows == 10_000)
        #expect(ok.lastInsertID == 5)
        #expect(ok.statusFlags == 2)
        #expect(ok.warnings == 1)
        #expect(ok.info == "done")
    }

    @Test func lengthEncodedValuesRoundTripAtEveryWidth() throws {
        for value: UInt64 in [0, 250, 251, 0xFFFF, 0x1_0000, 0xFF_FFFF, 0x100_0000, .max] {
            var w = MySQLByteWriter()
            w.lengthEncodedInteger(value)
            var r = MySQLByteReader(w.bytes)
            #expect(try r.lengthEncodedInteger() == value)
            #expect(r.isAtEnd)
        }
        var null = MySQLByteReader([0xFB])
        #expect(try null.lengthEncodedBytes() == nil)
        var bad = MySQLByteReader([0xFF])
        #expect(throws: MySQLProtocolError.self) { try bad.lengthEncodedInteger() }
        var short = MySQLByteReader([0x05, 1, 2])
        do {
            _ = try short.lengthEncodedBytes("column name")
            Issue.record("a string longer than the packet was read")
        } catch let error as MySQLProtocolError {
            #expect(error.offset == 0)
            #expect(error.message.contains("column name"))
        }
    }
}
