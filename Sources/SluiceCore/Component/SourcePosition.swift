/// Where in a source a batch ended. Opaque to the runtime.
///
/// A source can have several independent *partitions* (files of a glob, key
/// ranges of a parallel pull, queue partitions); each advances on its own.
/// `value` is the source's own encoding of the position (a byte offset, a
/// cursor, an LSN), normally JSON.
public struct SourcePosition: Sendable, Hashable, CustomStringConvertible {
    public var partition: String
    public var value: String

    public init(partition: String, value: String) {
        self.partition = partition
        self.value = value
    }

    public var description: String { partition.isEmpty ? value : "\(partition)@\(value)" }
}

/// The committed positions of a pipeline's source, one value per partition.
public struct Checkpoint: Sendable, Hashable {
    public var partitions: [String: String]

    public init(_ partitions: [String: String] = [:]) { self.partitions = partitions }

    public static let empty = Checkpoint()

    public subscript(partition: String) -> String? { partitions[partition] }
}

extension Checkpoint {
    /// Partitions named `sink:…` hold a sink's own resume state, committed with the source's
    /// positions in the same transaction (a JetStream sink's message numbering); the others
    /// belong to the source.
    public static let sinkPartitionPrefix = "sink:"

    /// The source's partitions (without the sink's).
    public var sourcePartitions: [String: String] { partitions.filter { !$0.key.hasPrefix(Self.sinkPartitionPrefix) } }
}
