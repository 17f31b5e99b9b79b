import Foundation
import SluiceTesting
import Logging
import SluiceCore
import SluiceObjectStore
import Testing

/// Answers a real S3 server gives only under load or misconfiguration (503 `SlowDown`, a
/// bucket in another region, a completion that fails after its 200), from a scripted HTTP
/// server: the one place these tests use a stand-in, because SeaweedFS cannot be made to say them.
@Suite(.offCooperativePool) struct S3FaultTests {
    /// A Python HTTP server that answers each request with the next scripted response (status,
    /// headers, body) and prints the request line of each to its log.
    final class ScriptedServer: @unchecked Sendable {
        let process = Process()
        let port: Int
        let log: URL

        init(_ responses: [(Int, [String: String], String)]) throws {
            log = FileManager.default.temporaryDirectory.appendingPathComponent("s3-fault-\(UUID().uuidString).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let script = """
                import http.server, json, sys
                responses = json.loads(sys.argv[1])
                log = open(sys.argv[2], 'a', buffering=1)
                class H(http.server.BaseHTTPRequestHandler):
                    def handle_one(self):
                        n = int(self.headers.get('Content-Length') or 0)
                        if n: self.rfile.read(n)
                        log.write(self.command + ' ' + self.path + ' ' + str('Authorization' in self.headers) + '\\n')
                        status, headers, body = responses.pop(0) if responses else (500, {}, '<Error><Code>InternalError</Code></Error>')
                        data = body.encode()
                        self.send_response(status)
                        for k, v in headers.items(): self.send_header(k, v)
                        self.send_header('Content-Length', str(len(data)))
                        self.end_headers()
                        if self.command != 'HEAD': self.wfile.write(data)
                    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one
                    def log_message(self, *a): pass
                s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
                print(s.server_address[1], flush=True)
                s.serve_forever()
                """
            let json = try JSONSerialization.data(withJSONObject: responses.map { [$0.0, $0.1, $0.2] as [Any] })
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script, String(decoding: json, as: UTF8.self), log.path]
            let out = ChildProcesses.pipe()
            process.standardOutput = out
            try ChildProcesses.run(process)
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line += chunk
            }
            port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }

        var requests: [String] { ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: log)
        }
    }

    func store(_ server: ScriptedServer) -> S3ObjectStore {
        S3ObjectStore(
            bucket: "lake",
            settings: S3Settings(endpoint: "http://127.0.0.1:\(server.port)", region: "us-east-1", pathStyle: true, accessKeyID: "AK", secretAccessKey: "SK"),
            logger: Logger(label: "s3-fault"), attempts: 4)
    }

    @Test func slowDownIsRetriedUntilTheServerAccepts() async throws {
        let slowDown = (503, ["Retry-After": "0"], "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
        let server = try await offPool { try ScriptedServer([slowDown, slowDown, (200, ["ETag": "\"e1\""], "")]) }
        defer { server.stop() }
        let s3 = store(server)
        try await s3.put("a/b.txt", bytes: [1, 2, 3], ifNoneMatch: false)
        await s3.shutdown()
        #expect(server.requests == ["PUT /lake/a/b.txt True", "PUT /lake/a/b.txt True", "PUT /lake/a/b.txt True"])
    }

    @Test func aBucketInAnotherRegionIsNamed() async throws {
        let server = try await offPool {
            try ScriptedServer([
                (
                    301, ["x-amz-bucket-region": "eu-west-1"],
                    "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>"
                )
            ])
        }
        defer { server.stop() }
        let s3 = store(server)
        await #expect {
            try await s3.list(prefix: "")
        } throws: { error in
            let e = error as? SluiceError
            return e?.code == .configuration && e?.isRetryable == false && "\(error)".contains("set storage.region: eu-west-1")
        }
        await s3.shutdown()
    }

    @Test func aCompletionThatFailsAfterItsOKIsRetryable() async throws {
        let server = try await offPool {
            try ScriptedServer([(200, [:], "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>")])
        }
        defer { server.stop() }
        let s3 = store(server)
        await #expect {
            try await s3.completeMultipartUpload("k", uploadID: "u", parts: [UploadedPart(number: 1, etag: "e", size: 5)])
        } throws: { error in
            (error as? SluiceError)?.isRetryable == true && "\(error)".contains("InternalError")
        }
        await s3.shutdown()
    }

    @Test func accessDeniedNamesTheBucketAndKeyAndIsNotRetried() async throws {
        let server = try await offPool { try ScriptedServer([(403, [:], "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")]) }
        defer { server.stop() }
        let s3 = store(server)
        await #expect {
            try await s3.get("events/x.parquet", range: nil, ifMatch: nil)
        } throws: { error in
            let e = error as? SluiceError
            return e?.code == .authentication && "\(error)".contains("bucket 'lake' key 'events/x.parquet'")
        }
        #expect(server.requests.count == 1)
        await s3.shutdown()
    }
}
