import Foundation
import SluiceCore

/// A source's test environment for ``SourceConformance``: real input the suite can add to.
public struct SourceFixture: Sendable {
    /// The `source:` mapping of a working configuration, on one line:
    /// `file: { path: "/tmp/x/in", format: ndjson }`.
    public var config: String
    /// The same for input that cannot be reached now (a closed port, a missing directory), or
    /// nil for a source with no input of its own to reach (the push source, fed by `sluice serve`).
    public var unreachableConfig: String?
    /// The state store readers get (the push source keeps its queue there).
    public var state: any StateStore
    /// Adds one record with integer field `id` per element, in order.
    public var append: @Sendable ([Int]) async throws -> Void
    /// Adds one input the source cannot decode; nil when its input is typed and cannot hold
    /// such a thing (a database table), with the reason in ``malformedInputImpossible``.
    public var appendMalformed: (@Sendable () async throws -> Void)?
    public var malformedInputImpossible: String?
    /// The ids of a batch (column `id` unless the source shapes records otherwise, e.g. CDC).
    public var ids: @Sendable (RecordBatch) -> [Int]

    public init(
        config: String, unreachableConfig: String?, state: any StateStore,
        append: @escaping @Sendable ([Int]) async throws -> Void,
        appendMalformed: (@Sendable () async throws -> Void)?, malformedInputImpossible: String? = nil,
        ids: @escaping @Sendable (RecordBatch) -> [Int] = ConformanceSupport.ids
    ) {
        self.config = config
        self.unreachableConfig = unreachableConfig
        self.state = state
        self.append = append
        self.appendMalformed = appendMalformed
        self.malformedInputImpossible = malformedInputImpossible
        self.ids = ids
    }
}

/// The contract every source keeps, checked on the real thing (DESIGN.md: a connector
/// conformance suite every registered source runs):
///
/// 1. `checkReachable()` passes for input that exists and throws a ``SluiceError`` for input
///    that cannot be reached;
/// 2. a reader from an empty checkpoint reads every record once;
/// 3. **a crash before the commit** (the reader closed, nothing acknowledged) reads the same
///    records again from the same checkpoint: nothing is lost;
/// 4. **checkpoint and resume**: a reader from the positions of the batches read, after
///    `committed(_:)`, reads only what came after: nothing is read twice;
/// 5. **bad input** becomes a dead letter (``SourceBatch/rejects``) and the records after it still arrive;
/// 6. **close**: a reader closes without reading, and a closed reader's input is read by the next.
///
/// Give the calling test a time limit (`.timeLimit(.minutes(3))`): a continuous source waits
/// for input, so a broken one would wait forever.
public struct SourceConformance {
    public let registry: ComponentRegistry
    public let fixture: SourceFixture
    let name: String

    public init(registry: ComponentRegistry, fixture: SourceFixture) {
        self.registry = registry
        self.fixture = fixture
        name = "source " + (fixture.config.split(separator: ":").first.map(String.init) ?? fixture.config)
    }

    /// What one reader read.
    struct Reading {
        var ids: [Int] = []
        var rejects = 0
        var checkpoint: Checkpoint
    }

    func source(_ config: String) throws -> any Source {
        try ConformanceSupport.plan(registry: registry, source: config, sink: "blackhole: {}").source
    }

    var context: SourceContext {
        SourceContext(pipeline: ConformanceSupport.pipeline, state: fixture.state, logger: ConformanceSupport.logger)
    }

