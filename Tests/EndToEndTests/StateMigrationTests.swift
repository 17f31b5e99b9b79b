import Foundation
import SluiceTesting
import Testing

/// `sluice state migrate`: a pipeline killed mid-run on the embedded state moves to a shared
/// PostgreSQL store and back, and continues each time exactly where it was: every row once,
/// duplicates still recognized by their dedupe keys, dead letters kept. Migration refuses while
/// a pipeline uses the state, an import refuses a store that holds anything, and a truncated
/// export file is refused.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct StateMigrationTests {
    static let rows = 150_000

    /// Rows `ids` as CSV lines (`id,user`), and `bad` rows whose id is not a number.
    static func csv(_ ids: Range<Int>, bad: Int = 0) -> String {
        "id,user\n" + ids.map { "\($0),user_\($0 % 977)\n" }.joined() + (0..<bad).map { "not-a-number-\($0),x\n" }.joined()
    }

    static func config(state: String?) -> String {
        (state.map { "state: \"\($0)\"\n" } ?? "")
            + """
            pipelines:
              events:
                dedupe: { key: [id], ttl: 30d }
                batch: { max_rows: 2000 }
                source: { file: { path: "data/*.csv", columns: { id: int64 } } }
                sink: { ndjson: { path: out, max_file_size: 64KB } }
            """
    }

    @Test func aPipelineKilledMidRunMovesToPostgresAndBackAndContinuesExactly() async throws {
        let dir = try makeWorkDirectory("state-migrate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let database = "migrate_\(UUID().uuidString.prefix(8).lowercased())"
        try await psqlAsync("CREATE DATABASE \(database)")
        defer { _ = try? psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        let shared = try postgresURL().replacingOccurrences(of: "/postgres", with: "/\(database)")
        try write(Self.csv(0..<Self.rows, bad: 3), to: "\(dir)/data/a.csv")
        try write(Self.config(state: nil), to: "\(dir)/p.yaml")

        // A run on the embedded state, slowed down, is held at a commit once it wrote 10 000
        // rows (its hold passes while the release file exists): still running when the
        // migration is tried (and refused) whatever the machine's load, then killed. Files of
        // 64 KB make a commit every ~2,000 rows, about 70 in all: with 1 MB files (5 commits) a
        // loaded run once finished between the test seeing 10,000 rows and removing the file.
        let release = "\(dir)/release"
        FileManager.default.createFile(atPath: release, contents: nil)
        let run = try SluiceProcess.start(
            ["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/run.log",
            environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "40", "SLUICE_TEST_HOLD": "commit-prepared=\(release)"])
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        try #require(try await waitUntil(seconds: 120) { ((try? outputLines("\(dir)/out"))?.count ?? 0) >= 10_000 })
        try FileManager.default.removeItem(atPath: release)
        let held = try await waitUntil(seconds: 120) { FileManager.default.fileExists(atPath: release + ".reached") || !run.isRunning }
        try #require(held && run.isRunning, "the run ended before it could be held mid-way: make the input larger")
        let refused = try await SluiceProcess.runWithoutBlocking(["state", "migrate", "-c", "p.yaml", "--to", shared, "--yes"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("in use"), "\(refused.stdout) \(refused.stderr)")
        try #require(run.isRunning, "the run ended before it could be killed mid-way: make the input larger")
        kill(run.processIdentifier, SIGKILL)
        await waitForExit(run)
        let before = try outputLines("\(dir)/out").count
        #expect(before < Self.rows, "killed mid-run")

        // To PostgreSQL: the copy is checked table by table.
        let there = try await SluiceProcess.runWithoutBlocking(
            ["state", "migrate", "-c", "p.yaml", "--to", shared, "--yes", "--export", "backup.ndjson"], in: dir)
        try #require(there.status == 0, "\(there.stdout) \(there.stderr)")
        #expect(there.stdout.contains("dedupe_runs") && !there.stdout.contains("DIFFERENT"), "\(there.stdout)")
        #expect(!there.stdout.contains("sluice:sluice@"), "the password is never printed")
        try write(Self.config(state: shared), to: "\(dir)/p.yaml")
        // New rows, and rows seen before (duplicates by their dedupe key).
        try write(Self.csv(Self.rows..<(Self.rows + 1000)) + Self.csv(0..<1000).dropFirst("id,user\n".count), to: "\(dir)/data/b.csv")
        let onPostgres = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        try #require(onPostgres.status == 0, "\(onPostgres.stderr)")
        try Self.expectExactly(0..<(Self.rows + 1000), in: "\(dir)/out")
        let letters = try await SluiceProcess.runWithoutBlocking(["state", "show", "events", "-c", "p.yaml"], in: dir)
        #expect(letters.stdout.contains("dead letters: 3"), "\(letters.stdout)")
        // It went on from its checkpoint: the only duplicates were the 1,000 repeated rows (a
        // lost checkpoint would read a.csv again, its rows all duplicates by their keys).
        #expect(Self.latestRun(letters.stdout).hasSuffix("dup=1000"), "\(letters.stdout)")

        // And back to a SQLite file.
        let back = try await SluiceProcess.runWithoutBlocking(["state", "migrate", "-c", "p.yaml", "--to", "back.db", "--yes"], in: dir)
        try #require(back.status == 0, "\(back.stdout) \(back.stderr)")
        try write(Self.config(state: "back.db"), to: "\(dir)/p.yaml")
        try write(Self.csv((Self.rows + 1000)..<(Self.rows + 2000)) + Self.csv(500..<1500).dropFirst("id,user\n".count), to: "\(dir)/data/c.csv")
        let onSQLite = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        try #require(onSQLite.status == 0, "\(onSQLite.stderr)")
        try Self.expectExactly(0..<(Self.rows + 2000), in: "\(dir)/out")
        let shown = try await SluiceProcess.runWithoutBlocking(["state", "show", "events", "-c", "p.yaml"], in: dir)
        #expect(Self.latestRun(shown.stdout).hasSuffix("dup=1000"), "\(shown.stdout)")

        // An import never merges into a store that holds state.
        let merge = try await SluiceProcess.runWithoutBlocking(["state", "import", "--state", "back.db", "--input", "backup.ndjson", "--yes"], in: dir)
        #expect(merge.status != 0 && merge.stderr.contains("not empty"), "\(merge.stdout) \(merge.stderr)")
        // The export file round-trips into a new store; cut short, it is refused.
        let again = try await SluiceProcess.runWithoutBlocking(["state", "import", "--state", "again.db", "--input", "backup.ndjson", "--yes"], in: dir)
        #expect(again.status == 0 && !again.stdout.contains("DIFFERENT"), "\(again.stdout) \(again.stderr)")
        let full = try String(contentsOfFile: "\(dir)/backup.ndjson", encoding: .utf8)
        try write(full.split(separator: "\n").dropLast().joined(separator: "\n") + "\n", to: "\(dir)/cut.ndjson")
        let cut = try await SluiceProcess.runWithoutBlocking(["state", "import", "--state", "cut.db", "--input", "cut.ndjson", "--yes"], in: dir)
        #expect(cut.status != 0 && cut.stderr.contains("without its summary line"), "\(cut.stdout) \(cut.stderr)")
    }

    /// The newest run's line of `sluice state show`.
    static func latestRun(_ shown: String) -> String {
        let lines = shown.split(separator: "\n").map(String.init)
        guard let i = lines.firstIndex(of: "recent runs:"), i + 1 < lines.count else { return "" }
        return lines[i + 1].trimmingCharacters(in: .whitespaces)
    }

    /// The output holds each id of `ids` exactly once, and nothing else.
    static func expectExactly(_ ids: Range<Int>, in directory: String) throws {
        var seen = [Int](repeating: 0, count: ids.upperBound)
        var other = 0
        for line in try outputLines(directory) {
            guard line.hasPrefix("{\"id\":"), let id = Int(line.dropFirst(6).prefix { $0.isNumber }), ids.contains(id) else {
                other += 1
                continue
            }
            seen[id] += 1
        }
        let missing = ids.filter { seen[$0] == 0 }.count
        let twice = ids.filter { seen[$0] > 1 }.count
        #expect(missing == 0 && twice == 0 && other == 0, "missing \(missing), twice \(twice), other \(other)")
    }
}
