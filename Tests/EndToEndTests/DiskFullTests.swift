import Foundation
import SluiceTesting
import Testing

/// Chaos: the file system that holds a pipeline's lake and its state database fills up
/// mid-run (a small tmpfs of the test's own, filled by another file). The pipeline pauses and
/// retries, `/readyz` says why, nothing half-written becomes visible, and once space is freed
/// it finishes with every row in the lake exactly once (DuckDB).
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct DiskFullTests {
    static let rows = 200_000

    @Test func aFullDiskPausesTheLakeAndTheStateUntilSpaceIsFreed() async throws {
        let dir = try makeWorkDirectory("disk-full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let volume = "\(dir)/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let mounted = try await runTool(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", volume], in: dir)
        try #require(mounted.status == 0, "mounting a tmpfs needs root (CI has it): \(mounted.output)")
        // Lazily: a process that still has a file open there must not keep the mount.
        defer { _ = try? SluiceProcess.collect(Self.unmount(volume)) }
        let lines = (1...Self.rows).map { "{\"id\":\($0),\"name\":\"row \($0) \(String(repeating: "x", count: $0 % 40))\",\"amount\":\($0 % 997).25}" }
        try write(lines.joined(separator: "\n") + "\n", to: "\(dir)/in/rows.ndjson")
        try write(
            """
            state: volume/state.db
            pipelines:
              p:
                source: { file: { path: "in/*.ndjson", format: ndjson, columns: { id: int64, name: string, amount: "decimal(10,2)" } } }
                sink: { parquet: { path: volume/lake, target_file_size: 256KB } }
                batch: { max_rows: 5000 }
                retry: { base_delay: 100ms, max_delay: 1s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let log = "\(dir)/sluice.log"
        // Held in its first commit (its first file written, the state not yet told) while the
        // disk fills: the state commit meets the full disk first.
        let hold = CommitHold(in: dir)
        let run = try SluiceProcess.start(
            ["run", "p.yaml", "--no-progress", "--metrics-port", "\(port)"], in: dir, log: log,
            environment: hold.environment.merging(["SLUICE_TEST_COMMIT_DELAY_MS": "100"]) { $1 })
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        try #require(try await hold.reached(), "the run never reached its first commit: \(logText().suffix(2_000))")
        // Another file takes every free byte.
        let filler = "\(volume)/filler"
        try await offPool { Self.fill(filler) }
        hold.release()

        let reply = try await waitUntilNotReady(port: port, mentioning: "paused, retrying", seconds: 60, while: run)
        #expect(
            reply?.isNotReady(mentioning: "paused, retrying") == true,
            "readyz with the disk full: \(reply?.summary ?? "no answer")\n\(logText().suffix(2_000))")
        try await Task.sleep(for: .seconds(3))
        #expect(run.isRunning, "the pipeline stopped on a full disk: \(logText().suffix(3_000))")
        #expect(logText().contains("No space left on device") || logText().contains("disk is full"), "the log names the cause")
        try FileManager.default.removeItem(atPath: filler)

        let ended = try await waitUntil(seconds: 300) { !run.isRunning }
        try #require(ended, "the pipeline did not finish once space was freed: \(logText().suffix(3_000))")
        #expect(run.terminationStatus == 0, "\(logText().suffix(3_000))")
        let counted = try await runTool(
            [
                "python3", "-c",
                "import duckdb; print(*duckdb.sql(\"SELECT count(*), count(DISTINCT id), CAST(sum(amount) * 100 AS BIGINT) FROM read_parquet('volume/lake/*.parquet')\").fetchall()[0])",
            ], in: dir)
        let cents = (1...Self.rows).reduce(0) { $0 + ($1 % 997) * 100 + 25 }
        #expect(counted.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(Self.rows) \(Self.rows) \(cents)", "every row once: \(counted.output)")
        // Readers skip hidden files (the lake's lock); a temporary file must not be left either.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(volume)/lake")) ?? []
        let stray = names.filter { $0.hasSuffix(".tmp") || (!$0.hasPrefix(".") && !$0.hasSuffix(".parquet")) }
        #expect(stray.isEmpty, "only whole files are left: \(stray)")
        print("chaos: the lake's and the state's file system filled 1 time; \(Self.rows) rows checked")
    }

    /// Writes `path` until the file system refuses (ENOSPC).
    static func fill(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x5A, count: 64 << 10)
        while chunk.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    static func unmount(_ path: String) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["umount", "-l", path]
        return p
    }
}
