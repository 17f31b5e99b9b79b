import SluiceMySQL
import Testing

/// MySQL 8's compressed transactions (`TRANSACTION_PAYLOAD_EVENT`): the events of each row
/// transaction of the MariaDB fixture (``BinlogFixture``), packed into a payload event as MySQL
/// writes one (fields as length-encoded type, length and value; then the events without their
/// checksums), decode to the same events as the plain file.
@Suite struct MySQLTransactionPayloadTests {
    /// The fixture's events, whole, in order.
    static func rawEvents() throws -> [[UInt8]] {
        let file = BinlogFixture.mariaDB1011
        var out: [[UInt8]] = []
        var pos = 4
        while pos < file.count {
            let header = try MySQLBinlogEventHeader(parsing: Array(file[pos..<(pos + 19)]))
            out.append(Array(file[pos..<(pos + Int(header.eventSize))]))
            pos += Int(header.eventSize)
        }
        return out
    }

    /// The fixture with the events after each transaction's GTID (up to its XID) packed into one
    /// payload event (`zstd`: a zstd frame of raw blocks, else compression type none). Returns
    /// the events and how many were packed.
    static func packed(zstd: Bool, tamper: (inout [UInt8]) -> Void = { _ in }) throws -> (events: [[UInt8]], packed: Int) {
        var out: [[UInt8]] = []
        var inner: [UInt8] = []
        var packing = false
        var count = 0
        for event in try rawEvents() {
            let type = event[4]
            if packing {
                // No checksum inside a payload: the event is 4 bytes shorter.
                var plain = Array(event[..<(event.count - 4)])
                for i in 0..<4 { plain[9 + i] = UInt8((plain.count >> (8 * i)) & 0xFF) }
                inner += plain
                count += 1
                if type == MySQLBinlogEventType.xid {
                    var body = payloadBody(inner, zstd: zstd)
                    tamper(&body)
                    out.append(wrap(body, like: event))
                    inner = []
                    packing = false
                }
                continue
            }
            out.append(event)
            // A MariaDB GTID of a transaction (not standalone DDL: flag 1 of its flags byte).
            if type == 162, event[19 + 12] & 0x01 == 0 { packing = true }
        }
        return (out, count)
    }

