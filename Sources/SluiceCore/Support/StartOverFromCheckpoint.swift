/// A transient failure after which a pipeline's reader or writer cannot go on, but the pipeline
/// can: the runner commits what it safely can, waits with the `retry` backoff, and starts over
/// from the last checkpoint with a new reader and writer, as a restarted process would.
///
/// The runner wraps a source's retryable failure once it has started (a lost connection, a
/// server that stopped mid-pull) in one. A sink throws one when a retryable failure (a full
/// disk) left a file it was writing unusable, so retrying the same call in place could lose or
/// repeat records; it discards that file first.
public struct StartOverFromCheckpoint: Error, CustomStringConvertible {
    /// Which side failed: `source` or `sink`.
    public var stage: String
    public var cause: SluiceError

    public init(stage: String, cause: SluiceError) {
        self.stage = stage
        self.cause = cause
    }

    public var description: String { "\(cause)" }

    /// `error` wrapped as a start-over of `stage` if it is worth retrying; as it is otherwise.
    public static func wrapping(_ error: any Error, stage: String) -> any Error {
        guard !(error is CancellationError), !(error is StartOverFromCheckpoint) else { return error }
        let e = SluiceError.classify(error)
        return e.isRetryable ? StartOverFromCheckpoint(stage: stage, cause: e) : error
    }
}
