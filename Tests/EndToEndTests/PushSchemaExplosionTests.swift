import Foundation
import Testing
import SluiceTesting

/// One request cannot explode a stream's schema (issue 17 item 11): the real `sluice serve`
/// refuses a request adding thousands of fields with 422 before accepting anything, a record
/// without the stream's other fields stays small in the NDJSON output, and drift log lines are
/// summaries that a restart does not repeat.
@Suite(.offCooperativePool) struct PushSchemaExplosionTests {
    /// `records` lines, each with an id and `fields` fields no other line has.
    static func body(records: Int, fields: Int, first id: Int = 0) -> String {
        (0..<records).map { r in
            "{\"id\":\(id + r)," + (0..<fields).map { "\"f\(id + r)_\($0)\":\($0)" }.joined(separator: ",") + "}"
        }.joined(separator: "\n") + "\n"
    }

    @Test func aRequestCannotExplodeTheSchemaAndSparseRecordsStaySmall() async throws {
        let dir = try makeWorkDirectory("schema-explosion")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              wide:
                source:
                  http: { stream: wide, max_new_fields: 1000 }
                sink:
                  ndjson: { path: out, max_file_age: 1s }
                schema: { on_change: evolve }
                batch: { max_latency: 100ms }
            """, to: "\(dir)/p.yaml")
        try write(Self.body(records: 10, fields: 990), to: "\(dir)/exploding.ndjson")
        try write(Self.body(records: 1, fields: 990, first: 2), to: "\(dir)/wide.ndjson")
        let port = try freePort()
        var server = try await ServedProcess.start(in: dir, port: port, extra: ["--log-level", "info"])
        defer { if server.process.isRunning { server.kill9() } }

        // 10 records of 990 fields each: 9901 new fields, refused before anything is accepted.
        let refused = try curl(postArgs(port, "wide", data: "@\(dir)/exploding.ndjson", contentType: "application/x-ndjson"))
        #expect(refused.status == 422, "\(refused.body.prefix(500))")
        #expect(refused.problemType == "urn:sluice:problem:too-many-new-fields", "\(refused.body.prefix(500))")
        #expect(refused.json["limit"] as? String == "max_new_fields" && refused.json["new_field_count"] as? Int == 9_901)

        // Within the limits: a narrow record, one with 990 new fields, then a narrow one again.
        var landed = 0
        for data in [#"{"id":1}"#, "@\(dir)/wide.ndjson", #"{"id":777}"#] {
            let accepted = try curl(postArgs(port, "wide", data: data, contentType: "application/x-ndjson"))
            #expect(accepted.status == 202, "\(accepted.body)")
            landed += 1
            let expected = landed
            #expect(try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out"))?.count == expected }, "record \(landed) did not land")
        }
        let narrow = try outputLines("\(dir)/out").filter { $0.contains(#""id":777"#) }
        #expect(narrow.count == 1)
        // Its own two fields, not 990 nulls (the stream's schema has them all under `evolve`).
        #expect((narrow.first?.utf8.count ?? .max) < 100, "\(narrow.first?.prefix(300) ?? "")")
        #expect(server.stop() == 0)
        let firstRun = try String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)
        #expect(firstRun.contains("schema drift"), "\(firstRun.suffix(2000))")

        // Restarts, each with the same sparse record: the first may record the change (the
        // registered columns the record lacks) once; later ones do not log it again.
        var runLogs: [String] = []
        var logged = firstRun.utf8.count
        for (run, id) in [778, 779].enumerated() {
            server = try await ServedProcess.start(in: dir, port: port, extra: ["--log-level", "info"])
            let again = try curl(postArgs(port, "wide", data: "{\"id\":\(id)}", contentType: "application/x-ndjson"))
            #expect(again.status == 202, "\(again.body)")
            let expected = 4 + run
            #expect(try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out"))?.count == expected }, "record \(id) did not land")
            let line = try outputLines("\(dir)/out").first { $0.contains("\"id\":\(id)") }
            #expect((line?.utf8.count ?? .max) < 100, "\(line?.prefix(300) ?? "")")
            #expect(server.stop() == 0)
            let log = try String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)
            runLogs.append(String(decoding: Array(log.utf8.dropFirst(logged)), as: UTF8.self))
            logged = log.utf8.count
        }
        #expect(runLogs[0].components(separatedBy: "schema drift").count <= 2, "\(runLogs[0].prefix(2000))")
        #expect(!runLogs[1].contains("schema drift"), "\(runLogs[1].prefix(2000))")

        let log = try String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)
        // Every line bounded: drift is summarised (counts and the first names), not listed whole.
        let longest = log.split(separator: "\n").map(\.utf8.count).max() ?? 0
        #expect(longest < 2_000, "a log line has \(longest) bytes")
        // Nothing answered 202 was dead-lettered later.
        let dlq = try SluiceProcess.run(["dlq", "list", "--json"], in: dir)
        #expect(dlq.status == 0 && dlq.stdout.split(separator: "\n").isEmpty, "\(dlq.stdout.prefix(1000))")
    }
}
