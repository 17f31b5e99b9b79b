import Foundation
import SluiceTesting
import Testing

/// `sluice plan`: every class of answer gives the documented pattern, tier and warnings, and a
/// starter file that `sluice validate` accepts; answers typed at the prompt give the same plan
/// as flags.
@Suite(.offCooperativePool) struct PlanTests {
    struct Case: Sendable, CustomStringConvertible {
        var flags: [String]
        var pattern: String
        var direction: String
        var tier: String
        var warning: String?
        var yaml: String
        var description: String { flags.joined(separator: " ") }
    }

    static func args(_ volume: String, _ freshness: String, _ source: String, _ changes: String, _ reliability: String = "at-least-once") -> [String] {
        ["--volume", volume, "--freshness", freshness, "--source", source, "--changes", changes, "--reliability", reliability]
    }

    static let cases: [Case] = [
        Case(
            flags: args("200GB/day", "15m", "postgres", "updates,deletes", "exactly-once"), pattern: "CDC", direction: "pull", tier: "15 min–1 h",
            yaml: "postgres_cdc:"),
        Case(flags: args("50GB/day", "6h", "postgres", "inserts,updates"), pattern: "batch", direction: "pull", tier: "1–24 h", yaml: "mode: incremental"),
        Case(
            flags: args("10GB/day", "30s", "postgres", "inserts"), pattern: "CDC", direction: "pull", tier: "< 1 min", warning: "streaming costs 3–5× more",
            yaml: "postgres_cdc:"),
        Case(flags: args("1GB/day", "5m", "sqlite", "inserts,deletes"), pattern: "CDC", direction: "pull", tier: "1–15 min", yaml: "mode: changelog"),
        Case(flags: args("1GB/day", "1d", "sqlite", "inserts"), pattern: "batch", direction: "pull", tier: "> 24 h", yaml: "mode: incremental"),
        Case(
            flags: args("5TB/month", "2h", "files", "inserts"), pattern: "batch", direction: "pull", tier: "1–24 h",
            yaml: "file: { path: \"incoming/*.ndjson\" }"),
        Case(
            flags: args("100GB/day", "5m", "files", "inserts,deletes"), pattern: "micro-batch", direction: "pull", tier: "1–15 min",
            warning: "deletes need CDC or soft deletes", yaml: "watch: true"),
        Case(
            flags: args("100GB/day", "30s", "s3", "inserts"), pattern: "streaming", direction: "pull", tier: "< 1 min", warning: "many small files",
            yaml: "s3://"),
        Case(flags: args("2GB/day", "1h", "http-api", "updates"), pattern: "batch", direction: "pull", tier: "1–24 h", yaml: "http_api:"),
        Case(
            flags: args("2GB/day", "30s", "http-api", "inserts"), pattern: "micro-batch", direction: "pull", tier: "< 1 min", warning: "APIs rate-limit",
            yaml: "http_api:"),
        Case(
            flags: args("300MB/hour", "10s", "push", "inserts", "exactly-once"), pattern: "streaming", direction: "push", tier: "< 1 min",
            yaml: "dedupe: { key: [event_id]"),
        Case(
            flags: args("300MB/hour", "1h", "push", "inserts"), pattern: "batch", direction: "push", tier: "1–24 h",
            warning: "the 1 h freshness you need allows hourly batch", yaml: "http: { stream: events }"),
        Case(flags: args("50GB/day", "5m", "queue", "inserts"), pattern: "micro-batch", direction: "pull", tier: "1–15 min", yaml: "jetstream:"),
        Case(
            flags: args("2TB/day", "30s", "queue", "inserts"), pattern: "streaming", direction: "pull", tier: "< 1 min", warning: "over 1 TB/day",
            yaml: "jetstream:"),
    ]

