import SluiceCore
import SluiceFormats

/// Options of the `file` source, as written in YAML:
///
/// ```yaml
/// source:
///   file:
///     path: "data/events/*.csv"   # a file, a glob (*, ?, [..]) or a directory (read recursively)
///     format: csv                 # csv | tsv | ndjson | parquet; default: from the extension
///     compression: auto           # auto | none | gzip | zstd; auto detects from the first bytes
///     delimiter: ","              # CSV only; one character ("\t" for tab)
///     header: true                # CSV only: the first row names the columns
///     columns: { id: int64, amount: "decimal(12,2)" }   # declared types; others are inferred
///     infer_rows: 1000            # rows sampled from the start of each file to infer types
///     threads: 2                  # CSV/NDJSON: threads decoding at once (default: all processors)
///     watch: false                # keep running and pick up new files as they appear
///     poll_interval: 2s           # with watch: how often to look for new files
///     min_age: 1s                 # with watch: ignore files modified more recently than this
///     tail: false                 # follow growing files (logs), across rotation
///     fingerprint_lines: 1        # with tail: first lines that identify a file
/// ```
public struct FileSourceOptions: Decodable, Sendable {
    public var path: String
    public var format: String?
    public var compression: String?
    public var delimiter: String?
    public var header: Bool?
    public var columns: OrderedMapping<String>?
    public var inferRows: Int?
    public var batchRows: Int?
    public var threads: Int?
    public var watch: Bool?
    public var pollInterval: ConfigDuration?
    public var minAge: ConfigDuration?
    public var tail: Bool?
    public var fingerprintLines: Int?

    enum CodingKeys: String, CodingKey {
        case path, format, compression, delimiter, header, columns, watch
        case inferRows = "infer_rows"
        case batchRows = "batch_rows"
        case threads
        case pollInterval = "poll_interval"
        case minAge = "min_age"
        case tail
        case fingerprintLines = "fingerprint_lines"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        if let format, !["csv", "ndjson", "jsonl", "tsv", "parquet"].contains(format) {
            throw try c.superDecoder(forKey: .format).configError("unknown format '\(format)'; use csv, tsv, ndjson or parquet")
        }
        compression = try c.decodeIfPresent(String.self, forKey: .compression)
        if let compression, compression != "auto", InputCompression(rawValue: compression) == nil {
            throw try c.superDecoder(forKey: .compression).configError("unknown compression '\(compression)'; use auto, none, gzip or zstd")
        }
        delimiter = try c.decodeIfPresent(String.self, forKey: .delimiter)
        if let delimiter, delimiter.utf8.count != 1, delimiter != "\\t" {
            throw try c.superDecoder(forKey: .delimiter).configError("the delimiter must be a single ASCII character, found '\(delimiter)'")
        }
        header = try c.decodeIfPresent(Bool.self, forKey: .header)
        columns = try c.decodeIfPresent(OrderedMapping<String>.self, forKey: .columns)
        if let columns {
            let nested = try c.superDecoder(forKey: .columns)
            for (name, type) in columns.entries where DataType(parsing: type) == nil {
                throw nested.configError(
                    "column '\(name)': unknown type '\(type)'; use bool, int64, float64, decimal(p,s), string, binary, date, timestamp or json")
            }
        }
        inferRows = try c.decodeIfPresent(Int.self, forKey: .inferRows, in: 1...1_000_000)
        batchRows = try c.decodeIfPresent(Int.self, forKey: .batchRows, in: 1...1_000_000)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads, in: 1...256)
        watch = try c.decodeIfPresent(Bool.self, forKey: .watch)
        pollInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .pollInterval)
        minAge = try c.decodeIfPresent(ConfigDuration.self, forKey: .minAge)
        tail = try c.decodeIfPresent(Bool.self, forKey: .tail)
        fingerprintLines = try c.decodeIfPresent(Int.self, forKey: .fingerprintLines, in: 1...100)
    }

    /// Declared columns as fields.
    var declaredFields: [Field]? {
        columns.map { $0.entries.map { Field($0.key, DataType(parsing: $0.value)!) } }
    }
}
