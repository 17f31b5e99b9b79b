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

    /// The harness's entry point (Fuzz/Sources/FuzzMySQL).
    static func parse(_ bytes: [UInt8]) throws { try MySQLFuzzEntry.parse(bytes) }

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