    @Test(arguments: cases) func eachClassGetsItsPatternAndAStarterThatValidates(_ c: Case) async throws {
        let dir = try makeWorkDirectory("plan")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await SluiceProcess.runWithoutBlocking(["plan", "--json", "--output-yaml", "p.yaml"] + c.flags, in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(plan["pattern"] as? String == c.pattern && plan["direction"] as? String == c.direction, "\(c): \(r.stdout)")
        #expect((plan["tier"] as? [String: Any])?["freshness"] as? String == c.tier, "\(c): \(r.stdout)")
        let warnings = plan["warnings"] as? [String] ?? []
        if let w = c.warning { #expect(warnings.contains { $0.contains(w) }, "\(c): \(warnings)") }
        let yaml = (try? String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8)) ?? ""
        #expect(yaml.contains(c.yaml) && yaml == plan["yaml"] as? String, "\(c): \(yaml)")
        let validate = try await SluiceProcess.runWithoutBlocking(["validate", "p.yaml"], in: dir)
        #expect(validate.status == 0, "\(c): \(validate.stdout)\(validate.stderr)\n\(yaml)")
    }

    @Test func theMonthlyEstimateIsTheVolumeTimesTheTiersPrices() async throws {
        let r = try await SluiceProcess.runWithoutBlocking(["plan", "--json"] + Self.args("200GB/day", "15m", "postgres", "updates,deletes"), in: "/tmp")
        let plan = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        let monthly = plan["monthly_usd"] as? [String: Double] ?? [:]
        // 200 GB a day, 30 days, at $0.02–0.05 per GB.
        #expect(abs((monthly["low"] ?? 0) - 120) < 1e-6 && abs((monthly["high"] ?? 0) - 300) < 1e-6, "\(monthly)")
        let text = try await SluiceProcess.runWithoutBlocking(["plan"] + Self.args("200GB/day", "15m", "postgres", "updates,deletes"), in: "/tmp")
        #expect(text.stdout.contains("Estimate:   6000 GB a month → $120–$300 a month") && text.stdout.contains("pipelines:"), "\(text.stdout)")
    }

    @Test func answersAtThePromptGiveTheSamePlanAsFlags() async throws {
        let flags = try await SluiceProcess.runWithoutBlocking(
            ["plan", "--json"] + Self.args("5TB/month", "90s", "queue", "inserts", "exactly-once"), in: "/tmp")
        let asked = try await offPool { () -> (Int32, String, String) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: SluiceProcess.binary)
            p.arguments = ["plan", "--json", "--interactive"]
            let input = ChildProcesses.pipe(), out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
            p.standardInput = input
            p.standardOutput = out
            p.standardError = err
            try ChildProcesses.run(p)
            // One wrong answer first: it is asked again.
            input.fileHandleForWriting.write(Data("lots\n5TB/month\n90s\nqueue\ninserts\nexactly-once\n".utf8))
            try input.fileHandleForWriting.close()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            let e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
        #expect(asked.0 == 0 && asked.1 == flags.stdout, "\(asked.1)\(asked.2)")
        #expect(asked.2.contains("How much data?") && asked.2.contains("cannot read 'lots'"), "\(asked.2)")
        // Not a terminal and not --interactive: missing answers are named.
        let missing = try await SluiceProcess.runWithoutBlocking(["plan", "--volume", "1GB/day"], in: "/tmp")
        #expect(missing.status != 0 && missing.stderr.contains("--freshness, --source, --changes, --reliability"), "\(missing.stderr)")
        let bad = try await SluiceProcess.runWithoutBlocking(["plan"] + Self.args("1GB/day", "soon", "postgres", "inserts"), in: "/tmp")
        #expect(bad.status != 0 && bad.stderr.contains("--freshness: cannot read 'soon'"), "\(bad.stderr)")
        for volume in ["inf", "nanGB/day", "12 furlongs/day"] {
            let refused = try await SluiceProcess.runWithoutBlocking(["plan"] + Self.args(volume, "1h", "postgres", "inserts"), in: "/tmp")
            #expect(refused.status != 0 && refused.stderr.contains("--volume: cannot read"), "\(volume): \(refused.stderr)")
        }
    }
}
