import CZstd
import SluiceMySQL
import Testing

/// MySQL 8's compressed transactions (`TRANSACTION_PAYLOAD_EVENT`): the events of each row
/// transaction of the MariaDB fixture (``BinlogFixture``) packed into a payload event the way
/// MySQL's codec writes one (fields as length-encoded type, length and value; then the events
/// without their checksums) decode to the same events as the plain file. Three payload forms:
/// zstd streamed without the size in the frame (as MySQL 8.0.20 compresses), a zstd frame that
/// states its size, and no compression.
@Suite struct MySQLTransactionPayloadTests {
    enum Form: CaseIterable { case zstdStreamed, zstdSized, none }

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
    /// payload event, `repeats` times over (a large transaction). Returns the events and how many
    /// inner events were packed.
    static func packed(_ form: Form, repeats: Int = 1, tamper: (inout [UInt8]) -> Void = { _ in }) throws -> (events: [[UInt8]], packed: Int) {
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
                    var body = payloadBody(Array([[UInt8]](repeating: inner, count: repeats).joined()), form)
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
        return (out, count * repeats)
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

    /// MySQL's order: compression type, uncompressed size (unless none), payload size, end mark.
    static func payloadBody(_ events: [UInt8], _ form: Form) -> [UInt8] {
        let payload: [UInt8]
        switch form {
        case .zstdStreamed: payload = streamedZstd(events)
        case .zstdSized: payload = sizedZstdFrame(events)
        case .none: payload = events
        }
        var body = field(2, form == .none ? 255 : 0)
        if form != .none { body += field(3, UInt64(events.count)) }
        body += field(1, UInt64(payload.count)) + [0]
        return body + payload
    }

    /// zstd as MySQL 8.0.20 compresses a transaction: a stream whose size is not pledged, so the
    /// frame does not state it.
    static func streamedZstd(_ bytes: [UInt8]) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setPledgedSrcSize(context, ZSTD_CONTENTSIZE_UNKNOWN)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count) + 64)
        let written = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
                var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
                _ = ZSTD_compressStream2(context, &output, &input, ZSTD_e_continue)
                while ZSTD_compressStream2(context, &output, &input, ZSTD_e_end) != 0 {}
                return output.pos
            }
        }
        return Array(out[..<written])
    }

    /// A zstd frame that states its size, holding `bytes` in raw blocks (valid zstd any decoder reads).
    static func sizedZstdFrame(_ bytes: [UInt8]) -> [UInt8] {
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

    /// Decodes every event, unpacking payloads; counts the payload events.
    static func decodeAll(_ events: [[UInt8]]) throws -> (events: [MySQLBinlogEvent], payloads: Int) {
        var decoder = MySQLBinlogDecoder()
        var out: [MySQLBinlogEvent] = []
        var payloads = 0
        for bytes in events {
            let (outer, event) = try decoder.decode(bytes)
            guard case let .transactionPayload(payload) = event else {
                out.append(event)
                continue
            }
            payloads += 1
            let reader = try MySQLTransactionPayloadReader(payload)
            while let (header, inner) = try decoder.decodeInner(reader) {
                let placed = MySQLBinlogDecoder.placed(header, in: outer)
                #expect(placed.nextPosition == outer.nextPosition && placed.eventSize == outer.eventSize && placed.type == header.type)
                out.append(inner)
            }
        }
        return (out, payloads)
    }

    @Test(arguments: Form.allCases) func compressedTransactionsDecodeToTheEventsOfThePlainFile(form: Form) throws {
        let plain = try Self.decodeAll(try Self.rawEvents())
        let (events, packed) = try Self.packed(form)
        if form == .zstdStreamed {
            // The frame does not state its size (MySQL 8.0.20's).
            let payload = events.first { $0[4] == MySQLBinlogEventType.transactionPayload }!
            let frame = Self.split(Array(payload[19..<(payload.count - 4)])).payload
            #expect(frame.prefix(4) == [0x28, 0xB5, 0x2F, 0xFD], "a zstd frame")
            let size = frame.withUnsafeBufferPointer { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
            #expect(size == ZSTD_CONTENTSIZE_UNKNOWN)
        }
        let unpacked = try Self.decodeAll(events)
        #expect(plain.payloads == 0)
        #expect(unpacked.payloads == 3, "the fixture's three row transactions")
        #expect(packed >= 9, "table maps, rows and XIDs were packed")
        #expect(unpacked.events == plain.events)
        let rows = unpacked.events.compactMap { if case let .rows(r) = $0 { r.kind } else { nil } }
        #expect(rows == [.insert, .insert, .update, .delete])
    }

    /// A transaction of several hundred KB decompresses step by step, across many of the
    /// reader's steps, to the same events.
    @Test(arguments: [Form.zstdStreamed, .zstdSized]) func aLargeCompressedTransactionIsReadInSteps(form: Form) throws {
        let (events, packed) = try Self.packed(form, repeats: 400)
        let unpacked = try Self.decodeAll(events)
        #expect(unpacked.payloads == 3)
        let xids = unpacked.events.filter { if case .xid = $0 { true } else { false } }
        #expect(xids.count == 3 * 400)
        #expect(unpacked.events.count == packed + (try Self.rawEvents().count - packed / 400))
    }

    @Test func damagedPayloadsAreRefused() throws {
        func refused(_ what: String, saying reason: String, _ form: Form = .zstdStreamed, _ tamper: @escaping (inout [UInt8]) -> Void) {
            do {
                _ = try Self.decodeAll(try Self.packed(form, tamper: tamper).events)
                Issue.record("\(what) was decoded")
            } catch {
                #expect(error is MySQLProtocolError && "\(error)".contains(reason), "\(what): \(error)")
            }
        }
        // Fields: compression [2,1,0], uncompressed size [3,n,...], payload size [1,n,...], end [0].
        refused("an unknown compression type", saying: "compressed with type 7") { $0[2] = 7 }
        refused("a payload shorter than it says", saying: "that says it has") { $0.removeLast() }
        refused("events longer than the event says", saying: "holds more than") { body in
            let at = 3 + 2  // the uncompressed size's value
            if body[at] == 0xFC { body[at + 1] &-= 1 } else { body[at] &-= 1 }
        }
        refused("events shorter than the event says", saying: "a compressed transaction of") { body in
            let at = 3 + 2
            if body[at] == 0xFC { body[at + 1] &+= 1 } else { body[at] &+= 1 }
        }
        refused("a zstd frame cut short", saying: "cut short", .zstdSized) { body in
            let (fields, frame) = Self.split(body)
            body = Self.field(2, 0) + Self.field(3, fields[3]!) + Self.field(1, UInt64(frame.count - 1)) + [0] + frame.dropLast()
        }
        refused("a truncated inner event", saying: "inside a compressed transaction of", .none) { body in
            body = Self.payloadBody(Array(Self.events(ofUncompressed: body).dropLast(3)), .none)
        }
        refused("a payload inside a payload", saying: "of type 40 inside a compressed transaction", .none) { body in
            var events = Self.events(ofUncompressed: body)
            events[4] = MySQLBinlogEventType.transactionPayload
            body = Self.payloadBody(events, .none)
        }
    }

    @Test func unknownFieldsOfAnyLengthAreSkippedAsMySQLDoes() throws {
        let (events, _) = try Self.packed(.zstdStreamed) { body in
            body = Self.lengthEncoded(9) + Self.lengthEncoded(300) + [UInt8](repeating: 7, count: 300) + body
        }
        #expect(try Self.decodeAll(events).payloads == 3)
    }

    /// A payload body's fields (by type) and its payload.
    static func split(_ body: [UInt8]) -> (fields: [UInt64: UInt64], payload: [UInt8]) {
        func lengthEncoded(_ r: inout Int) -> UInt64 {
            let first = body[r]
            let width = first == 0xFC ? 2 : first == 0xFD ? 3 : first == 0xFE ? 8 : 0
            r += 1
            guard width > 0 else { return UInt64(first) }
            defer { r += width }
            return (0..<width).reduce(UInt64(0)) { $0 | UInt64(body[r + $1]) << (8 * $1) }
        }
        var fields: [UInt64: UInt64] = [:]
        var r = 0
        while true {
            let type = lengthEncoded(&r)
            if type == 0 { break }
            _ = lengthEncoded(&r)
            fields[type] = lengthEncoded(&r)
        }
        return (fields, Array(body[r...]))
    }

    /// The events of an uncompressed payload body made by ``payloadBody(_:_:)``.
    static func events(ofUncompressed body: [UInt8]) -> [UInt8] { split(body).payload }
}
