import Foundation
@testable import SluiceCore
import Testing

/// Which failures start a pipeline over from its checkpoint instead of stopping it.
@Suite struct StartOverClassificationTests {
    @Test func retryableFailuresStartOverOnlyWhenWrappedOrWhileStartingOver() {
        let lost = SluiceError(.connection, "the connection was lost", retryable: true)
        let refused = SluiceError(.authentication, "password authentication failed", retryable: false)
        // A source's break, or a sink's lost file, is wrapped: it starts over.
        #expect(StartOverFromCheckpoint.wrapping(lost, stage: "source") is StartOverFromCheckpoint)
        #expect(!(StartOverFromCheckpoint.wrapping(refused, stage: "source") is StartOverFromCheckpoint))
        #expect(!(StartOverFromCheckpoint.wrapping(CancellationError(), stage: "source") is StartOverFromCheckpoint))
        // Unwrapped, a retryable failure starts over only before a restarted attempt's reader
        // opened (the same outage); a failure that is not worth retrying never does.
        #expect(PipelineRunner.startOver(lost, restarting: true)?.cause.message == lost.message)
        #expect(PipelineRunner.startOver(lost, restarting: false) == nil)
        #expect(PipelineRunner.startOver(refused, restarting: true) == nil)
        #expect(PipelineRunner.startOver(StartOverFromCheckpoint(stage: "sink", cause: lost), restarting: false)?.stage == "sink")
    }
}
