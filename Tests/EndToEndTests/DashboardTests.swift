import Foundation
import Testing

/// The dashboard, in a real browser: headless Chromium loads the page from a running
/// `sluice run --metrics-port`, runs its script, and the DOM it renders shows the pipeline's
/// numbers and firing alert. Beyond loopback (`sluice serve` on 0.0.0.0) its data needs a key.
@Suite(.timeLimit(.minutes(10))) struct DashboardTests {
    /// The DOM after the page's script ran (Chromium's `--dump-dom`).
    static func renderedDOM(_ url: String) async throws -> String {
        try await offPool {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [
                "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--user-data-dir=\(NSTemporaryDirectory())/sluice-chromium-\(UUID().uuidString)", "--virtual-time-budget=6000", "--dump-dom", url,
            ]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
    }

    @Test func aRealBrowserRendersThePipelinesNumbersAndAlerts() async throws {
        let dir = try makeWorkDirectory("dashboard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            alerts: { evaluate_every: 200ms, dead_letters: { above: 1 } }
            pipelines:
              watched:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n{bad\n{bad\n", to: "\(dir)/data/1.ndjson")
        let port = try freePort()
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func status() -> [String: Any] {
            let body = (try? curl(["http://127.0.0.1:\(port)/api/v1/status"]))?.body ?? ""
            let all = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
            return (all["pipelines"] as? [[String: Any]])?.first ?? [:]
        }
        // The JSON the page reads: totals, the queue, the firing alert.
        let ready = try await waitUntil(seconds: 60) {
            let p = status()
            return p["records_out"] as? Int == 3 && p["dead_letter_queue"] as? Int == 2 && (p["alerts"] as? [String]) == ["SluiceDeadLetterQueueLarge"]
        }
        #expect(ready, "\(status())")
        let p = status()
        #expect(p["state"] as? String == "running" && p["records_in"] as? Int == 5 && (p["series"] as? [String: Any])?["records_in_per_s"] != nil, "\(p)")

        // The page: small, self-contained (no external asset), locked down by its CSP.
        let page = try await offPool { try curl(["-i", "http://127.0.0.1:\(port)/"]) }
        #expect(page.status == 200 && page.body.utf8.count < 200_000, "\(page.body.utf8.count) bytes")
        #expect(page.body.contains("Content-Security-Policy: default-src 'none'") && !page.body.contains("https://"), "external assets or no CSP")

        // A real browser runs the page's script against the live endpoint.
        let dom = try await Self.renderedDOM("http://127.0.0.1:\(port)/")
        #expect(dom.contains("<span class=\"name\">watched</span>") && dom.contains("<span class=\"state running\">running</span>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<dd data-field=\"records-out\">3</dd>") && dom.contains("<dd data-field=\"dlq\">2</dd>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<li class=\"alert\">SluiceDeadLetterQueueLarge</li>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<svg viewBox=\"0 0 300 70\""), "charts drawn")
        #expect(dom.contains("updated "), "the page says when it last updated")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }

    @Test func beyondLoopbackTheDataNeedsAnAPIKey() async throws {
        let dir = try makeWorkDirectory("dashboard-auth")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            serve: { host: 0.0.0.0, registry_auth: api_key }
            pipelines:
              orders:
                source: { http: { stream: orders, auth: api_key } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let created = try await SluiceProcess.runWithoutBlocking(["keys", "create", "--name", "ops", "--stream", "orders", "-c", "p.yaml"], in: dir)
        let key = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("slk_"), "\(created.stderr)")
        let port = try freePort()
        let served = try await ServedProcess.start(in: dir, port: port)
        defer { _ = served.stop() }
        let anonymous = try await offPool { try curl(["http://127.0.0.1:\(port)/api/v1/status"]) }
        #expect(anonymous.status == 401, "\(anonymous.status) \(anonymous.body)")
        let keyed = try await offPool { try curl(["-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/v1/status"]) }
        #expect(keyed.status == 200 && keyed.body.contains("\"name\":\"orders\""), "\(keyed.status) \(keyed.body)")
        // The page itself holds no data; it asks for the key when the data answers 401.
        let page = try await offPool { try curl(["http://127.0.0.1:\(port)/"]) }
        #expect(page.status == 200 && page.body.contains("needs an API key"))
    }

    /// `sluice tap` prints live records of each stage as NDJSON and stops at its limit;
    /// `sluice top` prints a row per pipeline when its output is not a terminal.
    @Test func tapAndTopReadARunningPipeline() async throws {
        let dir = try makeWorkDirectory("tap-top")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              watched:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(port)"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        #expect(try await waitUntil(seconds: 60) { (try? curl(["http://127.0.0.1:\(port)/healthz"]))?.status == 200 })
        let sink = try SluiceProcess.start(
            ["tap", "watched", "--url", "http://127.0.0.1:\(port)", "--limit", "3", "--timeout", "120"], in: dir, log: "\(dir)/tap-sink.out")
        let letters = try SluiceProcess.start(
            ["tap", "watched", "--url", "http://127.0.0.1:\(port)", "--stage", "dead-letter", "--limit", "1", "--timeout", "120"], in: dir,
            log: "\(dir)/tap-dl.out")
        defer {
            for p in [sink, letters] where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        // Records keep coming until both taps have what they asked for (they may connect late).
        var n = 0
        while sink.isRunning || letters.isRunning, n < 200 {
            n += 1
            try write("{\"id\":\(n),\"tag\":\"t\\\"q\"}\n{not json \(n)\n", to: "\(dir)/data/\(n).ndjson")
            try await Task.sleep(for: .milliseconds(300))
        }
        await waitForExit(sink)
        await waitForExit(letters)
        #expect(sink.terminationStatus == 0 && letters.terminationStatus == 0)
        let sunk = ((try? String(contentsOfFile: "\(dir)/tap-sink.out", encoding: .utf8)) ?? "").split(separator: "\n")
        let parsed = sunk.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(sunk.count == 3 && parsed.count == 3 && parsed.allSatisfy { $0["tag"] as? String == "t\"q" }, "\(sunk)")
        let dl = ((try? String(contentsOfFile: "\(dir)/tap-dl.out", encoding: .utf8)) ?? "").split(separator: "\n")
        let letter = dl.first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        #expect(dl.count == 1 && letter["stage"] as? String == "decode" && (letter["raw"] as? String)?.hasPrefix("{not json") == true, "\(dl)")
        // Nobody taps any more: an unknown pipeline is named as such.
        let unknown = try await SluiceProcess.runWithoutBlocking(["tap", "nope", "--url", "http://127.0.0.1:\(port)"], in: dir)
        #expect(unknown.status != 0 && unknown.stderr.contains("this process runs: watched"), "\(unknown.stderr)")

        let top = try await SluiceProcess.runWithoutBlocking(["top", "--url", "http://127.0.0.1:\(port)", "--interval", "0.3"], in: dir)
        let rows = top.stdout.split(separator: "\n")
        #expect(
            top.status == 0 && rows.first?.hasPrefix("PIPELINE  STATE") == true && rows.count == 2 && rows[1].hasPrefix("watched   running"),
            "\(top.stdout)\(top.stderr)")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }
}
