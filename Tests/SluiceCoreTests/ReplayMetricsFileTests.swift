import Foundation
import SluiceCore
import Testing

/// `sluice dlq replay --metrics-file`: the counts accumulate across replays and pipelines, the
/// file reads back what it wrote (escaped labels too), and a file of something else is refused.
@Suite struct ReplayMetricsFileTests {
    @Test func countsAccumulateAcrossReplaysAndOtherPipelinesAreKept() throws {
        let path = NSTemporaryDirectory() + "replay-\(UUID().uuidString).prom"
        defer { unlink(path) }
        try ReplayMetricsFile.update(path: path, pipeline: "events", ok: 3, failed: 1, at: Date(timeIntervalSince1970: 1_000))
        try ReplayMetricsFile.update(path: path, pipeline: "odd \"name\"\\", ok: 7, failed: 0, at: Date(timeIntervalSince1970: 1_500))
        try ReplayMetricsFile.update(path: path, pipeline: "events", ok: 0, failed: 1, at: Date(timeIntervalSince1970: 2_000))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text == """
                # HELP sluice_replayed_total \(MetricHelp.text["sluice_replayed_total"]!)
                # TYPE sluice_replayed_total counter
                sluice_replayed_total{pipeline="events",result="failed"} 2
                sluice_replayed_total{pipeline="events",result="ok"} 3
                sluice_replayed_total{pipeline="odd \\"name\\"\\\\",result="failed"} 0
                sluice_replayed_total{pipeline="odd \\"name\\"\\\\",result="ok"} 7
                # HELP sluice_replay_last_run_timestamp_seconds \(MetricHelp.text["sluice_replay_last_run_timestamp_seconds"]!)
                # TYPE sluice_replay_last_run_timestamp_seconds gauge
                sluice_replay_last_run_timestamp_seconds{pipeline="events"} 2000
                sluice_replay_last_run_timestamp_seconds{pipeline="odd \\"name\\"\\\\"} 1500

                """)
        let parsed = try ReplayMetricsFile(parsing: text)
        #expect(parsed.replayed[.init(pipeline: "odd \"name\"\\", result: "ok")] == 7)
        #expect(parsed.text == text)
    }

    @Test func aFileOfSomethingElseIsRefusedWithItsLine() throws {
        #expect(throws: SluiceError.self) { try ReplayMetricsFile(parsing: "# comment\nnode_load1 0.5\n") }
        do {
            _ = try ReplayMetricsFile(parsing: "sluice_replayed_total{pipeline=\"p\",result=\"ok\"} 1\nsluice_replayed_total{pipeline=\"p} 2\n")
            Issue.record("an unterminated label was accepted")
        } catch let error as SluiceError {
            #expect(error.location == "line 2", "\(error)")
        }
        // Lines ended by CRLF (the file edited elsewhere) are read as lines.
        let crlf = try ReplayMetricsFile(
            parsing: "sluice_replayed_total{pipeline=\"p\",result=\"ok\"} 4\r\nsluice_replayed_total{pipeline=\"p\",result=\"failed\"} 1\r\n")
        #expect(crlf.replayed.count == 2 && crlf.replayed[.init(pipeline: "p", result: "ok")] == 4)
        // A file that is not one of these is refused before a replay starts, naming the file.
        let path = NSTemporaryDirectory() + "other-\(UUID().uuidString).prom"
        defer { unlink(path) }
        try Data("node_load1 0.5\n".utf8).write(to: URL(fileURLWithPath: path))
        do {
            try ReplayMetricsFile.check(path: path)
            Issue.record("a file of another job was accepted")
        } catch let error as SluiceError {
            #expect(error.message.contains(path) && error.message.contains("a file of its own"), "\(error)")
        }
        try ReplayMetricsFile.check(path: path + ".absent")
        // Other metrics with labels (someone else's) are skipped, not refused.
        let other = try ReplayMetricsFile(parsing: "node_cpu_seconds_total{cpu=\"0\"} 12.5\n")
        #expect(other == ReplayMetricsFile())
    }
}
