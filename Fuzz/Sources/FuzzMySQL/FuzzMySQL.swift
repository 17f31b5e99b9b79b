#if canImport(Glibc)
    import Glibc
#endif
import SluiceMySQLProtocol

// The first byte chooses what the rest is: 0, a binlog (events one after the other, split by
// the size in each header, decoded with one decoder, as a dump delivers them); 1, a server
// greeting (HandshakeV10); 2, the packets answering a query (framed, read by the result-set
// reader); 3, an authentication reply; 4, a MySQL binary JSON document. Every failure must be
// a MySQLProtocolError (or the server's own error, MySQLServerError).

/// `SLUICE_FUZZ_VERBOSE=1`: print why each input was refused (to triage a corpus by hand).
let verbose = getenv("SLUICE_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMySQL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let rest = Array(bytes.dropFirst())
    do {
        switch mode % 5 {
        case 0:
            var decoder = MySQLBinlogDecoder()
            var offset = 0
            while rest.count - offset >= MySQLBinlogEventHeader.size {
                let size = Int(rest[offset + 9]) | Int(rest[offset + 10]) << 8 | Int(rest[offset + 11]) << 16 | Int(rest[offset + 12]) << 24
                guard size >= MySQLBinlogEventHeader.size, size <= rest.count - offset else { break }
                _ = try decoder.decode(Array(rest[offset..<(offset + size)]))
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
    } catch let error as MySQLProtocolError {
        if verbose { print("refused: \(error)") }
    } catch let error as MySQLServerError {
        if verbose { print("server error: \(error)") }
    } catch {
        fatalError("the MySQL parsers threw a \(type(of: error)): \(error)")
    }
    return 0
}
