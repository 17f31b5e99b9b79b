import Foundation
import SluiceConnectors
import SluiceCore
import Testing

/// Replays the configuration fuzz corpus (`Fuzz/Corpus/FuzzYAML/`) and every input fuzzing found a
/// crash or hang with (`Fuzz/Regressions/FuzzYAML/`) through the loader: each loads, or is refused
/// with a located `ConfigError`, never a crash. (The harness registers only the components that
/// build without files or network; this replays with all of them, a superset.)
@Suite struct ConfigFuzzRegressionTests {
    static func inputs(filePath: String = #filePath) -> [(name: String, bytes: [UInt8])] {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var inputs: [(String, [UInt8])] = []
        for folder in ["Fuzz/Corpus/FuzzYAML", "Fuzz/Regressions/FuzzYAML"] {
            let dir = root.appendingPathComponent(folder)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
                if let data = FileManager.default.contents(atPath: dir.appendingPathComponent(name).path) { inputs.append(("\(folder)/\(name)", Array(data))) }
            }
        }
        return inputs
    }

    @Test func corpusLoadsOrIsRefusedWithAConfigError() {
        let inputs = Self.inputs()
        #expect(!inputs.isEmpty)
        let loader = ConfigLoader(
            registry: BuiltinComponents.registry, environment: ["PGURL": "postgres://fuzz@localhost/db", "EMPTY": ""], baseDirectory: "/fuzz")
        for (name, bytes) in inputs {
            do {
                _ = try loader.load(text: String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml")
            } catch {
                // The harness's components refuse with ConfigErrors only; a connector of the full
                // registry may also refuse its options with a SluiceError.
                #expect(error is ConfigError || error is SluiceError, "\(name): \(error)")
            }
        }
    }
}
