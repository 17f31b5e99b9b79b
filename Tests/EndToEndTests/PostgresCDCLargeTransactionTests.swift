import Foundation
import SluiceTesting
import Testing

/// Transactions far larger than memory through log-based CDC: held in a file until their commit
/// arrives, then handed over a batch at a time, each part checkpointed. A small transaction (that
/// spills already) sets the baseline of peak memory; a transaction ten times its size is
/// `kill -9`'d in its middle. The lake holds each change once, and neither run's peak resident
/// memory grows with the transaction's size.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCLargeTransactionTests {
    /// Rows of the small transaction: five times `ReplicationStream.spillChanges`.
    static let smallRows = 100_000
    /// Rows of the large transaction. Held in memory, its changes alone would take several
    /// hundred MB.
    static let largeRows = 1_000_000
    /// How much more than the small transaction's peak a run reading the large one may take:
    /// the allocator's slack, not the size of the data (unbounded, 900,000 more changes take
    /// well over 300 MB).
    static let rssSlack = 64 << 20

    /// `count(*)` of the lake's changes, or with `full` also `count(DISTINCT id), min(id),
    /// max(id)` of the rows they carry (every row is inserted once, so each id is one change).
    static func lake(_ dir: String, full: Bool = false) async throws -> [Int] { try await offPool { try lakeNow(dir, full: full) } }

    static func lakeNow(_ dir: String, full: Bool = false) throws -> [Int] {
        let columns =
            full
            ? "count(*), count(DISTINCT id), coalesce(min(id), -1), coalesce(max(id), -1) FROM (SELECT CAST(json_extract_string(after, '$.id') AS BIGINT) AS id"
            : "count(*) FROM (SELECT 1"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            "import duckdb, glob; c = duckdb.connect(); c.execute('SET enable_progress_bar = false'); "
                + "print(*(c.sql(\"SELECT \(columns) FROM read_parquet('lake/**/*.parquet'))\").fetchall()[0] if glob.glob('lake/**/*.parquet', recursive=True) else (0, 0, -1, -1)))",
        ]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let r = try SluiceProcess.collect(p)
        guard r.status == 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "duckdb: \(r.stderr)"]) }
        return r.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
    }

    @Test func transactionsLargerThanMemoryArriveOnceInBoundedMemoryAcrossKills() async throws {
        let url = try postgresURL()
        let s = try makeSchema("cdcbig")
        let slot = "slot_\(s)", publication = "pub_\(s)"
        defer { dropCDCObjects(slots: [slot], publication: publication, schemas: [s]) }
        try await psqlAsync("CREATE TABLE \(s).t (id int PRIMARY KEY, v text); CREATE PUBLICATION \(publication) FOR TABLE \(s).t;")
        let dir = try makeWorkDirectory("pg-cdc-big")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              big:
                source:
                  postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), snapshot: never }
                sink:
                  parquet: { path: lake, max_file_age: 1s }
            """, to: "\(dir)/p.yaml")
        func start() throws -> Process {
            try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log")
        }
        func log() -> String { String(((try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "").suffix(3_000)) }
        let small = Self.smallRows, total = Self.smallRows + Self.largeRows
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        try #require(try await waitForReadySlots([slot]), "the slot was not created: \(log())")

        // The baseline: the peak of a run that read a transaction five times what it keeps in memory.
        try await psqlAsync("INSERT INTO \(s).t SELECT i, 'row ' || i FROM generate_series(1, \(small)) i")
        let smallDone = try await waitUntil(seconds: 600, interval: .seconds(1)) { try Self.lakeNow(dir)[0] >= small }
        try #require(smallDone, "the small transaction did not reach the lake: \(log())")
        let baseline = SlowSinkTests.peakRSS(sluice.processIdentifier) ?? 0

        // A kill in the middle of the large transaction: once some of its parts are committed
        // (the lake has more than the small one), at a random moment after, while more are to come.
        try await psqlAsync("INSERT INTO \(s).t SELECT i, 'row ' || i FROM generate_series(\(small + 1), \(total)) i")
        var generator = SystemRandomNumberGenerator()
        let grew = try await waitUntil(seconds: 600, interval: .seconds(1)) { try Self.lakeNow(dir)[0] > small }
        try #require(grew, "no change of the large transaction reached the lake: \(log())")
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...2_000, using: &generator)))
        let killedPeak = SlowSinkTests.peakRSS(sluice.processIdentifier) ?? 0
        kill(sluice.processIdentifier, SIGKILL)
        await waitForExit(sluice)
        let atKill = try await Self.lake(dir)[0]
        #expect(atKill > small && atKill < total, "the kill did not land in the middle of the transaction: \(atKill) of \(total) changes in the lake")

        // The next run reads the whole transaction again and skips the parts committed.
        sluice = try start()
        let done = try await waitUntil(seconds: 900, interval: .seconds(2)) { try Self.lakeNow(dir)[0] >= total }
        let resumedPeak = SlowSinkTests.peakRSS(sluice.processIdentifier) ?? 0
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(done, "the lake did not reach \(total) changes: \(log())")
        #expect(sluice.terminationStatus == 0, "\(log())")
        expectNothingMissing(log: "\(dir)/sluice.log")
        let counts = try await Self.lake(dir, full: true)
        #expect(counts == [total, total, 1, total], "count, distinct id, min, max: \(counts)")
        print(
            "large transactions: peak RSS \(baseline >> 20) MB after \(small) changes, \(killedPeak >> 20) MB at the kill, \(resumedPeak >> 20) MB resumed (\(total) changes)"
        )
        #expect(baseline > 0 && killedPeak > 0 && resumedPeak > 0)
        #expect(
            killedPeak < baseline + Self.rssSlack && resumedPeak < baseline + Self.rssSlack,
            "peak RSS grew with the transaction: \(baseline >> 20) MB after \(small) changes, \(killedPeak >> 20) MB at the kill, \(resumedPeak >> 20) MB resumed"
        )
    }
}
