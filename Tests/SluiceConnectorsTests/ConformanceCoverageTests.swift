import Foundation
import SluiceConnectors
import SluiceCore
import SluiceTesting
import Synchronization
import Testing

/// Every registered component runs the conformance suite, and the suite fails a component that
/// breaks the contract (a suite that cannot fail proves nothing).
@Suite struct ConformanceCoverageTests {
    /// Each registered type has a fixture in some test target: `SourceFixture(config: "<type>: {…"`
    /// or `SinkFixture(config: "<type>: {…"`, found by reading the test sources, so a new
    /// connector needs no entry in a list here.
    @Test func everyRegisteredComponentRunsTheSuite() throws {
        let registry = BuiltinComponents.registry
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        var sources = ""
        for case let path as String in FileManager.default.enumerator(atPath: tests.path) ?? FileManager.DirectoryEnumerator()
        where path.hasSuffix(".swift") {
            sources += try String(contentsOf: tests.appendingPathComponent(path), encoding: .utf8)
        }
        func covered(_ kind: String, _ type: String) -> Bool {
            sources.range(of: kind + #"Fixture\(\s*config:\s*#?"\#(type): \{"#, options: .regularExpression) != nil
        }
        let missing =
            registry.sources.map(\.type).filter { !covered("Source", $0) }.map { "source \($0)" }
            + registry.sinks.map(\.type).filter { !covered("Sink", $0) }.map { "sink \($0)" }
        #expect(missing.isEmpty, "no conformance fixture for \(missing) (see CONTRIBUTING.md, adding a connector)")
        #expect(sources.contains("SourceConformance(") && sources.contains("SinkConformance("))
    }

    @Test func everyComponentsConfigurationErrorsAreLocated() throws {
        let registry = BuiltinComponents.registry
        let environment = [
            "NATS_URL": "nats://127.0.0.1:4222", "DATABASE_URL": "postgres://u@127.0.0.1/db", "PG_URL": "postgres://u@127.0.0.1/db",
            "MYSQL_URL": "mysql://u@127.0.0.1/db",
        ]
        for (kind, factories) in [("source", registry.sources.map(\.spec)), ("sink", registry.sinks.map(\.spec))] {
            for spec in factories {
                let alternatives = Set(spec.alternatives.compactMap(\.first))
                let valid = spec.options.filter { $0.required || alternatives.contains($0.name) }.map { ($0.name, $0.example ?? "x") }
                try ConfigConformance.check(registry: registry, kind: kind, spec: spec, valid: valid, environment: environment)
            }
        }
    }

    // MARK: The suite fails what breaks the contract

    /// Output shared by the broken components below and their fixtures.
    final class Shared: Sendable {
        let visible = Mutex<[Int]>([])
        let input = Mutex<[Int]>([])
    }

    /// Makes records visible as it writes them, before any commit.
    struct EagerSink: Sink {
        let shared: Shared
        func makeWriter(context: SinkContext) async throws -> any SinkWriter { Writer(shared: shared) }
        final class Writer: SinkWriter {
            let shared: Shared
            init(shared: Shared) { self.shared = shared }
            func write(_ batch: RecordBatch) async throws -> [RowFailure] {
                shared.visible.withLock { $0 += ConformanceSupport.ids(batch) }
                return []
            }
            func prepareCommit(_ commit: inout StateCommit) async throws {}
        }
    }

    /// Reads everything from the start, whatever its checkpoint says.
    struct ForgetfulSource: Source {
        let shared: Shared
        var isContinuous: Bool { false }
        func makeReader(resumingFrom checkpoint: Checkpoint, context: SourceContext) async throws -> any SourceReader {
            Reader(ids: shared.input.withLock { $0 })
        }
        final class Reader: SourceReader {
            var ids: [Int]?
            init(ids: [Int]) { self.ids = ids }
            func next() async throws -> SourceBatch? {
                guard let ids else { return nil }
                self.ids = nil
                var column = ColumnBuilder(type: .int64)
                for id in ids { column.append(Int64(id)) }
                return SourceBatch(
                    records: RecordBatch(schema: Schema([Field("id", .int64)]), columns: [column.finish()]),
                    position: SourcePosition(partition: "", value: "\(ids.count)"), inputBytes: 0)
            }
        }
    }

    func registry(_ shared: Shared) -> ComponentRegistry {
        var registry = BuiltinComponents.registry
        registry.register(
            sink: SinkFactory(spec: ComponentSpec(type: "eager", summary: "broken on purpose", options: [], example: "")) { _, _ in
                EagerSink(shared: shared)
            })
        registry.register(
            source: SourceFactory(spec: ComponentSpec(type: "forgetful", summary: "broken on purpose", options: [], example: "")) { _, _ in
                ForgetfulSource(shared: shared)
            })
        return registry
    }

    @Test func aSinkThatShowsUncommittedOutputFails() async throws {
        let shared = Shared()
        let fixture = SinkFixture(
            config: "eager: {}", unreachableConfig: nil, state: MemoryStateStore(),
            readBack: { shared.visible.withLock { $0 } })
        do {
            try await SinkConformance(registry: registry(shared), fixture: fixture).run()
            Issue.record("the suite passed a sink that publishes before the commit")
        } catch let failure as ConformanceFailure {
            #expect(failure.check == "output not committed is not visible after recovery", "\(failure)")
        }
    }

    @Test func aSourceThatIgnoresItsCheckpointFails() async throws {
        let shared = Shared()
        let fixture = SourceFixture(
            config: "forgetful: {}", unreachableConfig: nil, state: MemoryStateStore(),
            append: { ids in shared.input.withLock { $0 += ids } },
            appendMalformed: nil, malformedInputImpossible: "typed")
        do {
            try await SourceConformance(registry: registry(shared), fixture: fixture).run()
            Issue.record("the suite passed a source that reads everything again after a commit")
        } catch let failure as ConformanceFailure {
            #expect(failure.check == "a reader resumes after its checkpoint", "\(failure)")
        }
    }
}
