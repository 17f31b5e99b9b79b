import Foundation
import SluiceCore

/// A sink's test environment for ``SinkConformance``: where its output goes and how to read it.
public struct SinkFixture: Sendable {
    /// The `sink:` mapping of a working configuration, on one line: `ndjson: { path: "/tmp/x/out" }`.
    public var config: String
    /// The same for output that cannot be reached now, or nil when the sink cannot be
    /// unreachable (standard output, the blackhole).
    public var unreachableConfig: String?
    /// The state store writers get (one of its own per fixture).
    public var state: any StateStore
    /// The ids of the records visible in the output now; nil for output the suite cannot read
    /// back (standard output, the blackhole), which is then only built, checked and closed.
    public var readBack: (@Sendable () async throws -> [Int])?
    /// True when output prepared but not committed stays invisible (files, tables); false for a
    /// queue, which cannot take a published message back (its consumers dedupe by message id).
    public var hidesUncommitted: Bool

    public init(
        config: String, unreachableConfig: String?, state: any StateStore,
        readBack: (@Sendable () async throws -> [Int])?, hidesUncommitted: Bool = true
    ) {
        self.config = config
        self.unreachableConfig = unreachableConfig
        self.state = state
        self.readBack = readBack
        self.hidesUncommitted = hidesUncommitted
    }
}

/// The contract every sink keeps, checked on the real thing:
///
/// 1. `checkReachable()` passes for output that can be written and throws a ``SluiceError``
///    for output that cannot;
/// 2. a full commit (write, prepare, state commit, publish) makes exactly its records visible;
/// 3. **a crash between prepare and the state commit**: the next writer recovers so that the
///    output holds exactly the records up to the state's checkpoint (a sink that stores its
///    checkpoint with its data may have moved it), and writing the rest from there ends with
///    every record exactly once;
/// 4. **close**: a writer closed without writing changes nothing, and the next writer works.
public struct SinkConformance {
    public let registry: ComponentRegistry
    public let fixture: SinkFixture
    let name: String

    public init(registry: ComponentRegistry, fixture: SinkFixture) {
        self.registry = registry
        self.fixture = fixture
        name = "sink " + (fixture.config.split(separator: ":").first.map(String.init) ?? fixture.config)
    }

    func sink(_ config: String) throws -> any Sink {
        try ConformanceSupport.plan(registry: registry, source: "file: { path: \"in/*.ndjson\" }", sink: config).sink
    }

    var context: SinkContext {
        SinkContext(pipeline: ConformanceSupport.pipeline, state: fixture.state, logger: ConformanceSupport.logger)
    }

    func fail(_ check: String, _ detail: String) -> ConformanceFailure {
        ConformanceFailure(component: name, check: check, detail: detail)
    }

    /// Records `{id, name}` for `ids`.
    static func batch(_ ids: ClosedRange<Int>) -> RecordBatch {
        var id = ColumnBuilder(type: .int64)
        var name = ColumnBuilder(type: .string)
        for i in ids {
            id.append(Int64(i))
            name.append(string: "record \(i)")
        }
        return RecordBatch(schema: Schema([Field("id", .int64), Field("name", .string)]), columns: [id.finish(), name.finish()])
    }

    /// Writes `ids` and prepares a commit checkpointing the last of them; returns the prepared commit.
    func writeAndPrepare(_ writer: any SinkWriter, _ ids: ClosedRange<Int>) async throws -> StateCommit {
        let failures = try await writer.write(Self.batch(ids))
        guard failures.isEmpty else { throw fail("valid records are written", "refused rows \(failures.map(\.row)): \(failures[0].error)") }
        var commit = StateCommit(pipeline: ConformanceSupport.pipeline)
        commit.checkpoint = ["conformance": String(ids.upperBound)]
        commit.records = ids.count
        try await writer.prepareCommit(&commit)
        return commit
    }

    func commit(_ writer: any SinkWriter, _ ids: ClosedRange<Int>) async throws {
        let prepared = try await writeAndPrepare(writer, ids)
        try await fixture.state.commit(prepared)
        try await writer.finishCommit()
    }

    func expectOutput(_ expected: [Int], _ check: String) async throws {
        guard let readBack = fixture.readBack else { return }
        let ids = try await readBack().sorted()
        guard ids == expected else { throw fail(check, "the output holds \(ids), expected \(expected)") }
    }

    /// Runs every check in order; throws the first broken contract.
    public func run() async throws {
        let sink = try sink(fixture.config)

        // 1. Reachability.
        try await sink.checkReachable()
        if let unreachable = fixture.unreachableConfig {
            do {
                try await self.sink(unreachable).checkReachable()
                throw fail("unreachable output is reported", "checkReachable() passed for \(unreachable)")
            } catch let error as SluiceError {
                guard !error.message.isEmpty else { throw fail("unreachable output is reported", "the error says nothing") }
            }
        }

        // 2. A full commit.
        let first = try await sink.makeWriter(context: context)
        try await commit(first, 1...5)
        try await expectOutput(Array(1...5), "a commit makes its records visible")

        // 3. A crash between prepare and the state commit: this writer is abandoned, as by kill -9.
        _ = try await writeAndPrepare(first, 6...8)
        let recovered = try await sink.makeWriter(context: context)
        let committed = Int(try await fixture.state.checkpoint(pipeline: ConformanceSupport.pipeline)["conformance"] ?? "0") ?? 0
        guard committed == 5 || committed == 8 else {
            throw fail("recovery keeps the checkpoint true", "the checkpoint is \(committed) after recovery, expected 5 or 8")
        }
        if fixture.hidesUncommitted {
            try await expectOutput(Array(1...committed), "output not committed is not visible after recovery")
        }
        if committed < 8 { try await commit(recovered, (committed + 1)...8) }
        try await expectOutput(Array(1...8), "after a crash and recovery every record is in the output exactly once")
        await recovered.close()

        // 4. Close without writing; the next writer works.
        let idle = try await sink.makeWriter(context: context)
        await idle.close()
        let last = try await sink.makeWriter(context: context)
        try await commit(last, 9...9)
        await last.close()
        try await expectOutput(Array(1...9), "a writer closed unused changes nothing")
    }
}
