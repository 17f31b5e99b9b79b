import Foundation
import SluiceTesting
import Testing

/// The dashboard, in a real browser: headless Chromium loads the page from a running
/// `sluice run --metrics-port`, runs its script, and the DOM it renders shows the pipeline's
/// numbers and firing alert. Beyond loopback (`sluice serve` on 0.0.0.0) its data needs a key.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct DashboardTests {
    /// Runs headless Chromium on `url` with `extra` arguments; returns its standard output (the
    /// DOM with `--dump-dom`) and its log (console messages and script errors).
    static func chromium(_ url: String, _ extra: [String]) async throws -> (out: String, log: String) {
        try await offPool {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments =
                [
                    "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--user-data-dir=\(NSTemporaryDirectory())/sluice-chromium-\(UUID().uuidString)", "--virtual-time-budget=6000",
                    "--enable-logging=stderr", "--v=0",
                ] + extra + [url]
            let out = ChildProcesses.pipe(), err = ChildProcesses.pipe()
            p.standardOutput = out
            p.standardError = err
            try ChildProcesses.run(p)
            // Both pipes at once, so neither fills up.
            let log = Thread.detachedRead(err.fileHandleForReading)
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (String(decoding: data, as: UTF8.self), log())
        }
    }

    /// What the page rendered after `marker` (up to the end of its section): the script's
    /// source, which the DOM dump also holds, has the same markup as string literals.
    static func rendered(_ dom: String, after marker: String) -> String {
        guard let start = dom.range(of: marker)?.upperBound else { return "" }
        let rest = dom[start...]
        return String(rest[..<(rest.range(of: "</section>")?.lowerBound ?? rest.endIndex)])
    }

    /// The DOM after the page's script ran (Chromium's `--dump-dom`).
    static func renderedDOM(_ url: String, offline: Bool = false) async throws -> (dom: String, log: String) {
        // Offline: every host but this machine is unreachable (a proxy that does not exist),
        // so a page that fetched anything from elsewhere would show it.
        let cut = offline ? ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost"] : []
        let (out, log) = try await chromium(url, cut + ["--dump-dom"])
        return (out, log)
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

        // The JSON summarises the metrics: the same figures, field by field.
        let exposition = try await offPool { try curl(["http://127.0.0.1:\(port)/metrics"]).body }
        let metrics = exposition.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("pipeline=\"watched\"") }
        func metric(_ name: String) -> Double {
            metrics.filter { $0.hasPrefix(name + "{") }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        }
        let s = status()
        #expect(Double(s["records_in"] as? Int ?? -1) == metric("sluice_records_in_total"), "\(s)")
        #expect(Double(s["records_out"] as? Int ?? -1) == metric("sluice_records_out_total"), "\(s)")
        #expect(Double(s["bytes_in"] as? Int ?? -1) == metric("sluice_input_bytes_total"), "\(s)")
        #expect(Double(s["bytes_out"] as? Int ?? -1) == metric("sluice_output_bytes_total"), "\(s)")
        #expect(Double(s["dead_lettered"] as? Int ?? -1) == metric("sluice_dead_letters_total"), "\(s)")
        #expect(Double(s["dead_letter_queue"] as? Int ?? -1) == metric("sluice_dead_letter_queue_records"), "\(s)")
        #expect(abs((s["last_commit"] as? Double ?? 0) - metric("sluice_last_commit_timestamp_seconds")) < 0.01, "\(s)")
        #expect(metric("sluice_alerts_firing") == 1 && (s["alerts"] as? [String]) == ["SluiceDeadLetterQueueLarge"])
        #expect((s["latency_p99_seconds"] as? Double ?? -1) >= 0 && s["schema_drifts"] as? Int == 0 && s["missing_records"] as? Int == 0)
        #expect(s["dead_letters_by_reason"] as? [String: Int] == ["decode/malformed_row": 2], "\(s)")
        #expect(s["schema_version"] as? Int == 1 && s["lag"] is NSNull, "\(s)")

        // A real browser runs the page's script against the live endpoint, without a script
        // error, and the same with every other host cut off.
        let (dom, log) = try await Self.renderedDOM("http://127.0.0.1:\(port)/")
        #expect(!log.contains("Uncaught") && !log.contains("SyntaxError"), "\(log.suffix(2000))")
        let offline = try await Self.renderedDOM("http://127.0.0.1:\(port)/", offline: true)
        #expect(offline.dom.contains("<dd data-field=\"records-out\">3</dd>"), "offline: \(offline.dom.suffix(2000))")
        // A screenshot, kept as an artifact of the test run.
        let artifacts = FileManager.default.currentDirectoryPath + "/.build/test-artifacts"
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        _ = try await Self.chromium("http://127.0.0.1:\(port)/", ["--window-size=1200,800", "--screenshot=\(artifacts)/dashboard.png"])
        #expect(((try? FileManager.default.attributesOfItem(atPath: "\(artifacts)/dashboard.png"))?[.size] as? Int ?? 0) > 10_000)
        #expect(dom.contains("<span class=\"name\">watched</span>") && dom.contains("<span class=\"state running\">running</span>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<dd data-field=\"records-out\">3</dd>") && dom.contains("<dd data-field=\"dlq\">2</dd>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<li class=\"alert\">SluiceDeadLetterQueueLarge</li>"), "\(dom.suffix(3000))")
        #expect(dom.contains("<svg viewBox=\"0 0 300 70\""), "charts drawn")
        #expect(dom.contains("updated "), "the page says when it last updated")
        #expect(dom.contains("dead letters by reason: decode/malformed_row 2") && dom.contains("v1 · 0 drifts"), "\(dom.suffix(3000))")

        // The page of the pipeline: its runs, its checkpoint, its dead letters; read-only here.
        let detail = try await Self.renderedDOM("http://127.0.0.1:\(port)/#/p/watched")
        #expect(detail.dom.contains("<h3>Recent runs</h3>") && detail.dom.contains("<h3>Checkpoint</h3>"), "\(detail.dom.suffix(3000))")
        #expect(detail.dom.contains("<h3 id=\"dead-letters\">Dead letters (2)</h3>") && detail.dom.contains("{bad"), "\(detail.dom.suffix(3000))")
        // (The page's script holds the buttons' markup too: look at what it rendered.)
        let letters = Self.rendered(detail.dom, after: "Dead letters (2)</h3>")
        #expect(letters.contains("Read-only") && !letters.contains("<button id=\"drop\""), "no write buttons without --dashboard-writes: \(letters)")
        let refused = try await offPool { try curl(["-X", "POST", "http://127.0.0.1:\(port)/api/v1/pipelines/watched/dead-letters/drop"]) }
        #expect(refused.status == 403, "\(refused.status) \(refused.body)")
        kill(sluice.processIdentifier, SIGTERM)
        await waitForExit(sluice)
        #expect(sluice.terminationStatus == 0)
    }

    /// With `--dashboard-writes`, the page of a pipeline replays and drops its dead letters.
    @Test func withWritesThePipelinePageDropsDeadLetters() async throws {
        let dir = try makeWorkDirectory("dashboard-writes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              watched:
                source: { file: { path: data, format: ndjson, watch: true, poll_interval: 100ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        try write("{\"id\":1}\n{bad\n{bad again\n", to: "\(dir)/data/1.ndjson")
        let port = try freePort()
        let sluice = try SluiceProcess.start(["run", "p.yaml", "--metrics-port", "\(port)", "--dashboard-writes"], in: dir, log: "\(dir)/sluice.log")
        defer { if sluice.isRunning { kill(sluice.processIdentifier, SIGKILL) } }
        func details() -> [String: Any] {
            let body = (try? curl(["http://127.0.0.1:\(port)/api/v1/pipelines/watched"]))?.body ?? ""
            return (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
        }
        let ready = try await waitUntil(seconds: 60) { (details()["dead_letters"] as? [String: Any])?["total"] as? Int == 2 }
        #expect(ready, "\(details())")
        let d = details()
        #expect(d["writes"] as? Bool == true && (d["checkpoint"] as? [[String: Any]])?.isEmpty == false, "\(d)")
        let page = try await Self.renderedDOM("http://127.0.0.1:\(port)/#/p/watched")
        let rendered = Self.rendered(page.dom, after: "Dead letters (2)</h3>")
        #expect(rendered.contains("<button id=\"replay\">Replay all</button>") && rendered.contains("<button id=\"drop\""), "\(rendered)")
        let first = ((d["dead_letters"] as? [String: Any])?["page"] as? [[String: Any]])?.first?["id"] as? Int ?? -1
        let dropped = try await offPool { try curl(["-X", "POST", "http://127.0.0.1:\(port)/api/v1/pipelines/watched/dead-letters/drop?id=\(first)"]) }
        #expect(dropped.status == 200 && dropped.body.contains("\"dropped\":1"), "\(dropped.status) \(dropped.body)")
        #expect((details()["dead_letters"] as? [String: Any])?["total"] as? Int == 1)
        // Replaying a letter that still does not decode keeps it, one attempt more.
        let replayed = try await offPool { try curl(["-X", "POST", "http://127.0.0.1:\(port)/api/v1/pipelines/watched/dead-letters/replay"]) }
        #expect(replayed.status == 200 && replayed.body.contains("\"failed_again\":1"), "\(replayed.status) \(replayed.body)")
        let left = ((details()["dead_letters"] as? [String: Any])?["page"] as? [[String: Any]]) ?? []
        #expect(left.count == 1 && left[0]["attempts"] as? Int == 2, "\(left)")
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
        let anonymous = try await offPool { try curl(["-i", "http://127.0.0.1:\(port)/api/v1/status"]) }
        #expect(anonymous.status == 401 && anonymous.body.contains("WWW-Authenticate: Basic"), "\(anonymous.status) \(anonymous.body)")
        for path in ["/", "/api/v1/pipelines/orders", "/api/v1/tap?pipeline=orders"] {
            let r = try await offPool { try curl(["http://127.0.0.1:\(port)\(path)"]) }
            #expect(r.status == 401, "\(path): \(r.status)")
        }
        // A browser sends the key as the Basic password.
        let basic = try await offPool { try curl(["-u", "ops:\(key)", "http://127.0.0.1:\(port)/"]) }
        #expect(basic.status == 200 && basic.body.contains("<title>Sluice</title>"), "\(basic.status)")
        let keyed = try await offPool { try curl(["-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/v1/status"]) }
        #expect(keyed.status == 200 && keyed.body.contains("\"name\":\"orders\""), "\(keyed.status) \(keyed.body)")
        // Writes need --dashboard-writes: this server is read-only.
        let write = try await offPool {
            try curl(["-X", "POST", "-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/api/v1/pipelines/orders/dead-letters/drop"])
        }
        #expect(write.status == 403, "\(write.status) \(write.body)")
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
        // Tapped or not, the output holds every record once.
        #expect(try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out").count) == n }, "\((try? outputLines("\(dir)/out").count) ?? -1) of \(n)")
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

extension Thread {
    /// Reads `handle` to its end on a thread of its own; the returned closure waits for it.
    static func detachedRead(_ handle: FileHandle) -> () -> String {
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var data = Data() }
        let box = Box()
        Thread {
            box.data = handle.readDataToEndOfFile()
            done.signal()
        }.start()
        return {
            done.wait()
            return String(decoding: box.data, as: UTF8.self)
        }
    }
}
