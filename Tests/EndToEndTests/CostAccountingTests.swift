import Foundation
import Testing
import SluiceTesting

/// Cost accounting: a known pipeline's usage matches the bytes of its input and of its lake, the
/// dollars match the prices by hand, it adds up across runs (restarts), and a run on another
/// day lands on that day.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct CostAccountingTests {
    static let config = """
        pricing: { storage_gb_month: 2, per_1000_requests: 0, cpu_hour: 0 }
        pipelines:
          priced:
            source: { file: { path: "in/*.ndjson" } }
            sink: { parquet: { path: lake } }
            pricing: { per_gb: 10 }
          tiered:
            source: { file: { path: "other/*.ndjson" } }
            sink: { ndjson: { path: out } }
        """

    static func input(_ path: String, from: Int, count: Int) throws -> Int {
        let text = (from..<from + count).map { "{\"id\":\($0),\"name\":\"user \($0)\",\"score\":\($0 % 97)}" }.joined(separator: "\n") + "\n"
        try write(text, to: path)
        return text.utf8.count
    }

    /// Bytes of the visible files under `dir`.
    static func bytes(under dir: String) -> Int {
        let walker = FileManager.default.enumerator(atPath: dir)
        var total = 0
        while let name = walker?.nextObject() as? String {
            guard !(name as NSString).lastPathComponent.hasPrefix(".") else { continue }
            let attributes = try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(name)")
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
        }
        return total
    }

    static func cost(_ dir: String) async throws -> [[String: Any]] {
        let r = try await SluiceProcess.runWithoutBlocking(["cost", "-c", "p.yaml", "--json", "--no-findings"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "usage" }
    }

    /// A pipeline's rows summed over days (a run may straddle midnight UTC): the numeric fields
    /// of usage and of `cost`.
    static func total(_ rows: [[String: Any]], _ pipeline: String) -> [String: Any]? {
        let mine = rows.filter { $0["pipeline"] as? String == pipeline }
        guard !mine.isEmpty else { return nil }
        var out: [String: Any] = ["pipeline": pipeline]
        for key in ["bytes_in", "bytes_out", "records_in", "records_out", "requests", "storage_bytes"] {
            out[key] = mine.reduce(0) { $0 + ($1[key] as? Int ?? 0) }
        }
        out["cpu_seconds"] = mine.reduce(0.0) { $0 + ($1["cpu_seconds"] as? Double ?? 0) }
        var cost: [String: Any] = [:]
        for key in ["ingest", "storage", "requests", "cpu", "total"] {
            cost[key] = mine.reduce(0.0) { $0 + (($1["cost"] as? [String: Any])?[key] as? Double ?? 0) }
        }
        out["cost"] = cost
        return out
    }

    static func close(_ a: Any?, _ b: Double) -> Bool {
        guard let a = a as? Double else { return false }
        return abs(a - b) <= max(1e-12, abs(b) * 1e-9)
    }

    @Test func usageMatchesTheBytesAndPricesByHandAcrossRestartsAndDays() async throws {
        let dir = try makeWorkDirectory("cost")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/p.yaml")
        let first = try Self.input("\(dir)/in/1.ndjson", from: 0, count: 20_000)
        let other = try Self.input("\(dir)/other/1.ndjson", from: 0, count: 5_000)
        let run1 = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(run1.status == 0, "\(run1.stderr)")
        var rows = try await Self.cost(dir)
        var priced = try #require(Self.total(rows, "priced"), "\(rows)")
        let lake1 = Self.bytes(under: "\(dir)/lake")
        #expect(priced["bytes_in"] as? Int == first && priced["records_in"] as? Int == 20_000 && priced["records_out"] as? Int == 20_000)
        #expect(priced["storage_bytes"] as? Int == lake1, "the lake's files: \(lake1) bytes; \(priced)")
        #expect((priced["cpu_seconds"] as? Double ?? 0) > 0)
        var cost = try #require(priced["cost"] as? [String: Any])
        // per_gb 10 (the pipeline's own), storage 2 $/GB-month (the file's).
        #expect(Self.close(cost["ingest"], Double(first) / 1e9 * 10), "\(cost)")
        #expect(Self.close(cost["storage"], Double(lake1) / 1e9 * 2), "\(cost)")
        #expect(Self.close(cost["total"], Double(first) / 1e9 * 10 + Double(lake1) / 1e9 * 2), "\(cost)")
        // No per_gb: a run that ends by itself is a daily batch, > 24 h: $0.0075/GB.
        let tiered = try #require(Self.total(rows, "tiered"), "\(rows)")
        #expect(tiered["bytes_in"] as? Int == other)
        #expect(Self.close((tiered["cost"] as? [String: Any])?["ingest"], Double(other) / 1e9 * 0.0075), "\(tiered)")

        // A second run (a restart) adds to the same day.
        let second = try Self.input("\(dir)/in/2.ndjson", from: 20_000, count: 10_000)
        #expect(try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir).status == 0)
        rows = try await Self.cost(dir)
        priced = try #require(Self.total(rows, "priced"))
        let lake2 = Self.bytes(under: "\(dir)/lake")
        #expect(priced["bytes_in"] as? Int == first + second && priced["storage_bytes"] as? Int == lake2, "\(rows)")
        cost = try #require(priced["cost"] as? [String: Any])
        #expect(Self.close(cost["ingest"], Double(first + second) / 1e9 * 10), "\(cost)")

        // A run a day earlier (the accounting clock shifted by a test hook) lands on that day.
        let third = try Self.input("\(dir)/in/3.ndjson", from: 30_000, count: 1_000)
        let shifted = try await SluiceProcess.runWithoutBlocking(
            ["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir, environment: ["SLUICE_TEST_USAGE_CLOCK_SHIFT_S": "-86400"])
        #expect(shifted.status == 0)
        rows = try await Self.cost(dir).filter { $0["pipeline"] as? String == "priced" }
        let days = rows.compactMap { $0["day"] as? String }
        // The shifted run's day comes first and holds only its file (the others may straddle midnight).
        #expect(days.count >= 2 && days == days.sorted(), "\(days)")
        #expect(rows.first?["bytes_in"] as? Int == third, "\(rows)")
        #expect(Self.total(Array(rows.dropFirst()), "priced")?["bytes_in"] as? Int == first + second, "\(rows)")
        // The table has a line per day and a total.
        let table = try await SluiceProcess.runWithoutBlocking(["cost", "-c", "p.yaml", "--pipeline", "priced", "--no-findings"], in: dir)
        #expect(table.status == 0 && table.stdout.contains("total") && table.stdout.split(separator: "\n").count == days.count + 2, "\(table.stdout)")
    }
}

/// `sluice cost`'s findings: two pipelines on one table, nested lakes, a PostgreSQL target nobody
/// reads (flagged) next to one somebody does (not flagged), and a lake column always null.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(5))) struct IngestionFindingsTests {
    static func findings(_ dir: String) async throws -> [[String: Any]] {
        let r = try await SluiceProcess.runWithoutBlocking(["cost", "-c", "p.yaml", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "finding" }
    }

    static func pipelines(_ f: [String: Any]) -> [String] { (f["pipelines"] as? [String]) ?? [] }

    @Test func redundantPullsNestedLakesAndAnUnreadTableAreFlaggedAndAReadTableIsNot() async throws {
        let dir = try makeWorkDirectory("findings")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let schema = try makeSchema("findings")
        defer { _ = try? psql("DROP SCHEMA \(schema) CASCADE") }
        try await psqlAsync(
            "CREATE TABLE \(schema).src (id int PRIMARY KEY, v text); INSERT INTO \(schema).src SELECT i, 'v' || i FROM generate_series(1, 100) i")
        let url = try postgresURL()
        try write("{\"id\":1,\"note\":null}\n{\"id\":2,\"note\":null}\n", to: "\(dir)/in/1.ndjson")
        try write(
            """
            pipelines:
              pull:
                source: { postgres: { url: "\(url)", table: \(schema).src } }
                sink: { postgres: { url: "\(url)", table: \(schema).read_copy } }
              pull_again:
                source: { postgres: { url: "\(url)", table: \(schema).src } }
                sink: { postgres: { url: "\(url)", table: \(schema).unread_copy } }
              lake:
                source: { file: { path: "in/*.ndjson" } }
                sink: { parquet: { path: lake } }
              inner_lake:
                source: { file: { path: "in/*.ndjson" } }
                sink: { ndjson: { path: lake/inner } }
            """, to: "\(dir)/p.yaml")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")

        var found = try await Self.findings(dir)
        let redundant = found.filter { $0["kind"] as? String == "redundant_source" }.map(Self.pipelines)
        #expect(redundant.contains(["pull", "pull_again"]) && redundant.contains(["lake", "inner_lake"]), "\(found)")
        #expect(found.contains { $0["kind"] as? String == "overlapping_output" && Self.pipelines($0) == ["lake", "inner_lake"] }, "\(found)")
        // The first report counts the tables' scans; nothing is called unread yet.
        #expect(!found.contains { $0["kind"] as? String == "unread_output" && Self.pipelines($0).first?.hasPrefix("pull") == true }, "\(found)")

        // Somebody reads one copy.
        #expect(try await psqlAsync("SELECT count(*) FROM \(schema).read_copy") == ["100"])
        found = try await Self.findings(dir)
        let unread = found.filter { $0["kind"] as? String == "unread_output" }.flatMap(Self.pipelines)
        #expect(unread.contains("pull_again") && !unread.contains("pull"), "\(found)")
        // The inner lake's files were never read (whatever the mount's access-time policy).
        #expect(unread.contains("inner_lake"), "\(found)")
        // A column that never holds a value is a candidate to drop.
        let empty = found.first { $0["kind"] as? String == "null_columns" && Self.pipelines($0) == ["lake"] }
        #expect((empty?["message"] as? String)?.hasSuffix(": note") == true, "\(found)")
    }
}
