import Foundation
import Logging
import SluiceConnectors
import SluiceCore
import SluiceNATS
import SluiceTesting
import Testing

/// The JetStream source and sink keep the connector contract (``SourceConformance``,
/// ``SinkConformance``) on a real nats-server; the sink's stream is read back message by
/// message through the JetStream API, not through Sluice's consumer.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct JetStreamConformanceTests {
    let registry = BuiltinComponents.registry
    /// Nothing listens on port 1.
    let unreachableURL = "nats://127.0.0.1:1"

    static func connect(_ url: String) async throws -> NATSConnection {
        var logger = Logger(label: "conformance")
        logger.logLevel = .warning
        return try await NATSConnection.connect(try NATSOptions(urls: [url]), logger: logger)
    }

    @Test func theJetStreamSourceKeepsTheContract() async throws {
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let connection = try await Self.connect(nats.url)
        _ = try await JetStream(connection).ensureStream(StreamConfig(name: "CONF_IN", subjects: ["conf.in.>"]))
        @Sendable func publish(_ payload: String) async throws {
            _ = try await connection.request("conf.in.records", payload: Array(payload.utf8))
        }
        // ack_wait: how soon records read and not committed come again (the crash step waits
        // for it). 1 s was too short for a loaded full run: a record still being handed out
        // was redelivered into the same reader's batch (read [1…5, 1…5] once on this machine).
        let fixture = SourceFixture(
            config: #"jetstream: { url: "\#(nats.url)", stream: CONF_IN, consumer: conformance, ack_wait: 5s }"#,
            unreachableConfig: #"jetstream: { url: "\#(unreachableURL)", stream: CONF_IN, consumer: conformance }"#,
            state: MemoryStateStore(),
            append: { ids in for id in ids { try await publish(#"{"id":\#(id),"name":"record \#(id)"}"#) } },
            appendMalformed: { try await publish("{\"id\": 99, not json") })
        try await SourceConformance(registry: registry, fixture: fixture).run()
        await connection.close()
    }

    @Test func theJetStreamSinkKeepsTheContract() async throws {
        let nats = try NATSTestCluster.start()
        defer { nats.stop() }
        let connection = try await Self.connect(nats.url)
        let jetStream = JetStream(connection)
        let fixture = SinkFixture(
            config: #"jetstream: { url: "\#(nats.url)", stream: CONF_OUT, subject: conf.out, create: true }"#,
            unreachableConfig: #"jetstream: { url: "\#(unreachableURL)", stream: CONF_OUT, subject: conf.out }"#,
            state: MemoryStateStore(),
            readBack: {
                // Every stored message, each holding one or more NDJSON records.
                guard let info = try await jetStream.streamInfo("CONF_OUT"), info.lastSequence > 0 else { return [] }
                var ids: [Int] = []
                for sequence in info.firstSequence...info.lastSequence {
                    let reply = try await jetStream.request("STREAM.MSG.GET.CONF_OUT", ["seq": sequence])
                    guard let message = reply["message"] as? [String: Any], let data = message["data"] as? String,
                        let payload = Data(base64Encoded: data)
                    else { continue }
                    for line in String(decoding: payload, as: UTF8.self).split(separator: "\n") {
                        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                        if let id = object?["id"] as? Int { ids.append(id) }
                    }
                }
                return ids
            },
            hidesUncommitted: false)
        try await SinkConformance(registry: registry, fixture: fixture).run()
        await connection.close()
    }
}
