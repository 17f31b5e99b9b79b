import Foundation
import Testing
import SluiceTesting

/// Numbers reach the lake as written, or are refused at the door with their field named: the
/// real `sluice serve` behind curl, its NDJSON output read back as text.
@Suite(.offCooperativePool) struct ExactNumbersEndToEndTests {
    @Test func pushedNumbersAreExactOrRefusedBeforeTheyAreAccepted() async throws {
        let dir = try makeWorkDirectory("exact-numbers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              amounts:
                source:
                  http: { stream: amounts }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let server = try await ServedProcess.start(in: dir, port: port)
        defer { if server.process.isRunning { server.kill9() } }

        // No exact type holds these: 422 before anything is acknowledged, naming the field.
        for number in ["1e400", "-1e400", "1e-400", String(repeating: "9", count: 400)] {
            let refused = try curl(postArgs(port, "amounts", data: "{\"id\": 0, \"amount\": \(number)}"))
            #expect(refused.status == 422, "\(number.prefix(20)): \(refused.status) \(refused.body)")
            #expect(refused.body.contains("number_out_of_range") && refused.body.contains("amount"), "\(refused.body)")
        }
        // Beyond int64 and float64, yet exact as decimals: accepted and stored digit for digit.
        let lines = [
            #"{"id": 1, "amount": 18446744073709551617}"#, #"{"id": 2, "amount": -9223372036854775809}"#,
            #"{"id": 3, "amount": 12345678901234567890.123456789}"#,
        ]
        let accepted = try curl(postArgs(port, "amounts", data: lines.joined(separator: "\n") + "\n", contentType: "application/x-ndjson"))
        #expect(accepted.status == 202, "\(accepted.body)")
        #expect(try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out"))?.count == 3 }, "the accepted records did not land")
        let out = try outputLines("\(dir)/out").joined(separator: "\n")
        for digits in ["18446744073709551617", "-9223372036854775809", "12345678901234567890.123456789"] {
            #expect(out.contains(digits), "\(digits) is not in the output: \(out)")
        }
        #expect(server.stop() == 0)
    }
}
