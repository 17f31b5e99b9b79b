import Foundation
import SluiceTesting
import Testing

/// A Parquet file Sluice cannot read exactly is never skipped with a success: the run stops,
/// says which file and why, and reads it once the file is fixed or moved.
@Suite(.offCooperativePool) struct ParquetInputTests {
    @Test func aFileThatCannotBeReadExactlyStopsTheRunInsteadOfVanishing() async throws {
        let dir = try makeWorkDirectory("parquet-unreadable")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        let script = """
            import sys, pyarrow as pa, pyarrow.parquet as pq
            nanos = pa.array([1, 2], pa.timestamp('ns'))  # not whole microseconds: Sluice refuses to truncate
            pq.write_table(pa.table({'id': [1, 2], 'ts': nanos}), sys.argv[1] + '/in/nanos.parquet')
            pq.write_table(pa.table({'id': [3, 4]}), sys.argv[1] + '/in/flat.parquet')
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, dir]
        try ChildProcesses.run(python)
        python.waitUntilExit()
        try #require(python.terminationStatus == 0)
        try write(
            """
            pipelines:
              lake:
                source: { file: { path: "in/*.parquet", format: parquet } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(run.status != 0, "a file that was not read was reported as a success: \(run.stderr)")
        #expect(run.stderr.contains("nanos.parquet") && run.stderr.contains("nanosecond"), "\(run.stderr)")
    }
}
