import Foundation
import SluiceMySQLProtocol
import Testing

/// Replays the MySQL fuzz corpus (`Fuzz/Corpus/FuzzMySQL/`) and every input fuzzing found a crash
/// with (`Fuzz/Regressions/FuzzMySQL/`) through the harness's entry point: each is parsed or
/// refused with a `MySQLProtocolError` (or the server's `MySQLServerError`), never a crash.
@Suite struct MySQLFuzzRegressionTests {
    static func inputs(filePath: String = #filePath) -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var inputs: [(String, [UInt8])] = []
        for folder in ["Fuzz/Corpus/FuzzMySQL", "Fuzz/Regressions/FuzzMySQL"] {
            let dir = root.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { inputs.append(("\(folder)/\(name)", Array(data))) }
            }
        }
        return inputs
    }

    /// The harness's entry point (Fuzz/Sources/FuzzMySQL): the first byte chooses the parser.
    static func parse(_ bytes: [UInt8]) throws {
        guard let mode = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
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
    }

    @Test func corpusAndRegressionsParseOrAreRefused() {
        let inputs = Self.inputs()
        #expect(inputs.count >= 10)
        for (name, bytes) in inputs {
            do {
                try Self.parse(bytes)
            } catch {
                #expect(error is MySQLProtocolError || error is MySQLServerError, "\(name): \(error)")
            }
        }
    }

    /// The seeds are real protocol bytes: each parses (the query error seed is the server's error).
    @Test func seedsParse() {
        for (name, bytes) in Self.inputs() where name.hasPrefix("Fuzz/Corpus") && !name.contains("query-error") {
            #expect((try? Self.parse(bytes)) != nil, "\(name)")
        }
    }
}
