import Foundation
import Testing
import SluiceTesting

/// DESIGN.md §2.1–2.2: after `kill -9` at random moments and restarts, the NDJSON output
/// holds every input row exactly once.
@Suite(.offCooperativePool, .serialized) struct CrashRecoveryTests {
    static let rows = 1_000_000

    /// A deterministic event CSV: id, user, amount (with nulls), url, created_at.
    static func generateCSV(_ path: String, rows: Int) throws {
        var text = "id,user,amount,url,created_at\n"
        text.reserveCapacity(rows * 80)
        var state: UInt64 = 42
        for i in 0..<rows {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let r = Int(state >> 33)
            let amount = r % 10 == 0 ? "" : "\(r % 100000).\(r % 100)"
            text +=
                "\(i),user_\(r % 5000),\(amount),https://example.com/p/\(r % 977),2026-11-\(String(format: "%02d", r % 28 + 1))T\(String(format: "%02d", r % 24)):\(String(format: "%02d", r % 60)):00Z\n"
        }
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// Reads the `id` field of every output line (the first key) without a JSON parser.
    static func ids(_ lines: [Substring]) -> [Int] {
        lines.compactMap { line in
            guard line.hasPrefix("{\"id\":") else { return nil }
            let digits = line.dropFirst(6).prefix { $0.isNumber }
            return Int(digits)
        }
    }

    /// The output holds each id of `0..<total` once: none missing, none twice, none foreign.
    static func expectEveryIDOnce(_ ids: [Int], total: Int) {
        #expect(ids.count == total, "output has \(ids.count) rows, expected \(total)")
        var seen = [Bool](repeating: false, count: total)
        var duplicates = 0, outOfRange = 0
        for id in ids {
            guard id >= 0 && id < total else { outOfRange += 1; continue }
            if seen[id] { duplicates += 1 }
            seen[id] = true
        }
        #expect(duplicates == 0)
        #expect(outOfRange == 0)
        #expect(seen.allSatisfy { $0 }, "missing \(seen.filter { !$0 }.count) rows")
    }

    @Test func killNineAtRandomMomentsLosesAndDuplicatesNothing() async throws {
        let dir = try makeWorkDirectory("crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/data", withIntermediateDirectories: true)
        try Self.generateCSV("\(dir)/data/events.csv", rows: Self.rows)
        try write(
            """
            pipelines:
              crash:
                source:
                  file: { path: data/events.csv }
                sink:
                  ndjson: { path: out, max_file_size: 4MB }
            """, to: "\(dir)/p.yaml")

        // Kill at random moments; if a run finishes first, the remaining kills cannot land.
        let kills = try await killRepeatedly(in: dir, kills: 8, delays: 200...2500, maxRuns: 40) { false }
        #expect(kills >= 3, "the run finished before enough kills landed; make the input larger")
        // Finish the job.
        let final = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")

        Self.expectEveryIDOnce(Self.ids(try outputLines("\(dir)/out")), total: Self.rows)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    /// Issue 23: 200 files read several at a time, large ones cut into pieces decoded side by
    /// side, with quoted line breaks that pieces must not cut; `kill -9` at random moments.
    @Test func twoHundredFilesReadInParallelKeepEveryRowOnceAcrossKills() async throws {
        let dir = try makeWorkDirectory("crash-files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/data", withIntermediateDirectories: true)
        var total = 0, quoted = 0
        for f in 0..<200 {
            let rows = f % 25 == 3 ? 60_000 : 5_000
            var text = "id,user,note\n"
            text.reserveCapacity(rows * 40)
            for r in 0..<rows {
                let id = total + r
                if r % 101 == 5 { quoted += 1 }
                text += r % 101 == 5 ? "\(id),u\(r % 300),\"two\nlines, \"\"quoted\"\"\"\n" : "\(id),u\(r % 300),plain \(r)\n"
            }
            total += rows
            try text.write(toFile: "\(dir)/data/\(String(format: "part-%03d", f)).csv", atomically: false, encoding: .utf8)
        }
        try write(
            """
            pipelines:
              files:
                source:
                  file: { path: "data/*.csv", threads: 4, batch_rows: 4000 }
                sink:
                  ndjson: { path: out, max_file_size: 4MB }
            """, to: "\(dir)/p.yaml")

        // Short delays: a run takes a few seconds, and one that ends before its kill ends the series.
        let kills = try await killRepeatedly(in: dir, kills: 10, delays: 100...900, maxRuns: 50) { false }
        #expect(kills >= 3, "the run finished before enough kills landed; make the input larger")
        let final = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")

        Self.expectEveryIDOnce(Self.ids(try outputLines("\(dir)/out")), total: total)
        // The quoted line breaks came through as data, not as rows.
        let notes = try outputLines("\(dir)/out").filter { $0.contains(#""note":"two\nlines, \"quoted\"""#) }.count
        #expect(notes == quoted)
    }
}
