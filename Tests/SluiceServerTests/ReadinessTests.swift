import Foundation
import SluiceCore
@testable import SluiceServer
import Testing

/// `/readyz` of `sluice run --metrics-port`: what makes it 503, and what its problem says.
@Suite struct ReadinessTests {
    static func snapshot(_ change: (inout PipelineStatus.Snapshot) -> Void = { _ in }) -> PipelineStatus.Snapshot {
        let status = PipelineStatus(pipeline: "p")
        status.update(change)
        return status.snapshot
    }

    @Test func runningAndFinishedPipelinesAreReady() {
        let response = MetricsServer.readiness([("a", Self.snapshot()), ("b", Self.snapshot { $0.finished = true })])
        #expect(response.status.code == 200)
    }

    @Test func aFailedAPausedAndAnUnreachablePipelineAreEachNamed() {
        let paused = Self.snapshot { $0.sourceTrouble = "connection refused" }
        let both = Self.snapshot {
            $0.sourceTrouble = "connection refused"
            $0.sinkTrouble = "state commit: the disk is full"
        }
        let response = MetricsServer.readiness(
            [("f", Self.snapshot { $0.failed = true }), ("p", paused), ("s", both)], unreachable: ["pipeline 'u' cannot reach its sink: refused"])
        #expect(response.status.code == 503)
        #expect(response.headers.first { $0.name.canonicalName == "content-type" }?.value.hasPrefix("application/problem+json") == true)
        // The sink's trouble is the one shown while both have one: the commit is what waits.
        #expect(paused.waitingFor == "the source: connection refused")
        #expect(both.waitingFor == "the sink: state commit: the disk is full")
    }
}
