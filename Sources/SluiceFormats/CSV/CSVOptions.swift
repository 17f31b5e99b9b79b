import SluiceCore

/// How a CSV input is read (RFC 4180 plus common variations).
public struct CSVOptions: Sendable {
    /// The field separator (default `,`). Must not be the quote, CR or LF.
    public var delimiter: UInt8
    /// The quote character (default `"`); inside quotes it is escaped by doubling it.
    public var quote: UInt8
    /// Whether the first row holds the column names (default true). Without a header, columns are
    /// named `column_1`, `column_2`, … unless `columns` names them.
    public var header: Bool
    /// Declared columns. With a header, declared types apply to the header columns of the same name
    /// and the other header columns are inferred; declared columns missing from the header are
    /// appended to the schema and are always NULL. Without a header, they name and type the
    /// columns by position.
    public var columns: [Field]?
    /// How many data rows of the sample type inference looks at (default 1000).
    public var inferRows: Int
    /// The most rows one `decode` call returns (default 16384).
    public var batchRows: Int
    /// The longest record accepted (default 64 MiB). A longer one (typically an unbalanced quote)
    /// is rejected as `malformed_row` and decoding resumes after the next line break, so memory
    /// stays bounded.
    public var maxRecordBytes: Int

    public init(
        delimiter: UInt8 = UInt8(ascii: ","),
        quote: UInt8 = UInt8(ascii: "\""),
        header: Bool = true,
        columns: [Field]? = nil,
        inferRows: Int = 1000,
        batchRows: Int = 16_384,
        maxRecordBytes: Int = 64 << 20
    ) {
        self.delimiter = delimiter
        self.quote = quote
        self.header = header
        self.columns = columns
        self.inferRows = inferRows
        self.batchRows = batchRows
        self.maxRecordBytes = maxRecordBytes
    }
}
