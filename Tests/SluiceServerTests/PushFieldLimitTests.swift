import Foundation
import Logging
import SluiceCore
@testable import SluiceServer
import SluiceStateSQLite
import Testing

/// A request cannot explode a stream's schema: the fields it adds are counted at the door,
/// and a request past `max_new_fields` or `max_columns` gets 422 before anything is accepted.
@Suite struct PushFieldLimitTests {
    /// `records` NDJSON lines, each with an id and `fields` fields no other line has.
    static func explodingBody(records: Int, fields: Int) -> String {
        (0..<records).map { r in
            "{\"id\":\(r)," + (0..<fields).map { "\"f\(r)_\($0)\":\($0)" }.joined(separator: ",") + "}"
        }.joined(separator: "\n") + "\n"
    }

    @Test func aRequestAddingThousandsOfFieldsIs422AndStoresNothing() async throws {
        try await PushHarness.run([stream()]) { h in
            let body = Self.explodingBody(records: 10, fields: 990)
            #expect(body.utf8.count > 100_000)
            let refused = try await h.post("s", body, contentType: "application/x-ndjson")
            #expect(refused.status == 422, "\(refused.body.prefix(500))")
            #expect(refused.headers["Content-Type"].first == "application/problem+json")
            let p = refused.json
            #expect(p["type"] as? String == "urn:sluice:problem:too-many-new-fields")
            #expect(p["limit"] as? String == "max_new_fields")
            #expect(p["limit_value"] as? Int == 100)
            #expect(p["new_field_count"] as? Int == 9_901)
            #expect(p["new_fields"] as? [String] == ["id"] + (0..<9).map { "f0_\($0)" })
            #expect((p["detail"] as? String)?.contains("nothing was ingested") == true)
            // The answer stays small whatever the request held.
            #expect(refused.body.utf8.count < 2_000)
            #expect(try await h.queuedLines().isEmpty)

            // Nothing of the refused request was counted: a request within the limit passes.
            let within = try await h.post("s", Self.explodingBody(records: 1, fields: 99), contentType: "application/x-ndjson")
            #expect(within.status == 202, "\(within.body)")
            let small = try await h.post("s", #"{"id":777}"#)
            #expect(small.status == 202, "\(small.body)")
            #expect(try await h.queuedLines().count == 2)
        }
    }

    @Test func theColumnCapIsCheckedAtTheDoorAndKnownFieldsStillPass() async throws {
        let s = stream {
            $0.maxColumns = 50
            $0.maxNewFields = 40
            $0.onInvalid = .deadLetter
        }
        try await PushHarness.run([s]) { h in
            // received_at + id + 38 = 40 fields.
            let first = try await h.post("s", "{\"id\":1," + (0..<38).map { "\"a\($0)\":1" }.joined(separator: ",") + "}")
            #expect(first.status == 202, "\(first.body)")
            // 20 more would make 60 > 50: refused as a whole, even in dead_letter mode.
            let second = try await h.post("s", "{\"id\":2," + (0..<20).map { "\"b\($0)\":1" }.joined(separator: ",") + "}")
            #expect(second.status == 422, "\(second.body)")
            #expect(second.json["type"] as? String == "urn:sluice:problem:too-many-columns")
            #expect(second.json["limit"] as? String == "max_columns")
            #expect(second.json["limit_value"] as? Int == 50)
            #expect((second.json["new_fields"] as? [String])?.first == "b0")
            // Known fields, and up to the cap: accepted.
            let known = try await h.post("s", "{\"id\":3,\"a0\":5}")
            #expect(known.status == 202, "\(known.body)")
            let upToTheCap = try await h.post("s", "{\"id\":4," + (0..<10).map { "\"c\($0)\":1" }.joined(separator: ",") + "}")
            #expect(upToTheCap.status == 202, "\(upToTheCap.body)")
            let pastIt = try await h.post("s", #"{"id":5,"d":1}"#)
            #expect(pastIt.status == 422, "\(pastIt.body)")
            #expect(try await h.queuedLines().count == 3)
        }
    }

    @Test func concurrentRequestsCannotPassTheCapTogether() async throws {
        let s = stream {
            $0.maxColumns = 30
            $0.maxNewFields = 20
        }
        try await PushHarness.run([s]) { h in
            // Eight requests of 20 new fields each: with received_at, only one fits under 30.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for r in 0..<8 {
                    group.addTask {
                        try await h.post("s", "{" + (0..<20).map { "\"r\(r)_\($0)\":1" }.joined(separator: ",") + "}").status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.sorted() == [202] + Array(repeating: 422, count: 7))
        }
    }

    @Test func fieldsOfRecordsQueuedBeforeAStartCount() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fields-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        // Accepted by an earlier run, not yet committed by the pipeline.
        let line = "{\"received_at\":\"2026-01-01T00:00:00Z\"," + (0..<30).map { "\"q\($0)\":1" }.joined(separator: ",") + "}\n"
        _ = try await store.append([
            PushAppend(stream: "s", pipeline: "p", requestID: "earlier", payload: Array(line.utf8), records: 1, receivedAt: Date())
        ])
        var options = HTTPStreamOptions(stream: "s")
        options.maxColumns = 40
        let endpoint = PushEndpoint(
            streams: [PushStream(pipeline: "p", options: options)], store: store, queue: GroupCommitQueue(store: store),
            inflight: InflightBudget(limit: 1 << 20), logger: Logger(label: "test"))
        try await endpoint.learnQueuedFields()
        // received_at + 30 queued fields: 9 more fit, 10 do not.
        let catalog = try #require(endpoint.fieldCatalogs["s"])
        #expect(catalog.count == 31)
        #expect(catalog.admit((0..<10).map { "n\($0)" })?.limit == .columns)
        #expect(catalog.admit((0..<9).map { "n\($0)" }) == nil)
    }
}
