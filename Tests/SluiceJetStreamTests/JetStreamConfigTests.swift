import Foundation
import SluiceConnectors
import SluiceCore
import Testing
import SluiceTesting

/// Bad `jetstream` options stop before any data moves, naming the file, line and key.
@Suite(.offCooperativePool) struct JetStreamConfigTests {
    func load(_ yaml: String) throws -> LoadedConfig {
        try ConfigLoader(registry: BuiltinComponents.registry, baseDirectory: "/tmp").load(text: yaml, file: "p.yaml")
    }

    func message(_ yaml: String) -> String {
        do {
            _ = try load(yaml)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func badOptionsAreNamedWithTheirLine() {
        let badURL = message(
            """
            pipelines:
              p:
                source: { file: { path: x.csv } }
                sink:
                  jetstream: { url: "http://h:1", stream: S, subject: s }
            """)
        #expect(badURL.contains("p.yaml:5") && badURL.contains("url") && badURL.contains("nats://"), "\(badURL)")
        let badStream = message(
            """
            pipelines:
              p:
                source: { file: { path: x.csv } }
                sink:
                  jetstream: { url: "nats://h:1", stream: "a.b", subject: s }
            """)
        #expect(badStream.contains("stream") && badStream.contains("no dots"), "\(badStream)")
        let noSubject = message(
            """
            pipelines:
              p:
                source: { file: { path: x.csv } }
                sink:
                  jetstream: { url: "nats://h:1", stream: S }
            """)
        #expect(noSubject.contains("subject"), "\(noSubject)")
        let badFormat = message(
            """
            pipelines:
              p:
                source:
                  jetstream: { url: "nats://h:1", stream: S, format: avro }
                sink: { stdout: {} }
            """)
        #expect(badFormat.contains("p.yaml:4") && badFormat.contains("ndjson or change_events"), "\(badFormat)")
        let typo = message(
            """
            pipelines:
              p:
                source:
                  jetstream: { url: "nats://h:1", stream: S, ack_wiat: 5s }
                sink: { stdout: {} }
            """)
        #expect(typo.contains("ack_wiat") && typo.contains("ack_wait"), "\(typo)")
        let badType = message(
            """
            pipelines:
              p:
                source:
                  jetstream: { url: "nats://h:1", stream: S, columns: { id: widget } }
                sink: { stdout: {} }
            """)
        #expect(badType.contains("column 'id'") && badType.contains("unknown type 'widget'"), "\(badType)")
    }

    /// Behind a queue, records have no stable position: a jetstream sink needs their own ids.
    @Test func aQueueFedJetStreamSinkNeedsMessageIDs() throws {
        let positional = message(
            """
            pipelines:
              relay:
                source:
                  jetstream: { url: "nats://h:1", stream: A }
                sink:
                  jetstream: { url: "nats://h:1", stream: B, subject: b.out, records_per_message: 100 }
            """)
        #expect(positional.contains("p.yaml:6") && positional.contains("sink.message_id") && positional.contains("in any order"), "\(positional)")
        _ = try load(
            """
            pipelines:
              relay:
                source:
                  jetstream: { url: "nats://h:1", stream: A }
                sink:
                  jetstream: { url: "nats://h:1", stream: B, subject: b.out, message_id: [event_id] }
            """)
        let tooSmall = message(
            """
            pipelines:
              p:
                source: { file: { path: x.csv } }
                sink:
                  jetstream: { url: "nats://h:1", stream: S, subject: s, max_message_bytes: 100 }
            """)
        #expect(tooSmall.contains("max_message_bytes") && tooSmall.contains("1KB"), "\(tooSmall)")
    }

    @Test func theSourceDefaultsItsConsumerToThePipelineAndDedupesBySequence() throws {
        let config = try load(
            """
            pipelines:
              clicks.lake:
                source:
                  jetstream: { url: "nats://h:1", stream: S }
                sink: { stdout: {} }
            """)
        let plan = try #require(config.pipelines.first)
        #expect(plan.settings.dedupe?.key == ["_nats_seq"])
    }
}
