/// Parquet physical types (`parquet.thrift` `Type`).
enum ParquetPhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0
    case int32 = 1
    case int64 = 2
    case int96 = 3
    case float = 4
    case double = 5
    case byteArray = 6
    case fixedLenByteArray = 7

    var description: String {
        switch self {
        case .boolean: "BOOLEAN"
        case .int32: "INT32"
        case .int64: "INT64"
        case .int96: "INT96"
        case .float: "FLOAT"
        case .double: "DOUBLE"
        case .byteArray: "BYTE_ARRAY"
        case .fixedLenByteArray: "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

/// Field repetition (`FieldRepetitionType`).
enum ParquetRepetition: Int32, Sendable {
    case required = 0
    case optional = 1
    case repeated = 2
}

/// Deprecated converted types still written for older readers (`ConvertedType`); open set.
struct ParquetConvertedType: RawRepresentable, Hashable, Sendable {
    var rawValue: Int32
    static let utf8 = Self(rawValue: 0)
    static let map = Self(rawValue: 1)
    static let mapKeyValue = Self(rawValue: 2)
    static let list = Self(rawValue: 3)
    static let enumeration = Self(rawValue: 4)
    static let decimal = Self(rawValue: 5)
    static let date = Self(rawValue: 6)
    static let timeMillis = Self(rawValue: 7)
    static let timeMicros = Self(rawValue: 8)
    static let timestampMillis = Self(rawValue: 9)
    static let timestampMicros = Self(rawValue: 10)
    static let uint8 = Self(rawValue: 11)
    static let uint16 = Self(rawValue: 12)
    static let uint32 = Self(rawValue: 13)
    static let uint64 = Self(rawValue: 14)
    static let int8 = Self(rawValue: 15)
    static let int16 = Self(rawValue: 16)
    static let int32 = Self(rawValue: 17)
    static let int64 = Self(rawValue: 18)
    static let json = Self(rawValue: 19)
    static let bson = Self(rawValue: 20)
    static let interval = Self(rawValue: 21)
}

/// Value and level encodings (`Encoding`); open set.
struct ParquetEncoding: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: Int32
    static let plain = Self(rawValue: 0)
    static let plainDictionary = Self(rawValue: 2)
    static let rle = Self(rawValue: 3)
    static let bitPacked = Self(rawValue: 4)
    static let deltaBinaryPacked = Self(rawValue: 5)
    static let deltaLengthByteArray = Self(rawValue: 6)
    static let deltaByteArray = Self(rawValue: 7)
    static let rleDictionary = Self(rawValue: 8)
    static let byteStreamSplit = Self(rawValue: 9)

    var description: String {
        switch rawValue {
        case 0: "PLAIN"
        case 2: "PLAIN_DICTIONARY"
        case 3: "RLE"
        case 4: "BIT_PACKED"
        case 5: "DELTA_BINARY_PACKED"
        case 6: "DELTA_LENGTH_BYTE_ARRAY"
        case 7: "DELTA_BYTE_ARRAY"
        case 8: "RLE_DICTIONARY"
        case 9: "BYTE_STREAM_SPLIT"
        default: "encoding \(rawValue)"
        }
    }
}

/// Compression codecs (`CompressionCodec`); open set.
struct ParquetCodec: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: Int32
    static let uncompressed = Self(rawValue: 0)
    static let snappy = Self(rawValue: 1)
    static let gzip = Self(rawValue: 2)
    static let lzo = Self(rawValue: 3)
    static let brotli = Self(rawValue: 4)
    static let lz4 = Self(rawValue: 5)
    static let zstd = Self(rawValue: 6)
    static let lz4Raw = Self(rawValue: 7)

    var description: String {
        switch rawValue {
        case 0: "UNCOMPRESSED"
        case 1: "SNAPPY"
        case 2: "GZIP"
        case 3: "LZO"
        case 4: "BROTLI"
        case 5: "LZ4"
        case 6: "ZSTD"
        case 7: "LZ4_RAW"
        default: "codec \(rawValue)"
        }
    }
}

/// Page types (`PageType`); open set.
struct ParquetPageType: RawRepresentable, Hashable, Sendable {
    var rawValue: Int32
    static let dataPage = Self(rawValue: 0)
    static let indexPage = Self(rawValue: 1)
    static let dictionaryPage = Self(rawValue: 2)
    static let dataPageV2 = Self(rawValue: 3)
}
