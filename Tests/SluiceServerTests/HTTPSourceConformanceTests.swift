import Foundation
import SluiceConnectors
import SluiceCore
import SluiceStateSQLite
import SluiceTesting
import Synchronization
import Testing

/// The push source keeps the connector contract (``SourceConformance``) on the durable queue of
/// a real SQLite state store, fed as the endpoint feeds it (one append per accepted request).
@Suite(.timeLimit(.minutes(3))) struct HTTPSourceConformanceTests {
    @Test func thePushSourceKeepsTheContract() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-http-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        let requests = Mutex(0)
        @Sendable func accept(_ lines: [String]) async throws {
            let n = requests.withLock {
                $0 += 1; return $0
            }
            let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
            _ = try await store.append([
                PushAppend(
                    stream: "events", pipeline: ConformanceSupport.pipeline, requestID: "r\(n)",
                    payload: payload, records: lines.count, receivedAt: Date())
            ])
        }
        let fixture = SourceFixture(
            config: "http: { stream: events, auth: none }",
            unreachableConfig: nil,
            state: store,
            append: { ids in try await accept(ids.map { #"{"id":\#($0),"name":"record \#($0)"}"# }) },
            // The endpoint validates at the door; a line the queue's reader cannot decode is still dead-lettered.
            appendMalformed: { try await accept(["{\"id\": 99, not json"]) })
        try await SourceConformance(registry: BuiltinComponents.registry, fixture: fixture).run()
    }
}
