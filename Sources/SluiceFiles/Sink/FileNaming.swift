import SluiceCore

/// How file sinks name their output files: `<prefix>-<run stamp>-<sequence>.<extension>`.
enum FileNaming {
    /// The file-name prefix of a writer: the sink's `prefix`, or `<prefix>_replay` for the
    /// writer of `sluice dlq replay` (see ``SinkContext/replay``). The pipeline's recovery only
    /// touches names starting with `<prefix>-`, so it never aborts a replay's uploads, nor a
    /// replay the pipeline's.
    static func prefix(_ prefix: String, context: SinkContext) -> String {
        context.replay ? replayPrefix(prefix) : prefix
    }

    /// The file-name prefix of a replay into a sink whose prefix is `prefix`.
    static func replayPrefix(_ prefix: String) -> String { prefix + "_replay" }
}