    /// Opens a reader as the runner does: a retryable failure to start (a replication slot still
    /// held by the walsender of the reader before) is tried again, here for up to 30 seconds.
    func open(_ source: any Source, from checkpoint: Checkpoint) async throws -> any SourceReader {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                return try await source.makeReader(resumingFrom: checkpoint, context: context)
            } catch let error as SluiceError where error.isRetryable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Reads from `checkpoint` until `done` holds for what was read, a finite source ends, or two
    /// minutes have passed (then the caller's check fails on what was read).
    /// With `commit`, the positions read are acknowledged (``Source/committed(_:context:)``)
    /// before the reader closes, as the runner does: a queue acknowledges on the reader's
    /// connection. Without, the reader closes as after a crash before the commit.
    func read(_ source: any Source, from checkpoint: Checkpoint, commit: Bool, until done: (Reading) -> Bool) async throws -> Reading {
        let reader = try await open(source, from: checkpoint)
        var reading = Reading(checkpoint: checkpoint)
        let deadline = ContinuousClock.now + .seconds(120)
        do {
            while !done(reading), ContinuousClock.now < deadline, let batch = try await reader.next() {
                reading.ids += fixture.ids(batch.records)
                reading.rejects += batch.rejects.count
                reading.checkpoint.partitions[batch.position.partition] = batch.position.value
            }
            if commit { try await source.committed(reading.checkpoint.partitions, context: context) }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
        return reading
    }

    func fail(_ check: String, _ detail: String) -> ConformanceFailure {
        ConformanceFailure(component: name, check: check, detail: detail)
    }

    /// Runs every check in order; throws the first broken contract.
    public func run() async throws {
        let source = try source(fixture.config)

        // 1. Reachability.
        try await source.checkReachable()
        if let unreachable = fixture.unreachableConfig {
            do {
                try await self.source(unreachable).checkReachable()
                throw fail("unreachable input is reported", "checkReachable() passed for \(unreachable)")
            } catch let error as SluiceError {
                guard !error.message.isEmpty else { throw fail("unreachable input is reported", "the error says nothing") }
            }
        }

        // 2. Everything once.
        try await fixture.append(Array(1...5))
        let first = try await read(source, from: .empty, commit: false) { Set($0.ids).isSuperset(of: 1...5) }
        guard first.ids.sorted() == Array(1...5) else {
            throw fail("a reader reads every record once", "read \(first.ids)")
        }

        // 3. A crash before the commit: the same records again.
        let again = try await read(source, from: .empty, commit: true) { Set($0.ids).isSuperset(of: 1...5) }
        guard again.ids.sorted() == Array(1...5) else {
            throw fail("records not committed are read again", "read \(again.ids) after a reader closed without a commit")
        }

        // 4. Checkpoint and resume.
        try await fixture.append([6, 7, 8, 9])
        // Until all four are in: a queue may hand a record to the pull request of the reader
        // before, closed but not yet gone on the server, and deliver it again after its ack wait.
        let resumed = try await read(source, from: again.checkpoint, commit: true) { Set($0.ids).isSuperset(of: 6...9) }
        guard resumed.ids.sorted() == [6, 7, 8, 9] else {
            throw fail("a reader resumes after its checkpoint", "read \(resumed.ids) from \(again.checkpoint.partitions)")
        }
        var checkpoint = resumed.checkpoint

        // 5. Bad input to the dead-letter queue.
        if let appendMalformed = fixture.appendMalformed {
            try await appendMalformed()
            try await fixture.append([10])
            // Until the dead letter is in too: a queue may have handed the bad message to the pull
            // request of the reader before (closed, not yet gone on the server) and deliver it
            // again only after its ack wait, behind record 10.
            let bad = try await read(source, from: checkpoint, commit: true) { $0.ids.contains(10) && $0.rejects >= 1 }
            guard bad.rejects >= 1, bad.ids == [10] else {
                throw fail("bad input is dead-lettered", "read \(bad.ids) with \(bad.rejects) dead letter(s)")
            }
            checkpoint = bad.checkpoint
        } else if fixture.malformedInputImpossible == nil {
            throw fail("bad input is dead-lettered", "the fixture gives no bad input and no reason why there is none")
        }

        // 6. Close without reading; the next reader still gets what came after.
        let idle = try await open(source, from: checkpoint)
        await idle.close()
        try await fixture.append([11])
        let last = try await read(source, from: checkpoint, commit: true) { $0.ids.contains(11) }
        guard last.ids == [11] else {
            throw fail("a reader closed unread loses nothing", "read \(last.ids)")
        }
    }
}
