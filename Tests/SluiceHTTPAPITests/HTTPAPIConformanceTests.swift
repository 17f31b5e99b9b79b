import SluiceConnectors
import SluiceTesting
import Testing

/// The connector conformance suite on the `http_api` source, against the test API's feed.
@Suite(.offCooperativePool) struct HTTPAPIConformanceTests {
    // A hang guard, generous: the full suite's push floods share the event-loop threads.
    @Test(.timeLimit(.minutes(10))) func theHTTPAPISourceKeepsTheContract() async throws {
        let server = try TestAPIServer.start()
        defer { server.stop() }
        let fixture = SourceFixture(
            config:
                #"http_api: { url: "\#(server.url)/feed", records: data, pagination: { offset: { limit_param: limit, limit: 3 } }, incremental: { field: seq, param: after }, columns: { id: int64 } }"#,
            unreachableConfig: #"http_api: { url: "http://127.0.0.1:9/feed", max_retries: 0 }"#,
            state: MemoryStateStore(),
            append: { ids in try await offPool { try server.control("/_control/append", ["ids": ids]) } },
            appendMalformed: { try await offPool { try server.control("/_control/append", ["malformed": true]) } })
        try await SourceConformance(registry: BuiltinComponents.registry, fixture: fixture).run()
    }
}