    static func lengthEncoded(_ v: UInt64) -> [UInt8] {
        if v < 251 { return [UInt8(v)] }
        if v < 1 << 16 { return [0xFC, UInt8(v & 0xFF), UInt8(v >> 8)] }
        if v < 1 << 24 { return [0xFD, UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v >> 16)] }
        return [0xFE] + (0..<8).map { UInt8((v >> (8 * $0)) & 0xFF) }
    }

    /// A field as MySQL encodes one: type, the value's length, the value (all length-encoded).
    static func field(_ type: UInt64, _ value: UInt64) -> [UInt8] {
        let v = lengthEncoded(value)
        return lengthEncoded(type) + lengthEncoded(UInt64(v.count)) + v
    }

    static func payloadBody(_ events: [UInt8], zstd: Bool) -> [UInt8] {
        let payload = zstd ? zstdFrame(events) : events
        var body = field(2, zstd ? 0 : 255)
        if zstd { body += field(3, UInt64(events.count)) }
        body += field(1, UInt64(payload.count)) + [0]
        return body + payload
    }

    /// A zstd frame holding `bytes` in raw blocks (valid zstd that any decoder reads), with its
    /// content size.
    static func zstdFrame(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xA0]  // magic; single segment, 4-byte content size
        out += (0..<4).map { UInt8((bytes.count >> (8 * $0)) & 0xFF) }
        var start = 0
        repeat {
            let size = min(bytes.count - start, 128 << 10)
            let last = start + size == bytes.count ? 1 : 0
            let header = last | size << 3  // block type 0: raw
            out += [UInt8(header & 0xFF), UInt8((header >> 8) & 0xFF), UInt8(header >> 16)]
            out += bytes[start..<(start + size)]
            start += size
        } while start < bytes.count
        return out
    }

    /// A checksummed payload event holding `body`, placed where `last` (its last inner event) ends.
    static func wrap(_ body: [UInt8], like last: [UInt8]) -> [UInt8] {
        var event = Array(last[..<19])
        event[4] = MySQLBinlogEventType.transactionPayload
        let size = 19 + body.count + 4
        for i in 0..<4 { event[9 + i] = UInt8((size >> (8 * i)) & 0xFF) }
        event += body
        return event + MySQLBinlogTests().crc32Bytes(event)
    }

    /// Decodes every event, unpacking payloads; nil payload events are counted.
    static func decodeAll(_ events: [[UInt8]]) throws -> (events: [MySQLBinlogEvent], payloads: Int) {
        var decoder = MySQLBinlogDecoder()
        var out: [MySQLBinlogEvent] = []
        var payloads = 0
        for bytes in events {
            let event = try decoder.decode(bytes).event
            guard case let .transactionPayload(payload) = event else {
                out.append(event)
                continue
            }
            payloads += 1
            var offset = 0
            while let (header, inner) = try decoder.decodeInner(payload, at: &offset) {
                #expect(header.type != MySQLBinlogEventType.transactionPayload)
                out.append(inner)
            }
            #expect(offset == payload.events.count)
        }
        return (out, payloads)
    }

    @Test(arguments: [false, true]) func compressedTransactionsDecodeToTheEventsOfThePlainFile(zstd: Bool) throws {
        let plain = try Self.decodeAll(try Self.rawEvents())
        let (events, packed) = try Self.packed(zstd: zstd)
        let unpacked = try Self.decodeAll(events)
        #expect(plain.payloads == 0)
        #expect(unpacked.payloads == 3, "the fixture's three row transactions")
        #expect(packed >= 9, "table maps, rows and XIDs were packed")
        #expect(unpacked.events == plain.events)
        let rows = unpacked.events.compactMap { if case let .rows(r) = $0 { r.kind } else { nil } }
        #expect(rows == [.insert, .insert, .update, .delete])
    }

    @Test func damagedPayloadsAreRefused() throws {
        func refused(_ what: String, saying reason: String, _ tamper: @escaping (inout [UInt8]) -> Void) {
            do {
                _ = try Self.decodeAll(try Self.packed(zstd: true, tamper: tamper).events)
                Issue.record("\(what) was decoded")
            } catch {
                #expect(error is MySQLProtocolError && "\(error)".contains(reason), "\(what): \(error)")
            }
        }
        // Fields: compression [2,1,0], uncompressed size [3,n,...], payload size [1,n,...], end [0].
        refused("an unknown compression type", saying: "compressed with type 7") { $0[2] = 7 }
        refused("a payload shorter than it says", saying: "that says it has") { $0.removeLast() }
        refused("a frame larger than the event says", saying: "zstd frame holds") { body in
            // The uncompressed size field says one byte less than the frame holds.
            let start = 3 + 2
            if body[start] == 0xFC { body[start + 1] &-= 1 } else { body[start] &-= 1 }
        }
        refused("a truncated inner event", saying: "inside a compressed transaction of") { body in
            // Compression none: cut the last inner event short and fix the sizes to match.
            let events = Array(Self.innerEvents(of: body).dropLast(3))
            body = Self.payloadBody(events, zstd: false)
        }
        refused("a payload inside a payload", saying: "of type 40 inside a compressed transaction") { body in
            var events = Self.innerEvents(of: body)
            events[4] = MySQLBinlogEventType.transactionPayload
            body = Self.payloadBody(events, zstd: false)
        }
    }

    /// The inner events of a zstd payload body made by ``payloadBody(_:zstd:)`` (its raw blocks).
    static func innerEvents(of body: [UInt8]) -> [UInt8] {
        var r = 0
        while body[r] != 0 {
            r += 1  // type (< 251)
            let length = Int(body[r])
            r += 1 + length
        }
        var frame = Array(body[(r + 1)...])
        frame.removeFirst(9)  // magic, descriptor, content size
        var out: [UInt8] = []
        while !frame.isEmpty {
            let header = Int(frame[0]) | Int(frame[1]) << 8 | Int(frame[2]) << 16
            let size = header >> 3
            out += frame[3..<(3 + size)]
            frame.removeFirst(3 + size)
        }
        return out
    }
}
