import ArgumentParser
import Foundation
import SluiceCore

/// `sluice plan`: the ingestion decision framework, answered.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Recommend an ingestion pattern, its cost and a starter pipeline from five answers.",
        discussion: """
            Five questions: how much data (--volume), how fresh it must be (--freshness), where it
            comes from (--source), what changes (--changes) and what reliability (--reliability).
            Missing answers are asked on a terminal. The answer: the pattern (batch, micro-batch,
            streaming, CDC; push or pull) and why, the cost tier per GB from the cost-vs-freshness
            table with a monthly estimate, warnings, the classic tools that would otherwise fit, and
            a starter pipeline file that `sluice validate` accepts.

            Cost per GB ingested by freshness:
              < 1 min      streaming       $0.10–0.50
              1–15 min     micro-batch     $0.05–0.15
              15 min–1 h   frequent batch  $0.02–0.05
              1–24 h       batch           $0.01–0.02
              > 24 h       daily batch     $0.005–0.01

            Examples:
              sluice plan
              sluice plan --volume 200GB/day --freshness 15m --source postgres --changes updates,deletes --reliability exactly-once
              sluice plan --volume 5TB/month --freshness 1d --source files --changes inserts --reliability at-least-once --output-yaml p.yaml
            """)

    @Option(name: .long, help: "How much data: 200GB/day, 5TB/month, 300MB/hour.") var volume: String?
    @Option(name: .long, help: "How old the data may be when queried: 30s, 15m, 1h, 1d.") var freshness: String?
    @Option(name: .long, help: "Where it comes from: \(PlanQuestions.Source.allCases.map(\.rawValue).joined(separator: ", ")).") var source: String?
    @Option(name: .long, help: "What changes: inserts, updates, deletes (comma-separated).") var changes: String?
    @Option(name: .long, help: "Reliability: best-effort, at-least-once, exactly-once.") var reliability: String?
    @Option(name: .customLong("output-yaml"), help: "Write the starter pipeline file here (else it is printed).") var outputYAML: String?
    @Flag(name: .long, help: "The answer as JSON.") var json = false
    @Flag(name: .long, help: "Ask the missing questions even when standard input is not a terminal.") var interactive = false

    func run() throws {
        let ask = interactive || isatty(STDIN_FILENO) == 1
        var missing: [String] = []
        func answer<T>(_ flag: String?, _ name: String, _ question: String, _ parse: (String) -> T?) throws -> T? {
            if let flag {
                guard let value = parse(flag) else { throw ValidationError("--\(name): cannot read '\(flag)'. \(question)") }
                return value
            }
            guard ask else {
                missing.append("--\(name)")
                return nil
            }
            for _ in 0..<3 {
                FileHandle.standardError.write(Data("\(question)\n> ".utf8))
                guard let line = readLine() else { break }
                if let value = parse(line.trimmingCharacters(in: .whitespaces)) { return value }
                FileHandle.standardError.write(Data("cannot read '\(line)'\n".utf8))
            }
            throw ValidationError("no answer for --\(name)")
        }
        let v = try answer(volume, "volume", "How much data? (e.g. 200GB/day, 5TB/month, 300MB/hour)", PlanQuestions.parseVolume)
        let f = try answer(freshness, "freshness", "How fresh must it be when queried? (e.g. 30s, 15m, 1h, 1d)") { text in
            ConfigDuration.parse(text).map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }.flatMap { $0 > 0 ? $0 : nil }
        }
        let s = try answer(
            source, "source", "Where does it come from? (\(PlanQuestions.Source.allCases.map(\.rawValue).joined(separator: ", ")))",
            { PlanQuestions.Source(rawValue: $0.lowercased()) })
        let c = try answer(changes, "changes", "What changes? (inserts, updates, deletes; comma-separated)") { text -> Set<PlanQuestions.Change>? in
            let parts = text.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let parsed = parts.compactMap { PlanQuestions.Change(rawValue: $0) ?? PlanQuestions.Change(rawValue: $0 + "s") }
            return parsed.count == parts.count && !parsed.isEmpty ? Set(parsed) : nil
        }
        let r = try answer(reliability, "reliability", "What reliability? (best-effort, at-least-once, exactly-once)") {
            PlanQuestions.Reliability(rawValue: $0.lowercased())
        }
        guard missing.isEmpty, let v, let f, let s, let c, let r else {
            throw ValidationError("answer \(missing.joined(separator: ", ")) (standard input is not a terminal; --interactive asks anyway)")
        }
        let plan = IngestionPlanner.plan(PlanQuestions(volume: v, freshness: f, source: s, changes: c, reliability: r))
        if let outputYAML {
            try plan.yaml.write(toFile: outputYAML, atomically: true, encoding: .utf8)
        }
        if json {
            let object: [String: Any] = [
                "pattern": plan.pattern.rawValue, "direction": plan.direction.rawValue, "summary": plan.summary, "why": plan.why,
                "tier": ["freshness": plan.tier.freshness, "style": plan.tier.style, "usd_per_gb_low": plan.tier.low, "usd_per_gb_high": plan.tier.high],
                "monthly_usd": ["low": plan.monthly.low, "high": plan.monthly.high], "warnings": plan.warnings, "classic_tools": plan.classicTools,
                "yaml": plan.yaml,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print(Self.render(plan, volume: v, wroteTo: outputYAML))
    }

    static func render(_ plan: IngestionPlan, volume: Double, wroteTo: String?) -> String {
        func usd(_ x: Double) -> String { x >= 100 ? "$" + String(format: "%.0f", x) : String(format: "$%.2f", x) }
        func perGB(_ x: Double) -> String { x < 0.01 ? String(format: "$%.3f", x) : String(format: "$%.2f", x) }
        var out = """
            Pattern:    \(plan.pattern.rawValue) (\(plan.direction.rawValue))
                        \(plan.summary)
            Why:

            """
        for w in plan.why { out += "  - \(w)\n" }
        out += "Cost tier:  \(plan.tier.freshness), \(plan.tier.style): \(perGB(plan.tier.low))–\(perGB(plan.tier.high)) per GB\n"
        out += "Estimate:   \(String(format: "%.0f", volume / 1e9 * 30)) GB a month → \(usd(plan.monthly.low))–\(usd(plan.monthly.high)) a month\n"
        if !plan.warnings.isEmpty {
            out += "Warnings:\n"
            for w in plan.warnings { out += "  ! \(w)\n" }
        }
        out += "Otherwise:  \(plan.classicTools.joined(separator: ", "))\n"
        if let wroteTo {
            out += "Starter:    written to \(wroteTo); check it with `sluice validate \(wroteTo)`"
        } else {
            out += "Starter pipeline file (save it, then `sluice validate FILE`):\n\n" + plan.yaml
        }
        return out
    }
}
