import Foundation
import SluiceTesting
import Testing

/// One transaction of millions of rows through log-based CDC: held in a file until its commit
/// arrives, then handed over a batch at a time, each part checkpointed. The process is
/// `kill -9`'d in the middle of it: the lake holds each change once, and the peak resident
/// memory of every run stays under the bound whatever the transaction's size.
@Suite(.offCooperativePool, .serialized) struct PostgresCDCLargeTransactionTests {
    static let rows = 5_000_000
    /// Peak RSS of a run (debug build) while it reads the transaction: the changes in memory are
    /// bounded by `ReplicationStream.spillChanges` and a batch.
    static let rssBound = 150 << 20

    /// `count(*), count(DISTINCT seq), min(seq), max(seq)` of the lake's changes (one transaction:
    /// its `seq` numbers each change once).
    static func lake(_ dir: String) async throws -> [Int] { try await offPool { try lakeNow(dir) } }

    static func lakeNow(_ dir: String) throws -> [Int] {
        do {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [
                "python3", "-c",
                "import duckdb, glob; c = duckdb.connect(); c.execute('SET enable_progress_bar = false'); "
                    + "print(*(c.sql(\"SELECT count(*), count(DISTINCT seq), coalesce(min(seq), -1), coalesce(max(seq), -1) FROM read_parquet('lake/**/*.parquet')\").fetchall()[0] if glob.glob('lake/**/*.parquet', recursive=True) else (0, 0, -1, -1)))",
            ]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            let r = try SluiceProcess.collect(p)
            guard r.status == 0 else { throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "duckdb: \(r.stderr)"]) }
            return r.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        }
    }

    @Test func aTransactionOfMillionsOfRowsArrivesOnceInBoundedMemoryAcrossKills() async throws {
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
        var sluice = try start()
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        try #require(try await waitForReadySlots([slot]), "the slot was not created: \(log())")
        try await psqlAsync("INSERT INTO \(s).t SELECT i, 'row ' || i FROM generate_series(1, \(Self.rows)) i")

        // A kill in the middle of the transaction: once some of its parts are committed (the
        // lake has changes), at a random moment after, while more are to come. (One kill: the
        // next run reads the whole transaction again, 2.5 minutes of a debug build.)
        var generator = SystemRandomNumberGenerator()
        let grew = try await waitUntil(seconds: 600, interval: .seconds(1)) { try Self.lakeNow(dir)[0] > 0 }
        try #require(grew, "no change reached the lake: \(log())")
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...3_000, using: &generator)))
        var peak = (SlowSinkTests.peakRSS(sluice.processIdentifier) ?? 0)
        kill(sluice.processIdentifier, SIGKILL)
        await waitForExit(sluice)
        let atKill = try await Self.lake(dir)[0]
        #expect(atKill > 0 && atKill < Self.rows, "the kill did not land in the middle of the transaction: \(atKill) of \(Self.rows) changes in the lake")
        sluice = try start()
        let done = try await waitUntil(seconds: 900, interval: .seconds(2)) { try Self.lakeNow(dir)[0] >= Self.rows }
        peak = max(peak, (SlowSinkTests.peakRSS(sluice.processIdentifier) ?? 0))
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(done, "the lake did not reach \(Self.rows) changes: \(log())")
        #expect(sluice.terminationStatus == 0, "\(log())")
        expectNothingMissing(log: "\(dir)/sluice.log")
        let counts = try await Self.lake(dir)
        #expect(counts == [Self.rows, Self.rows, 0, Self.rows - 1], "count, distinct seq, min, max: \(counts)")
        #expect(peak > 0 && peak < Self.rssBound, "peak RSS \(peak >> 20) MB, bound \(Self.rssBound >> 20) MB")
    }
}
