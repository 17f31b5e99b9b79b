import Foundation
import SluiceCore
import Testing

/// Every series the code creates has its HELP text, and the exposition gets it.
@Suite struct MetricHelpTests {
    @Test func everyMetricNameInTheSourcesHasHelpText() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        var names: Set<String> = []
        for file in files where !file.hasSuffix("MetricHelp.swift") {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            // `"sluice_…"` string literals, scanned by hand (Swift's Regex crashed on a large file).
            for piece in text.components(separatedBy: "\"sluice_").dropFirst() {
                let tail = piece.prefix { $0 == "_" || ("a"..."z").contains($0) }
                guard piece.dropFirst(tail.count).first == "\"" else { continue }
                let name = "sluice_" + tail
                if name.hasSuffix("_total") || name.contains("_seconds") || name.hasSuffix("_bytes") || name.hasSuffix("_records")
                    || name.hasSuffix("_batches") || name.hasSuffix("_pending")
                {
                    names.insert(name)
                }
            }
        }
        #expect(names.count > 30)
        let missing = names.subtracting(MetricHelp.text.keys)
        #expect(missing.isEmpty, "no HELP text for \(missing.sorted())")
    }

    @Test func helpLinesGoBeforeTypeLinesThatHaveNone() {
        let text = "# TYPE sluice_commits_total counter\nsluice_commits_total{pipeline=\"a\"} 3\n# HELP x given\n# TYPE x gauge\nx 1\n"
        let annotated = String(decoding: MetricHelp.annotate(Array(text.utf8)), as: UTF8.self)
        #expect(
            annotated
                == "# HELP sluice_commits_total Commits of output and checkpoint.\n# TYPE sluice_commits_total counter\nsluice_commits_total{pipeline=\"a\"} 3\n# HELP x given\n# TYPE x gauge\nx 1\n"
        )
    }
}
