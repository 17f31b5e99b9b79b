/// Discards records and commits checkpoints: for measuring a source alone, and for dry runs.
///
/// ```yaml
/// sink:
///   blackhole: {}
/// ```
public struct BlackholeSink: Sink {
    public init() {}

    struct Options: Decodable {}

    public static let factory = SinkFactory(
        type: "blackhole",
        summary: "discards records (still checkpoints): measure a source alone, or dry-run a pipeline",
        example: """
        sink:
          blackhole: {}
        """
    ) { config, _ in
        _ = try config.decodeOptions(Options.self)
        return BlackholeSink()
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter { Writer() }

    final class Writer: SinkWriter {
        func write(_ batch: RecordBatch) async throws -> [RowFailure] { [] }
        func prepareCommit(_ commit: inout StateCommit) async throws {}
    }
}
