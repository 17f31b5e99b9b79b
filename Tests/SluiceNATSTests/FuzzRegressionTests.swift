import Foundation
import SluiceNATS
import Testing

/// Replays the NATS fuzz corpus (`Fuzz/Corpus/FuzzNATS/`) and every input fuzzing found a crash
/// or hang with (`Fuzz/Regressions/FuzzNATS/`) as the harness does: parsed at once and arriving in
/// three pieces, the operations (and whether a `NATSProtocolError` ends them) are the same.
@Suite struct NATSFuzzRegressionTests {
    static func inputs(filePath: String = #filePath) -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var inputs: [(String, [UInt8])] = []
        for folder in ["Fuzz/Corpus/FuzzNATS", "Fuzz/Regressions/FuzzNATS"] {
            let dir = root.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { inputs.append(("\(folder)/\(name)", Array(data))) }
            }
        }
        return inputs
    }

    func parse(_ pieces: [ArraySlice<UInt8>]) -> (ops: [NATSServerOp], failed: Bool) {
        var parser = NATSParser()
        parser.maxPayload = 1 << 20
        var ops: [NATSServerOp] = []
        do {
            for piece in pieces {
                parser.append(piece)
                while let op = try parser.next() { ops.append(op) }
            }
        } catch {
            #expect(error is NATSProtocolError, "\(error)")
            return (ops, true)
        }
        return (ops, false)
    }

    @Test func corpusParsesTheSameInPieces() {
        let inputs = Self.inputs()
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            let whole = parse([bytes[...]])
            let cuts = [0, bytes.count / 3, 2 * bytes.count / 3, bytes.count]
            let split = parse((0..<3).map { bytes[cuts[$0]..<cuts[$0 + 1]] })
            #expect(whole.ops == split.ops && whole.failed == split.failed, "\(name)")
            if name.hasPrefix("Fuzz/Corpus"), !name.hasSuffix("error.txt") { #expect(!whole.failed, "\(name) is a valid session") }
        }
    }
}
