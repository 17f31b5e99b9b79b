import AsyncHTTPClient
import Foundation
import SluiceTesting
import Testing

/// `sluice serve` as a user runs it, driven by curl and by a load generator.
@Suite(.offCooperativePool, .serialized) struct PushEndToEndTests {
    static let secret = "whsec_0123456789abcdef0123456789"

    static let config = """
        pipelines:
          clicks:
            source:
              http: { stream: clicks, columns: { user_id: int64, url: string }, required: [user_id] }
            sink:
              ndjson: { path: out/clicks, max_file_age: 1s }
            batch: { max_latency: 100ms }
          orders:
            source:
              http: { stream: orders, auth: api_key, rate_limit: { requests_per_second: 0.001, burst: 4 } }
            sink:
              ndjson: { path: out/orders, max_file_age: 1s }
          hooks:
            source:
              http: { stream: hooks, auth: hmac, hmac: { secret: "\(secret)", tolerance: 5m } }
            sink:
              ndjson: { path: out/hooks, max_file_age: 1s }
          tiny:
            source:
              http: { stream: tiny, max_queue_records: 1, max_body: 64KB }
            sink:
              blackhole: {}
        """

    @Test func curlSeesEveryStatusCodeAndAcceptedRecordsLand() async throws {
        let dir = try makeWorkDirectory("push-curl")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/p.yaml")
        let created = try SluiceProcess.run(["keys", "create", "--name", "shop", "--stream", "orders", "-c", "p.yaml"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let key = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("slk_"))
        let other = try SluiceProcess.run(["keys", "create", "--name", "elsewhere", "--stream", "clicks", "-c", "p.yaml"], in: dir)
        let otherKey = other.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let listed = try SluiceProcess.run(["keys", "list", "-c", "p.yaml"], in: dir)
        #expect(listed.stdout.contains("shop") && listed.stdout.contains("orders") && !listed.stdout.contains(key.split(separator: "_").last!))

        let port = try freePort()
        // The tiny stream's pipeline commits slowly, so its one-record queue stays full for a while.
        let server = try await ServedProcess.start(in: dir, port: port, environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "1500"])
        var r = try curl(postArgs(port, "clicks", data: #"{"user_id": 1, "url": "/a"}"#))
        #expect(r.status == 202, "\(r.body)")
        r = try curl(
            postArgs(
                port, "clicks", data: "{\"user_id\": 2}\n{\"user_id\": 3, \"url\": \"/c\"}\n", contentType: "application/x-ndjson",
                headers: ["Idempotency-Key: batch-1"]))
        #expect(r.status == 202)
        let replay = try curl(
            postArgs(
                port, "clicks", data: "{\"user_id\": 2}\n{\"user_id\": 3, \"url\": \"/c\"}\n", contentType: "application/x-ndjson",
                headers: ["Idempotency-Key: batch-1"]))
        #expect(replay.status == 202 && replay.body == r.body && replay.header("Idempotent-Replayed") == "true")
        #expect(try curl(postArgs(port, "clicks", data: #"{"user_id": 1"#)).status == 400)
        #expect(try curl(postArgs(port, "clicks", data: #"{"user_id": "one"}"#)).status == 422)
        #expect(try curl(postArgs(port, "clicks", data: #"{"user_id": 4}"#, headers: ["Idempotency-Key: batch-1"])).status == 422)
        #expect(try curl(postArgs(port, "clicks", data: #"{"user_id": 1}"#, contentType: "text/csv")).status == 415)
        #expect(try curl(postArgs(port, "nowhere", data: #"{"user_id": 1}"#)).status == 404)
        #expect(try curl(postArgs(port, "orders", data: #"{"id": 1}"#)).status == 401)
        #expect(try curl(postArgs(port, "orders", data: #"{"id": 1}"#, headers: ["Authorization: Bearer \(otherKey)"])).status == 403)
        var orderStatuses: [Int] = []
        for i in 0..<5 {
            orderStatuses.append(try curl(postArgs(port, "orders", data: "{\"id\": \(i)}", headers: ["Authorization: Bearer \(key)"])).status)
        }
        #expect(orderStatuses == [202, 202, 202, 202, 429])
        let limited = try curl(postArgs(port, "orders", data: #"{"id": 9}"#, headers: ["Authorization: Bearer \(key)"]))
        #expect(limited.status == 429 && limited.header("Retry-After") != nil && limited.header("RateLimit-Limit") == "4")
        #expect(try curl(postArgs(port, "tiny", data: #"{"n": 1}"#)).status == 202)
        let full = try curl(postArgs(port, "tiny", data: #"{"n": 2}"#))
        #expect(full.status == 503 && full.header("Retry-After") == "1", "\(full.body)")
        let big = "\(dir)/big.json"
        try write("[" + Array(repeating: #"{"pad": "0123456789012345678901234567890123456789"}"#, count: 3000).joined(separator: ",") + "]", to: big)
        #expect(try curl(postArgs(port, "tiny", data: "@\(big)")).status == 413)
        let revoked = try SluiceProcess.run(["keys", "revoke", key, "-c", "p.yaml"], in: dir)
        #expect(revoked.status == 0)
        #expect(try curl(["http://127.0.0.1:\(port)/readyz"]).status == 200)
        let metrics = try curl(["http://127.0.0.1:\(port)/metrics"])
        #expect(metrics.body.contains("sluice_http_requests_total"))
        #expect(metrics.body.contains("sluice_http_auth_failures_total"))
        // The endpoint's series name the pipeline their stream feeds, like the pipelines' own.
        let http = metrics.body.split(separator: "\n").filter { $0.hasPrefix("sluice_http_") || $0.hasPrefix("sluice_push_") }
        #expect(http.contains { $0.contains(#"pipeline="orders",stream="orders""#) }, "\(http.prefix(5))")
        for line in http where !line.contains(#"stream="unknown""#) { #expect(line.contains("pipeline=\""), "\(line)") }
        try await Task.sleep(for: .milliseconds(2100))
        #expect(try curl(postArgs(port, "orders", data: #"{"id": 1}"#, headers: ["Authorization: Bearer \(key)"])).status == 401)

        try await Task.sleep(for: .milliseconds(1500))
        #expect(server.stop() == 0)
        let clicks = try outputLines("\(dir)/out/clicks")
        #expect(clicks.count == 3, "\(clicks)")
        #expect(clicks.allSatisfy { $0.contains("\"received_at\":\"20") })
        #expect(
            Set(
                clicks.compactMap { line in
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
                }.compactMap { $0["user_id"] as? Int }) == [1, 2, 3])
        #expect(try outputLines("\(dir)/out/orders").count == 4)
    }

    @Test func aCorpusOfBadInputGetsTheRight4xxAndNothingIsIngested() async throws {
        let dir = try makeWorkDirectory("push-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(Self.config, to: "\(dir)/p.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        var bad = Array(#"{"user_id": 1, "url": ""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        try Data(bad).write(to: URL(fileURLWithPath: "\(dir)/utf8.json"))
        bad = Array(("{\"user_id\": 1, \"url\": " + String(repeating: "[", count: 100_000)).utf8)
        try Data(bad).write(to: URL(fileURLWithPath: "\(dir)/deep.json"))
        let hundredMB = "\(dir)/huge.json"
        FileManager.default.createFile(atPath: hundredMB, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: hundredMB))
        let chunk = Data(("[" + String(repeating: #"{"user_id": 1, "url": "/"},"#, count: 40_000)).utf8)
        while handle.offsetInFile < 100 << 20 { handle.write(chunk) }
        try handle.close()
        let body = Array(#"{"event": "x"}"#.utf8)
        let now = Int(Date().timeIntervalSince1970)
        try Data(body).write(to: URL(fileURLWithPath: "\(dir)/hook.json"))

        let cases: [(String, [String], Int)] = [
            ("invalid UTF-8", postArgs(port, "clicks", data: "@\(dir)/utf8.json"), 400),
            ("truncated JSON", postArgs(port, "clicks", data: #"[{"user_id": 1}, {"user_id": 2"#), 400),
            ("truncated NDJSON line", postArgs(port, "clicks", data: "{\"user_id\": 1}\n{\"user_id\": ", contentType: "application/x-ndjson"), 400),
            ("100 MB body", postArgs(port, "clicks", data: "@\(hundredMB)"), 413),
            ("100 MB body, chunked", postArgs(port, "clicks", data: "@\(hundredMB)", headers: ["Transfer-Encoding: chunked"]), 413),
            ("deeply nested arrays", postArgs(port, "clicks", data: "@\(dir)/deep.json"), 400),
            ("wrong content type", postArgs(port, "clicks", data: #"{"user_id": 1}"#, contentType: "application/xml"), 415),
            (
                "no content type",
                [
                    "-X", "POST", "http://127.0.0.1:\(port)/v1/streams/clicks/records", "-H", "Content-Type:",
                    "--data-binary", #"{"user_id": 1}"#,
                ], 415
            ),
            (
                "wrong signature",
                postArgs(
                    port, "hooks", data: "@\(dir)/hook.json",
                    headers: ["X-Sluice-Timestamp: \(now)", "X-Sluice-Signature: sha256=" + String(repeating: "ab", count: 32)]), 401
            ),
            (
                "stale timestamp",
                postArgs(
                    port, "hooks", data: "@\(dir)/hook.json",
                    headers: ["X-Sluice-Timestamp: \(now - 3600)", "X-Sluice-Signature: \(Self.sign(body, now - 3600))"]), 401
            ),
            ("schema violation", postArgs(port, "clicks", data: #"[{"user_id": 1}, {"url": "/no-user"}]"#), 422),
            ("duplicate key", postArgs(port, "clicks", data: #"{"user_id": 1, "user_id": 2}"#), 400),
            ("number out of range", postArgs(port, "clicks", data: #"{"user_id": 1, "v": 1e400}"#), 422),
            (
                "dot segments",
                ["--path-as-is", "-X", "POST", "http://127.0.0.1:\(port)/v1/streams/clicks/../clicks/records", "--data-binary", "{}"], 400
            ),
            ("no such endpoint", ["http://127.0.0.1:\(port)/v1/nothing"], 404),
            ("over-long stream name", postArgs(port, String(repeating: "x", count: 5000), data: "{}"), 404),
        ]
        for (name, args, expected) in cases {
            let r = try curl(args)
            #expect(r.status == expected, "\(name): \(r.status) \(r.body)")
            if r.status >= 400 {
                #expect(r.header("Content-Type") == "application/problem+json", "\(name)")
                #expect(r.body.count < 2000, "\(name): the answer echoes the input back whole")
            }
        }
        // What the HTTP parser refuses gets a problem document too; sent as raw bytes (curl
        // would percent-encode the path).
        func post(_ target: [UInt8], headers: String = "") -> [UInt8] {
            Array("POST ".utf8) + target
                + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\(headers)Content-Length: 2\r\n\r\n{}".utf8)
        }
        let records = Array("/v1/streams/clicks/records".utf8)
        let raw: [(String, [UInt8], Int, String)] = [
            ("100 KB header", post(records, headers: "X-Padding: \(String(repeating: "a", count: 100 << 10))\r\n"), 431, "header-fields-too-large"),
            ("100 KB path", post(Array("/v1/streams/\(String(repeating: "x", count: 100 << 10))/records".utf8)), 431, "header-fields-too-large"),
            ("raw UTF-8 in the path", post(Array("/v1/streams/click".utf8) + [0xC3, 0xA9] + Array("/records".utf8)), 400, "invalid-request-target"),
            ("not HTTP", Array("P(ST /v1/streams/clicks/records HTTP/1.1\r\nHost: x\r\n\r\n".utf8), 400, "malformed-request"),
        ]
        for (name, request, expected, type) in raw {
            let r = try await rawExchange(port: port, request)
            #expect(r.status == expected, "\(name): \(r.status) \(r.headers) \(r.body)")
            #expect(r.header("Content-Type") == "application/problem+json", "\(name)")
            #expect(r.problemType == "urn:sluice:problem:\(type)", "\(name): \(r.body)")
            #expect(r.json["title"] is String && r.json["status"] as? Int == expected, "\(name): \(r.body)")
        }
        // A correctly signed hook still works, so the 401s above were about the signature.
        let ok = try curl(
            postArgs(
                port, "hooks", data: "@\(dir)/hook.json",
                headers: ["X-Sluice-Timestamp: \(now)", "X-Sluice-Signature: \(Self.sign(body, now))"]))
        #expect(ok.status == 202)
        // The same signed request again (a replay within the tolerance) is refused, whatever
        // unsigned header comes with it, and ingests nothing.
        let signed = ["X-Sluice-Timestamp: \(now)", "X-Sluice-Signature: \(Self.sign(body, now))"]
        for extra in [[], ["Idempotency-Key: another-key"], ["Idempotency-Key: yet-another"]] {
            let replay = try curl(postArgs(port, "hooks", data: "@\(dir)/hook.json", headers: signed + extra))
            #expect(replay.status == 409 && replay.body.contains("replayed-request"), "\(replay.status) \(replay.body)")
        }
        try await Task.sleep(for: .milliseconds(1300))
        #expect(server.stop() == 0)
        // Remembered in the state store: still refused after a restart.
        let restarted = try await ServedProcess.start(in: dir, port: port)
        let again = try curl(postArgs(port, "hooks", data: "@\(dir)/hook.json", headers: signed))
        #expect(again.status == 409, "after a restart: \(again.status) \(again.body)")
        #expect(restarted.stop() == 0)
        #expect(try outputLines("\(dir)/out/clicks").isEmpty, "nothing answered 4xx is ingested")
        #expect(try outputLines("\(dir)/out/hooks").count == 1, "a replayed webhook was ingested again")
        let dlq = try SluiceProcess.run(["dlq", "list", "-c", "p.yaml"], in: dir)
        #expect(!dlq.stdout.contains("http:"), "rejected requests are refused, not dead-lettered: \(dlq.stdout)")
    }

    @Test func readinessAndValidateConnectCheckThatSinksCanBeWritten() async throws {
        let dir = try makeWorkDirectory("push-ready")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("not a directory", to: "\(dir)/blocker")
        try write(
            """
            pipelines:
              clicks:
                source:
                  http: { stream: clicks }
                sink:
                  ndjson: { path: blocker/out }
            """, to: "\(dir)/p.yaml")
        let validate = try SluiceProcess.run(["validate", "p.yaml", "--connect"], in: dir)
        #expect(
            validate.status == 1 && validate.stdout.contains("unreachable  clicks: sink:") && validate.stdout.contains("is not a directory"),
            "\(validate.stdout) \(validate.stderr)")
        #expect(try SluiceProcess.run(["validate", "p.yaml"], in: dir).status == 0, "without --connect only the file is checked")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        let ready = try curl(["http://127.0.0.1:\(port)/readyz"])
        #expect(ready.status == 503 && ready.body.contains("sink of pipeline 'clicks' is not reachable"), "\(ready.body)")
        #expect(try curl(["http://127.0.0.1:\(port)/healthz"]).status == 200)
        _ = server.stop()
    }

    static func sign(_ body: [UInt8], _ timestamp: Int) -> String {
        // openssl computes the HMAC independently of Sluice's implementation.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl", "dgst", "-sha256", "-hmac", secret, "-hex"]
        let input = ChildProcesses.pipe(), output = ChildProcesses.pipe()
        p.standardInput = input
        p.standardOutput = output
        try? ChildProcesses.run(p)
        input.fileHandleForWriting.write(Data("\(timestamp).".utf8) + Data(body))
        try? input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return "sha256=" + (text.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "")
    }

    @Test func tlsWhenConfiguredAndLoopbackUnlessAuthenticated() async throws {
        let dir = try makeWorkDirectory("push-tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gen.arguments = [
            "-C", dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.pem",
            "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ]
        gen.standardError = FileHandle.nullDevice
        try ChildProcesses.run(gen)
        gen.waitUntilExit()
        #expect(gen.terminationStatus == 0)
        try write(
            """
            serve:
              tls: { certificate: server.pem, private_key: server.key }
            pipelines:
              clicks:
                source:
                  http: { stream: clicks }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port, scheme: "https")
        let secure = try curl(postArgs(port, "clicks", data: #"{"n": 1}"#, headers: [], scheme: "https") + ["--cacert", "\(dir)/server.pem"])
        #expect(secure.status == 202, "\(secure.body)")
        #expect(try curl(postArgs(port, "clicks", data: #"{"n": 2}"#)).status == 0, "plain HTTP is not served on a TLS port")
        try await Task.sleep(for: .milliseconds(1300))
        #expect(server.stop() == 0)
        #expect(try outputLines("\(dir)/out").count == 1)

        let run = try SluiceProcess.run(["run", "p.yaml"], in: dir)
        #expect(run.status == 2 && run.stderr.contains("sluice serve"), "an http source is fed by `sluice serve` only: \(run.stderr)")

        // No authentication: loopback only, unless explicitly overridden.
        let refused = try SluiceProcess.run(["serve", "p.yaml", "--host", "0.0.0.0", "--port", "\(try freePort())"], in: dir)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("refusing to listen on 0.0.0.0") && refused.stderr.contains("clicks"), "\(refused.stderr)")
        let openPort = try freePort()
        let open = try SluiceProcess.start(
            ["serve", "p.yaml", "--host", "0.0.0.0", "--port", "\(openPort)", "--allow-unauthenticated"],
            in: dir, log: "\(dir)/open.log")
        var up = false
        for _ in 0..<200 where !up {
            up = (try? curl(["-k", "https://127.0.0.1:\(openPort)/healthz"]))?.status == 200
            if !up { try await Task.sleep(for: .milliseconds(25)) }
        }
        #expect(up)
        open.terminate()
        open.waitUntilExit()
        let log = try String(contentsOfFile: "\(dir)/open.log", encoding: .utf8)
        #expect(log.contains("unauthenticated"), "a warning is logged: \(log)")
    }
}
