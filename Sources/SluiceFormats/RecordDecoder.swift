import SluiceCore

/// A row the decoder could not turn into a record.
public struct DecodeReject: Sendable, Hashable {
    /// 1-based line number in the (decompressed) input where the row starts.
    public var line: Int
    /// Byte offset in the (decompressed) input where the row starts.
    public var offset: Int
    /// `malformed_row`, `type_mismatch`, `invalid_utf8`, `field_count`…
    public var kind: String
    /// What is wrong, naming the column where there is one.
    public var message: String
    /// The raw bytes of the row (without its line terminator).
    public var raw: [UInt8]

    public init(line: Int, offset: Int, kind: String, message: String, raw: [UInt8]) {
        self.line = line
        self.offset = offset
        self.kind = kind
        self.message = message
        self.raw = raw
    }
}

/// What one ``RecordDecoder/decode(_:isFinal:)`` call produced.
public struct DecodeOutput: Sendable {
    /// The rows decoded from complete records (may have zero rows).
    public var batch: RecordBatch
    public var rejects: [DecodeReject]
    /// Bytes of the input consumed: everything up to and including the last complete record's
    /// line terminator. Unconsumed bytes must be passed again, with more data, in the next call.
    public var consumed: Int

    public init(batch: RecordBatch, rejects: [DecodeReject], consumed: Int) {
        self.batch = batch
        self.rejects = rejects
        self.consumed = consumed
    }
}

/// Decodes a byte stream of records (CSV, NDJSON) into columnar batches.
///
/// Usage by the file source, per file:
/// 1. `prepare(sample:)` with the first bytes of the file (up to ~1 MiB, from offset 0,
///    or the whole file when smaller). It reads a header if the format has one and infers
///    the schema (unless declared), and returns the byte offset where data rows start.
///    Preparing from the file start makes the schema identical whether a run starts fresh
///    or resumes mid-file.
/// 2. `decode(_:isFinal:)` repeatedly on consecutive chunks starting at the data start or at
///    a resume offset (always the start of a record). `startLine`/`startOffset` are set by
///    ``seek(offset:line:)`` before the first call so rejects are located correctly.
public protocol RecordDecoder: AnyObject {
    /// The schema rows are decoded into (may grow for NDJSON when new keys appear).
    var schema: Schema { get }
    /// Reads the header (if any) and infers the schema. Returns the offset of the first data row.
    func prepare(sample: UnsafeRawBufferPointer, isWholeInput: Bool) throws -> Int
    /// Sets where the next `decode` input starts, for locating rejects.
    func seek(offset: Int, line: Int)
    /// Decodes complete records from `input`. With `isFinal`, a last record without a
    /// terminator is decoded too (a truncated final line that does not parse is rejected).
    func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool) -> DecodeOutput
    /// Where the last complete record of `input` ends (after its line terminator), counted from
    /// `input`'s start, which must be the start of a record; 0 when no record ends in it. It
    /// finds the same ends `decode` would, so input cut there decodes as it would whole.
    func completeRecordsEnd(_ input: UnsafeRawBufferPointer) -> Int
    /// False while the decoder is skipping the rest of an oversized record: the next input does
    /// not start a record.
    var isBetweenRecords: Bool { get }
}

extension RecordDecoder {
    /// Records end at the last LF (no format here lets a record hold a raw line break).
    public func completeRecordsEnd(_ input: UnsafeRawBufferPointer) -> Int { Self.afterLastLineFeed(input) }

    /// Where the input's last LF ends (0 without one).
    static func afterLastLineFeed(_ input: UnsafeRawBufferPointer) -> Int {
        var i = input.count
        while i > 0 {
            if input[i - 1] == 0x0A { return i }
            i -= 1
        }
        return 0
    }
}
