/// The entry point the MySQL fuzz harness (`Fuzz/Sources/FuzzMySQL`) and its regression replay
/// (`MySQLFuzzRegressionTests`) share: the first byte chooses the parser. 0, a binlog (events one
/// after the other, split by the size in each header, decoded with one decoder, as a dump delivers
/// them, compressed transactions unpacked); 1, a server greeting; 2, the packets answering a
/// query; 3, an authentication reply; 4, a MySQL binary JSON document. Every failure is a
/// ``MySQLProtocolError`` (or the server's ``MySQLServerError``).
public enum MySQLFuzzEntry {
    public static func parse(_ bytes: [UInt8]) throws {
        guard let mode = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        switch mode % 5 {
        case 0:
            var decoder = MySQLBinlogDecoder()
            var offset = 0
            while rest.count - offset >= MySQLBinlogEventHeader.size {
                let size = Int(rest[offset + 9]) | Int(rest[offset + 10]) << 8 | Int(rest[offset + 11]) << 16 | Int(rest[offset + 12]) << 24
                guard size >= MySQLBinlogEventHeader.size, size <= rest.count - offset else { break }
                if case let .transactionPayload(payload) = try decoder.decode(Array(rest[offset..<(offset + size)])).event {
                    let reader = try MySQLTransactionPayloadReader(payload)
                    while try decoder.decodeInner(reader) != nil {}
                }
                offset += size
            }
        case 1:
            _ = try MySQLServerHandshake(parsing: rest)
        case 2:
            var framer = MySQLPacketFramer(maxPayload: 1 << 20)
            framer.append(rest)
            var reader = MySQLQueryResponseReader(capabilities: [.protocol41, .deprecateEOF])
            while let packet = try framer.next() {
                if try reader.take(packet.payload) != nil { break }
            }
        case 3:
            _ = try MySQLAuthReply(parsing: rest, capabilities: .protocol41)
        default:
            _ = try MySQLBinaryJSON.text(rest)
        }
    }
}
