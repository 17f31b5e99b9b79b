import Foundation
import SluiceConnectors
import SluiceCore
import SluiceTesting
import Synchronization
import Testing

/// The file source and the file sinks (and standard output) keep the connector contract
/// (``SourceConformance``, ``SinkConformance``) on real files; Parquet is read back by pyarrow.
@Suite(.offCooperativePool, .timeLimit(.minutes(3))) struct FileConformanceTests {
    let registry = BuiltinComponents.registry

    func directory(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The `id`s of every NDJSON line in the published files under `dir` (temporary files skipped).
    static func ndjsonIDs(under dir: String) throws -> [Int] {
        var ids: [Int] = []
        for path in FileManager.default.subpaths(atPath: dir) ?? [] where !(path as NSString).lastPathComponent.hasPrefix(".") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: "\(dir)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let text = try String(contentsOfFile: "\(dir)/\(path)", encoding: .utf8)
            for line in text.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let id = object?["id"] as? Int { ids.append(id) }
            }
        }
        return ids
    }

    @Test func theFileSourceKeepsTheContract() async throws {
        let dir = try directory("file-source")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        let files = Mutex(0)
        @Sendable func add(_ text: String) throws {
            let n = files.withLock {
                $0 += 1; return $0
            }
            try text.write(toFile: "\(dir)/in/\(String(format: "%04d", n)).ndjson", atomically: true, encoding: .utf8)
        }
        let fixture = SourceFixture(
            config: #"file: { path: "\#(dir)/in/*.ndjson", format: ndjson }"#,
            unreachableConfig: #"file: { path: "/nonexistent-\#(UUID().uuidString)/*.ndjson", format: ndjson }"#,
            state: MemoryStateStore(),
            append: { ids in try add(ids.map { #"{"id":\#($0),"name":"record \#($0)"}"# }.joined(separator: "\n") + "\n") },
            appendMalformed: { try add("{\"id\": 99, not json\n") })
        try await SourceConformance(registry: registry, fixture: fixture).run()
    }

    @Test func theNDJSONSinkKeepsTheContract() async throws {
        let dir = try directory("ndjson-sink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fixture = SinkFixture(
            config: #"ndjson: { path: "\#(dir)/out" }"#,
            unreachableConfig: #"ndjson: { path: "/proc/conformance-\#(UUID().uuidString)" }"#,
            state: MemoryStateStore(),
            readBack: { try Self.ndjsonIDs(under: "\(dir)/out") })
        try await SinkConformance(registry: registry, fixture: fixture).run()
    }

    @Test func theParquetSinkKeepsTheContract() async throws {
        let dir = try directory("parquet-sink")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            import glob, os, sys, pyarrow.parquet as pq
            ids = []
            for f in glob.glob(os.path.join(sys.argv[1], '**', '*.parquet'), recursive=True):
                if not os.path.basename(f).startswith('.'):
                    ids += pq.read_table(f).column('id').to_pylist()
            print(' '.join(map(str, ids)))
            """
        let fixture = SinkFixture(
            config: #"parquet: { path: "\#(dir)/lake" }"#,
            unreachableConfig: #"parquet: { path: "/proc/conformance-\#(UUID().uuidString)" }"#,
            state: MemoryStateStore(),
            readBack: { try python(script, "\(dir)/lake").split(separator: " ").compactMap { Int($0) } })
        try await SinkConformance(registry: registry, fixture: fixture).run()
    }

    @Test func standardOutputKeepsTheContract() async throws {
        let fixture = SinkFixture(config: "stdout: {}", unreachableConfig: nil, state: MemoryStateStore(), readBack: nil)
        try await SinkConformance(registry: registry, fixture: fixture).run()
    }

    @Test func theBlackholeKeepsTheContract() async throws {
        let fixture = SinkFixture(config: "blackhole: {}", unreachableConfig: nil, state: MemoryStateStore(), readBack: nil)
        try await SinkConformance(registry: registry, fixture: fixture).run()
    }
}

/// Runs `python3 -c script args…` and returns its standard output; throws with its standard error on failure.
func python(_ script: String, _ args: String...) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + args
    let out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
    process.standardOutput = out
    process.standardError = err
    try ChildProcesses.run(process)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw SluiceError(.internalError, "python3 failed: \(String(decoding: errors, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
