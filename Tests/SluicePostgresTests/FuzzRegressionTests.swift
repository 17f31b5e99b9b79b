import Foundation
import SluicePostgres
import Testing

/// Replays the pgoutput fuzz corpus (`Fuzz/Corpus/FuzzPgOutput/`) and every input fuzzing found a
/// crash or hang with (`Fuzz/Regressions/FuzzPgOutput/`) through the harness's entry points: each
/// message and replication frame decodes or is refused with a `PgOutputError`, never a crash.
@Suite struct PgOutputFuzzRegressionTests {
    static func inputs(filePath: String = #filePath) -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var inputs: [(String, [UInt8])] = []
        for folder in ["Fuzz/Corpus/FuzzPgOutput", "Fuzz/Regressions/FuzzPgOutput"] {
            let dir = root.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { inputs.append(("\(folder)/\(name)", Array(data))) }
            }
        }
        return inputs
    }

    @Test func corpusDecodesOrIsRefused() {
        let inputs = Self.inputs()
        #expect(!inputs.isEmpty)
        for (name, bytes) in inputs {
            do {
                _ = try PgOutputDecoder.decode(bytes)
            } catch {
                #expect(error is PgOutputError, "\(name): \(error)")
            }
            do {
                if case let .xLogData(_, _, _, payload) = try ReplicationFrame.decode(bytes) { _ = try PgOutputDecoder.decode(payload) }
            } catch {
                #expect(error is PgOutputError, "\(name): \(error)")
            }
        }
    }

    /// The seeds are the protocol's own layouts: each decodes (a message, or a frame).
    @Test func seedsAreValidMessagesOrFrames() {
        for (name, bytes) in Self.inputs() where name.hasPrefix("Fuzz/Corpus") {
            let frame = name.contains("/frame-")
            #expect((frame ? (try? ReplicationFrame.decode(bytes)) != nil : (try? PgOutputDecoder.decode(bytes)) != nil), "\(name)")
        }
    }
}
