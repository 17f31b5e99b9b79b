import Foundation
import Logging
import SluiceCore
import SluiceFormats
@testable import SluiceServer
import SluiceStateSQLite
import Testing

/// Records answered 202 are not dead-lettered for the decoder's column cap: when queued records
/// together hold more fields than one schema may have (accepted by different runs of the
/// server), the reader starts a new schema instead.
@Suite struct HTTPSourceColumnCapTests {
    @Test func queuedRecordsPastTheColumnCapStartANewSchemaInsteadOfDeadLetters() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cap-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStateStore(path: "\(dir)/state.db")
        // Three requests of 4000 fields each, none shared: 12001 columns with received_at.
        let perRequest = 4_000
        for r in 0..<3 {
            let line = "{\"received_at\":\"2026-01-01T00:00:00Z\"," + (0..<perRequest).map { "\"r\(r)_\($0)\":\($0)" }.joined(separator: ",") + "}\n"
            _ = try await store.append([
                PushAppend(stream: "s", pipeline: "p", requestID: "req\(r)", payload: Array(line.utf8), records: 1, receivedAt: Date())
            ])
        }
        let reader = try await HTTPSource(options: HTTPStreamOptions(stream: "s"))
            .makeReader(resumingFrom: .empty, context: SourceContext(pipeline: "p", state: store, logger: Logger(label: "test")))
        var rows = 0
        var rejects: [DeadLetter] = []
        var widest = 0
        var position = ""
        while rows + rejects.count < 3 {
            let batch = try #require(try await reader.next())
            rows += batch.records.count
            rejects += batch.rejects
            widest = max(widest, batch.records.schema.count)
            position = batch.position.value
        }
        #expect(rejects.isEmpty, "\(rejects.map(\.message))")
        #expect(rows == 3)
        #expect(widest <= NDJSONDecoder.maxColumns)
        #expect(position == "3")
    }
}
