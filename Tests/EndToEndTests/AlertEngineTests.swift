import Foundation
import SluiceTesting
import Testing

/// Alerts evaluated inside `sluice run`: each fires and resolves on a real running pipeline, and
/// real HTTP receivers get exactly one notification per transition, signed (checked with
/// Python's `hmac`), including a receiver that was down when the alert fired.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct AlertEngineTests {
    /// An HTTP receiver in Python: each POST is appended to `out` as `{"valid": <signature
    /// checked with hmac>, "body": <the JSON>}`.
    static let receiver = """
        import hmac, hashlib, json, sys
        from http.server import BaseHTTPRequestHandler, HTTPServer
        port, secret, out = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
        gate = sys.argv[4] if len(sys.argv) > 4 else None
        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ts = self.headers.get("X-Sluice-Timestamp", "")
                want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(want, self.headers.get("X-Sluice-Signature", ""))
                with open(out, "a") as f:
                    f.write(json.dumps({"valid": valid, "body": json.loads(body)}) + "\\n")
                self.send_response(204)
                self.end_headers()
            def log_message(self, *a):
                pass
        if gate is None:
            HTTPServer(("127.0.0.1", port), H).serve_forever()
        else:
            # Down until `gate` exists: the port is bound (no one else can take it) but not
            # listening, so connections are refused; its number goes to `gate.port`.
            import os, time
            server = HTTPServer(("127.0.0.1", port), H, bind_and_activate=False)
            server.server_bind()
            with open(gate + ".port.tmp", "w") as f:
                f.write(str(server.server_address[1]))
            os.rename(gate + ".port.tmp", gate + ".port")
            while not os.path.exists(gate):
                time.sleep(0.05)
            server.server_activate()
            server.serve_forever()
        """

    /// Starts a receiver on `port`; with a `gate`, it holds a port of its own (written to
    /// `gate.port`) and refuses connections until a file named `gate` exists.
    static func startReceiver(port: Int, secret: String, out: String, in dir: String, gate: String? = nil) throws -> Process {
        try receiver.write(toFile: "\(dir)/receiver.py", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "receiver.py", "\(port)", secret, out] + (gate.map { [$0] } ?? [])
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        try ChildProcesses.run(p)
        return p
    }

    /// The notifications a receiver got: (valid signature, body).
    static func notifications(_ path: String) -> [(valid: Bool, body: [String: Any])] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return (o["valid"] as? Bool ?? false, o["body"] as? [String: Any] ?? [:])
        }
    }

    static func transitions(_ path: String, alert: String) -> [String] {
        notifications(path).filter { $0.body["alert"] as? String == alert }.compactMap { $0.body["status"] as? String }
    }

    @Test func everyAlertFiresAndResolvesOnARunningPipelineWithOneSignedNotificationPerTransition() async throws {
        let dir = try makeWorkDirectory("alert-engine")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hookPort = try freePort()
        try write(
            """
            alerts:
              evaluate_every: 250ms
              stopped: { after: 4s }
              error_rate: { above: 20%, over: 3s, for: 0s }
              dead_letters: { above: 3 }
              schema_drift: { over: 3s }
              webhooks: [{ url: "http://127.0.0.1:\(hookPort)/hook", secret: "s3cr3t-s3cr3t-123" }]
            pipelines:
              watched:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1}\n{\"id\":2}\n", to: "\(dir)/data/1.ndjson")
        let got = "\(dir)/got.ndjson"
        let receiver = try Self.startReceiver(port: hookPort, secret: "s3cr3t-s3cr3t-123", out: got, in: dir)
        defer { kill(receiver.processIdentifier, SIGKILL) }
        let sluice = try SluiceProcess.start(["run", "p.yaml"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }
        // Prefixes, not exact lists: on a loaded machine a transition can follow before a poll
        // sees the one before it (the final checks look at the whole sequence).
        func has(_ alert: String, _ states: [String]) -> Bool { Self.transitions(got, alert: alert).starts(with: states) }

        // Nothing arrives after the first file: stopped.
        try #require(try await waitUntil(seconds: 60) { has("SluiceIngestionStopped", ["firing"]) }, "\(log())")
        // A file of mostly malformed rows: stopped resolves; error rate and dead letters fire.
        try write("{\"id\":3}\n{bad\n{bad\n{bad\n{bad\n", to: "\(dir)/data/2.ndjson")
        try #require(
            try await waitUntil(seconds: 60) {
                has("SluiceIngestionStopped", ["firing", "resolved"]) && has("SluiceErrorRateHigh", ["firing"])
                    && has("SluiceDeadLetterQueueLarge", ["firing"])
            }, "\(Self.notifications(got).map(\.body)) \(log())")
        // A new column: drift.
        try write("{\"id\":4,\"extra\":\"x\"}\n", to: "\(dir)/data/3.ndjson")
        try #require(try await waitUntil(seconds: 60) { has("SluiceSchemaDrift", ["firing"]) }, "\(log())")

        // Good records keep coming (so the pipeline is not stopped): error rate and drift resolve
        // once their windows pass; dead letters once an operator clears the queue.
        var file = 10
        func feed(until done: @escaping () -> Bool) async throws -> Bool {
            for _ in 0..<120 {
                file += 1
                try write("{\"id\":\(file),\"extra\":\"y\"}\n", to: "\(dir)/data/\(file).ndjson")
                if try await waitUntil(seconds: 0.5, done) { return true }
            }
            return false
        }
        #expect(try await feed { has("SluiceErrorRateHigh", ["firing", "resolved"]) && has("SluiceSchemaDrift", ["firing", "resolved"]) })
        #expect(Self.transitions(got, alert: "SluiceDeadLetterQueueLarge") == ["firing"], "the queue still holds 4")
        let cleared = try await runTool(
            ["python3", "-c", "import sqlite3; c = sqlite3.connect('.sluice/state.db'); c.execute('DELETE FROM dead_letter_blocks'); c.commit()"], in: dir)
        #expect(cleared.status == 0, "\(cleared.output)")
        #expect(try await feed { has("SluiceDeadLetterQueueLarge", ["firing", "resolved"]) }, "\(log())")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)

        // Every notification was signed; each firing and its resolution carry the same id; the
        // state store kept them all, resolved.
        let all = Self.notifications(got)
        let allSigned = all.allSatisfy { $0.valid }
        #expect(allSigned, "\(all.map { $0.body })")
        for alert in ["SluiceErrorRateHigh", "SluiceDeadLetterQueueLarge", "SluiceSchemaDrift", "SluiceIngestionStopped"] {
            let mine = all.filter { $0.body["alert"] as? String == alert }
            let states = mine.compactMap { $0.body["status"] as? String }
            // Stopped may fire again if the machine stalls the pipeline beyond 4 s; any further
            // transitions still come one notification each, alternating. The others fire once.
            #expect(states.count >= 2 && states.enumerated().allSatisfy { $1 == ($0 % 2 == 0 ? "firing" : "resolved") }, "\(alert): \(states)")
            if alert != "SluiceIngestionStopped" { #expect(states.count == 2, "\(alert): \(states)") }
            let ids = mine.compactMap { $0.body["id"] as? Int }
            #expect(ids.count == states.count && ids[0] == ids[1], "\(alert): \(ids)")
        }
        let list = try await SluiceProcess.runWithoutBlocking(["alerts", "list", "-c", "p.yaml", "--json"], in: dir)
        #expect(list.status == 0, "\(list.stderr)")
        for alert in ["SluiceErrorRateHigh", "SluiceDeadLetterQueueLarge", "SluiceSchemaDrift"] {
            #expect(list.stdout.contains("\"alert\":\"\(alert)\",\"severity\""), "\(list.stdout)")
        }
        #expect(!list.stdout.contains("\"alert\":\"SluiceErrorRateHigh\",\"severity\":\"critical\",\"state\":\"firing\""), "\(list.stdout)")
        let show = try await SluiceProcess.runWithoutBlocking(["alerts", "show", "1", "-c", "p.yaml"], in: dir)
        #expect(show.stdout.contains("SluiceIngestionStopped") && show.stdout.contains("state:     resolved"), "\(show.stdout)")
    }

    /// A receiver that is down when the alert fires gets it once it is back (the queue retries
    /// with backoff); another one, up all along, gets a Slack-compatible message at once; the
    /// pipeline never waits for either. The latency alert counts from the records' `event_time`.
    @Test func aReceiverThatWasDownGetsTheAlertWhenItComesBack() async throws {
        let dir = try makeWorkDirectory("alert-receiver-down")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The receiver that is down holds its port meanwhile: a port only found free could be
        // taken by another test's server before it comes back (seen in CI: 404s from a stranger).
        let gate = "\(dir)/receiver-up"
        let back = try Self.startReceiver(port: 0, secret: "another-secret-456", out: "\(dir)/back.ndjson", in: dir, gate: gate)
        defer { kill(back.processIdentifier, SIGKILL) }
        try #require(try await waitUntil(seconds: 60) { FileManager.default.fileExists(atPath: "\(gate).port") })
        let downPort = try #require(Int(try String(contentsOfFile: "\(gate).port", encoding: .utf8)))
        let slackPort = try freePort()
        try write(
            """
            alerts:
              evaluate_every: 250ms
              stopped: { enabled: false }
              latency: { above: 60s, over: 2s, for: 0s }
              webhooks:
                - { url: "http://127.0.0.1:\(downPort)/hook", secret: "another-secret-456" }
                - { url: "http://127.0.0.1:\(slackPort)/slack?token=hidden", format: slack, secret: "slack-secret-7890" }
            pipelines:
              late:
                event_time: at
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        let slack = try Self.startReceiver(port: slackPort, secret: "slack-secret-7890", out: "\(dir)/slack.ndjson", in: dir)
        defer { kill(slack.processIdentifier, SIGKILL) }
        let sluice = try SluiceProcess.start(["run", "p.yaml"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }
        let formatter = ISO8601DateFormatter()
        // Records an hour old: their end-to-end latency is an hour.
        try write("{\"id\":1,\"at\":\"\(formatter.string(from: Date().addingTimeInterval(-3600)))\"}\n", to: "\(dir)/data/1.ndjson")
        // (It stays firing while no newer batch is committed: the latency is then unknown.)
        func slackTexts() -> [String] { Self.notifications("\(dir)/slack.ndjson").compactMap { $0.body["text"] as? String } }
        try #require(
            try await waitUntil(seconds: 60) { !slackTexts().isEmpty && log().contains("alert notification failed; retrying") }, "\(log())")
        let text = slackTexts()[0]
        #expect(text.hasPrefix("[FIRING] CRITICAL SluiceLatencyAboveSLA · pipeline late"), "\(text)")
        #expect(!log().contains("token=hidden") && !log().contains("/slack"), "the webhook's path and query are never logged")
        // The pipeline went on meanwhile.
        try write("{\"id\":2,\"at\":\"\(formatter.string(from: Date()))\"}\n", to: "\(dir)/data/2.ndjson")
        #expect(try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out").count) == 2 })

        // The receiver comes back: the firing notification arrives, then the resolution.
        try write("", to: gate)
        var n = 2
        var resolved = false
        for _ in 0..<120 where !resolved {
            n += 1
            try write("{\"id\":\(n),\"at\":\"\(formatter.string(from: Date()))\"}\n", to: "\(dir)/data/\(n).ndjson")
            // Delivery is at least once: a notification whose answer did not come in time is sent
            // again (a loaded full run's receiver, just up, stored the firing one twice); its `id`
            // and `status` identify it, so a repeat counts once.
            resolved = try await waitUntil(seconds: 0.5) {
                let seen = Self.notifications("\(dir)/back.ndjson").filter { $0.body["alert"] as? String == "SluiceLatencyAboveSLA" }
                var distinct: [String] = []
                for n in seen {
                    let key = "\(n.body["id"] ?? "")/\(n.body["status"] ?? "")"
                    if !distinct.contains(key) { distinct.append(key) }
                }
                return distinct.map { $0.split(separator: "/").last.map(String.init) ?? "" } == ["firing", "resolved"]
            }
        }
        #expect(resolved, "\(Self.notifications("\(dir)/back.ndjson").map(\.body)) \(log())")
        let backSigned = Self.notifications("\(dir)/back.ndjson").allSatisfy { $0.valid }
        #expect(backSigned)
        let firing = Self.notifications("\(dir)/back.ndjson").first?.body ?? [:]
        #expect((firing["value"] as? Double ?? 0) > 60 && firing["threshold"] as? Int == 60, "\(firing)")
        #expect(
            try await waitUntil(seconds: 30) { slackTexts().count == 2 && slackTexts()[1].hasPrefix("[RESOLVED] SluiceLatencyAboveSLA") }, "\(slackTexts())")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }

    /// The missing-data reconciliation: a record dropped inside the runtime (a test-only fault)
    /// and a gap in a declared sequence are both counted, logged and alerted; clean pipelines
    /// count nothing.
    @Test func theReconciliationCatchesALostRecordAndASequenceGap() async throws {
        let dir = try makeWorkDirectory("reconcile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts: { evaluate_every: 250ms, stopped: { enabled: false } }
            pipelines:
              lossy:
                source: { file: { path: a, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { parquet: { path: lake-a, max_file_age: 200ms } }
              sequenced:
                reconcile: { sequence: seq, key: device }
                source: { file: { path: b, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out-b, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        // The fault drops ordinal 7 of the records the runtime accepts, in each pipeline: only
        // `lossy` has that many (`sequenced` has 7).
        try write((0..<20).map { "{\"id\":\($0)}" }.joined(separator: "\n") + "\n", to: "\(dir)/a/1.ndjson")
        // Device x skips 3 and 4; device y is complete (a repeat of 1 is no gap).
        try write(
            ["x1", "y1", "x2", "y2", "y1", "x5", "y3"].map { "{\"device\":\"\($0.prefix(1))\",\"seq\":\($0.dropFirst())}" }.joined(separator: "\n")
                + "\n", to: "\(dir)/b/1.ndjson")
        let port = try freePort()
        let sluice = try SluiceProcess.start(
            ["run", "p.yaml", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/sluice.log", environment: ["SLUICE_TEST_DROP_RECORD": "7"])
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func log() -> String { (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? "" }
        func metrics() -> String { (try? curl(["http://127.0.0.1:\(port)/metrics"]))?.body ?? "" }
        let caught = try await waitUntil(seconds: 60) {
            let m = metrics()
            return m.contains("sluice_missing_records_total{pipeline=\"lossy\",check=\"ledger\"} 1")
                && m.contains("sluice_missing_records_total{pipeline=\"sequenced\",check=\"sequence_gap\"} 2")
                && m.contains("sluice_alerts_firing{pipeline=\"lossy\",alert=\"SluiceMissingData\",severity=\"critical\"} 1")
                && m.contains("sluice_alerts_firing{pipeline=\"sequenced\",alert=\"SluiceMissingData\",severity=\"critical\"} 1")
        }
        #expect(caught, "\(metrics().split(separator: "\n").filter { $0.contains("missing") || $0.contains("alerts_firing") }) \(log())")
        #expect(log().contains("device=x 3…4"), "the gap is named: \(log())")
        // Each loss is counted by the check that saw it, and by no other.
        let m = metrics()
        #expect(!m.contains("pipeline=\"lossy\",check=\"sink_rows\"") && !m.contains("pipeline=\"sequenced\",check=\"ledger\""), "\(m)")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }
}
