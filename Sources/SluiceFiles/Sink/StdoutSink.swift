#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore
import SluiceFormats

/// Writes records to standard output as NDJSON (NULL fields left out). At-least-once: a crash replays from the checkpoint.
///
/// ```yaml
/// sink:
///   stdout: {}
/// ```
public struct StdoutSink: Sink {
    public init() {}

    struct Options: Decodable {}

    public static let spec = ComponentSpec(
        type: "stdout",
        summary: "NDJSON on standard output (at-least-once), for trying pipelines out",
        options: [],
        example: """
            sink:
              stdout: {}
            """
    )

    public static let factory = SinkFactory(spec: spec) { config, _ in
        _ = try config.decodeOptions(Options.self)
        return StdoutSink()
    }

    public func makeWriter(context: SinkContext) async throws -> any SinkWriter { StdoutWriter() }
}

final class StdoutWriter: SinkWriter {
    /// NULL fields are left out, as in the `ndjson` sink's files.
    let encoder = NDJSONEncoder(nulls: .omit)
    var buffer: [UInt8] = []

    func write(_ batch: RecordBatch) async throws -> [RowFailure] {
        encoder.encode(batch, into: &buffer)
        if buffer.count > 1 << 20 { try flush() }
        return []
    }

    func flush() throws {
        var written = 0
        try buffer.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Glibc.write(1, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileWriteError(path: "stdout", operation: "write", errno: errno)
                }
                written += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func prepareCommit(_ commit: inout StateCommit) async throws { try flush() }
}
