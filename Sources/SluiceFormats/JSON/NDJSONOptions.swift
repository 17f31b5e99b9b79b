import SluiceCore

/// How newline-delimited JSON (one object per line) is read.
public struct NDJSONOptions: Sendable {
    /// Declared columns: they come first in the schema, in this order, with these types (a string
    /// value in a timestamp, date or decimal column is parsed; a binary column takes base64
    /// strings; a string column takes any value, non-strings as their JSON text). Keys not declared
    /// are inferred.
    public var columns: [Field]?
    /// How many lines of the sample schema inference looks at (default 1000).
    public var inferRows: Int
    /// The most rows one `decode` call returns (default 16384).
    public var batchRows: Int
    /// The longest line accepted (default 64 MiB). A longer one is rejected as `malformed_row`
    /// and skipped up to its line break, so memory stays bounded.
    public var maxRecordBytes: Int

    public init(columns: [Field]? = nil, inferRows: Int = 1000, batchRows: Int = 16_384, maxRecordBytes: Int = 64 << 20) {
        self.columns = columns
        self.inferRows = inferRows
        self.batchRows = batchRows
        self.maxRecordBytes = maxRecordBytes
    }
}
