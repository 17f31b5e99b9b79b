/// Discards records and commits checkpoints: for measuring a source alone, and for dry runs.
///
/// ```yaml
/// sink:
///   blackhole: {}
/// ```
public struct BlackholeSink: Sink {
    public init() {}

    struct Options: Decodable {}

    public static let spec = ComponentSpec(
        type: "blackhole",
        summary: "discards records (still checkpoints): measure a source alone, or dry-run a pipeline",
        options: [],
        example: """
            sink:
              blackhole: {}
            """
    )

    public static let factory = SinkFactory(spec: spec) { config, _ in
        _ = try config.decodeOptions(Options.self)
        return BlackholeSink()
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter { Writer() }

    final class Writer: SinkWriter {
        func write(_ batch: RecordBatch) async throws -> [RowFailure] { [] }
        func prepareCommit(_ commit: inout StateCommit) async throws {}
    }
}
