import SluiceCore

/// Decodes the pages of one column chunk (dictionary page, data pages v1 and v2) into a column.
struct ParquetColumnChunkReader {
    let leaf: ParquetLeafColumn
    let converter: ParquetValueConverter
    let codec: ParquetCodec
    let decompressor: ParquetDecompressor

    init(leaf: ParquetLeafColumn, codec: ParquetCodec, decompressor: ParquetDecompressor) {
        self.leaf = leaf
        converter = ParquetValueConverter(leaf: leaf)
        self.codec = codec
        self.decompressor = decompressor
    }

    /// Reads the `rows` values of a flat column from the chunk's bytes.
    func read(_ bytes: [UInt8], numValues: Int, rows: Int) throws -> Column {
        var accumulator = ColumnAccumulator(type: leaf.field.type, capacity: rows)
        try forEachPage(bytes, numValues: numValues) { _, definition, _, values in
            // A flat column's definition levels are 0 or 1; nil when every value is present.
            try accumulator.append(values, levels: definition.flatMap { $0.contains(0) ? $0 : nil })
        }
        guard accumulator.count == rows else {
            throw ParquetFormatError("column has \(accumulator.count) values but its row group has \(rows) rows")
        }
        return accumulator.column()
    }

    /// Reads the levels and values (as JSON text) of a leaf of a nested column.
    func readLevels(_ bytes: [UInt8], numValues: Int) throws -> ParquetLeafLevels {
        var levels = ParquetLeafLevels(maxRepetitionLevel: leaf.maxRepetitionLevel, maxDefinitionLevel: leaf.maxDefinitionLevel)
        try forEachPage(bytes, numValues: numValues) { repetition, definition, n, values in
            try levels.append(repetition: repetition, definition: definition, count: n, values: values, type: leaf.field.type)
        }
        return levels
    }

    /// Decodes the data pages of the chunk, handing each page's repetition levels (nil when the
    /// maximum is 0), definition levels (likewise), number of entries and defined values to `page`.
    private func forEachPage(
        _ bytes: [UInt8], numValues: Int,
        _ page: (_ repetition: [UInt32]?, _ definition: [UInt32]?, _ count: Int, _ values: ColumnStorage) throws -> Void
    ) throws {
        var dictionary: ColumnStorage?
        var pos = 0
        var valuesRead = 0
        let maxRep = leaf.maxRepetitionLevel, maxDef = leaf.maxDefinitionLevel
        while valuesRead < numValues {
            guard pos < bytes.count else {
                throw ParquetFormatError("column chunk ends after \(valuesRead) of its \(numValues) values")
            }
            var thrift = ThriftCompactReader(bytes, from: pos)
            let header: ParquetPageHeader
            do { header = try ParquetPageHeader.decode(&thrift) } catch let e as ParquetFormatError {
                throw ParquetFormatError("corrupt page header at chunk byte \(pos): \(e.message)", unsupported: e.unsupported)
            }
            pos = thrift.position
            let size = Int(header.compressedPageSize)
            guard size <= bytes.count - pos else {
                throw ParquetFormatError("page of \(size) bytes at chunk byte \(pos) runs past the column chunk (\(bytes.count) bytes)")
            }
            let pageRange = pos..<(pos + size)
            pos += size
            switch header.type {
            case .dictionaryPage:
                guard dictionary == nil else { throw ParquetFormatError("column chunk has a second dictionary page") }
                guard let h = header.dictionaryPageHeader else { throw ParquetFormatError("dictionary page without its header") }
                guard h.encoding == .plain || h.encoding == .plainDictionary else {
                    throw ParquetFormatError("dictionary page encoded \(h.encoding)", unsupported: true)
                }
                let body = try decompress(bytes, pageRange, Int(header.uncompressedPageSize))
                dictionary = try body.withUnsafeBytes { try converter.plain($0, count: Int(h.numValues)).0 }
            case .dataPage:
                guard let h = header.dataPageHeader else { throw ParquetFormatError("data page without its header") }
                let n = Int(h.numValues)
                try checkCount(n, valuesRead, numValues)
                let body = try decompress(bytes, pageRange, Int(header.uncompressedPageSize))
                try body.withUnsafeBytes { p in
                    var offset = 0
                    var repetition: [UInt32]?
                    var definition: [UInt32]?
                    var present = n
                    if maxRep > 0 {
                        let (decoded, used) = try Self.levelsV1(
                            p, count: n, encoding: h.repetitionLevelEncoding, maxLevel: maxRep, kind: "repetition")
                        offset = used
                        repetition = decoded
                    }
                    if maxDef > 0 {
                        let (decoded, used) = try Self.levelsV1(
                            UnsafeRawBufferPointer(rebasing: p[offset...]), count: n, encoding: h.definitionLevelEncoding,
                            maxLevel: maxDef, kind: "definition")
                        offset += used
                        present = decoded.reduce(0) { $0 + ($1 == maxDef ? 1 : 0) }
                        definition = decoded
                    }
                    let values = try decodeValues(UnsafeRawBufferPointer(rebasing: p[offset...]), h.encoding, present, dictionary)
                    try page(repetition, definition, n, values)
                }
                valuesRead += n
            case .dataPageV2:
                guard let h = header.dataPageHeaderV2 else { throw ParquetFormatError("data page v2 without its header") }
                let n = Int(h.numValues)
                try checkCount(n, valuesRead, numValues)
                let repLength = Int(h.repetitionLevelsByteLength), defLength = Int(h.definitionLevelsByteLength)
                guard repLength >= 0, defLength >= 0, repLength + defLength <= size else {
                    throw ParquetFormatError("data page v2 level lengths exceed the page size")
                }
                func levels(_ start: Int, _ length: Int, _ maxLevel: Int, _ kind: String) throws -> [UInt32] {
                    try bytes.withUnsafeBytes { b in
                        var rle = try RLEHybridDecoder(
                            UnsafeRawBufferPointer(rebasing: b[start..<(start + length)]), bitWidth: Self.bitWidth(maxLevel))
                        let decoded = try rle.decode(count: n)
                        guard decoded.allSatisfy({ $0 <= maxLevel }) else {
                            throw ParquetFormatError("a \(kind) level exceeds the column's maximum (\(maxLevel))")
                        }
                        return decoded
                    }
                }
                var repetition: [UInt32]?
                var definition: [UInt32]?
                let present = n - Int(h.numNulls)
                if maxRep > 0 {
                    repetition = try levels(pageRange.lowerBound, repLength, maxRep, "repetition")
                }
                if maxDef > 0 && defLength > 0 {
                    let decoded = try levels(pageRange.lowerBound + repLength, defLength, maxDef, "definition")
                    let defined = decoded.reduce(0) { $0 + ($1 == maxDef ? 1 : 0) }
                    guard defined == present else {
                        throw ParquetFormatError("data page v2 says \(h.numNulls) nulls but its levels hold \(n - defined)")
                    }
                    definition = decoded
                } else if maxDef > 0 {
                    guard present == n else { throw ParquetFormatError("data page v2 has nulls but no definition levels") }
                    definition = Array(repeating: UInt32(maxDef), count: n)
                } else if present != n {
                    throw ParquetFormatError("data page v2 has nulls in a required column or without definition levels")
                }
                let valuesRange = (pageRange.lowerBound + repLength + defLength)..<pageRange.upperBound
                let valuesSize = Int(header.uncompressedPageSize) - repLength - defLength
                guard valuesSize >= 0 else { throw ParquetFormatError("data page v2 sizes are inconsistent") }
                let body =
                    h.isCompressed
                    ? try decompress(bytes, valuesRange, valuesSize)
                    : try decompressor.decompress(
                        .uncompressed, bytes.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[valuesRange]) },
                        uncompressedSize: valuesSize)
                try body.withUnsafeBytes { p in
                    let values = try decodeValues(p, h.encoding, present, dictionary)
                    try page(repetition, definition, n, values)
                }
                valuesRead += n
            default:
                continue  // index pages and unknown page types carry no values
            }
        }
    }

    /// Pages declaring more values than this are refused (writers cut pages at ~20k rows or ~1 MiB);
    /// it bounds what a corrupt header can make the reader allocate.
    static let maxValuesPerPage = 1 << 26

    private func checkCount(_ n: Int, _ read: Int, _ total: Int) throws {
        guard n <= total - read else { throw tooManyValues(read + n, total) }
        guard n <= Self.maxValuesPerPage else {
            throw ParquetFormatError(
                "page declares \(n) values; more than \(Self.maxValuesPerPage) per page is not supported",
                unsupported: true)
        }
    }

    private func tooManyValues(_ n: Int, _ expected: Int) -> ParquetFormatError {
        ParquetFormatError("pages hold more values (\(n)) than the column chunk declares (\(expected))")
    }

    private func decompress(_ bytes: [UInt8], _ range: Range<Int>, _ uncompressedSize: Int) throws -> [UInt8] {
        try bytes.withUnsafeBytes { b in
            try decompressor.decompress(codec, UnsafeRawBufferPointer(rebasing: b[range]), uncompressedSize: uncompressedSize)
        }
    }

    /// The bit width of levels up to `maxLevel`.
    static func bitWidth(_ maxLevel: Int) -> Int {
        maxLevel <= 0 ? 0 : Int.bitWidth - maxLevel.leadingZeroBitCount
    }

    /// Repetition or definition levels of a v1 data page (RLE with a 4-byte length, or the old
    /// BIT_PACKED, most significant bit first); returns the levels and the bytes they take.
    static func levelsV1(
        _ p: UnsafeRawBufferPointer, count: Int, encoding: ParquetEncoding, maxLevel: Int = 1, kind: String = "definition"
    ) throws -> ([UInt32], Int) {
        let width = bitWidth(maxLevel)
        let levels: [UInt32], used: Int
        switch encoding {
        case .rle:
            guard p.count >= 4 else { throw ParquetFormatError("data page too short for its \(kind) levels") }
            let length = Int(p.loadUnaligned(as: UInt32.self).littleEndian)
            guard length <= p.count - 4 else {
                throw ParquetFormatError("\(kind) levels of \(length) bytes run past the page")
            }
            var rle = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: p[4..<(4 + length)]), bitWidth: width)
            (levels, used) = (try rle.decode(count: count), 4 + length)
        case .bitPacked:
            let (bits, overflow) = count.multipliedReportingOverflow(by: width)
            guard !overflow, (bits + 7) / 8 <= p.count else { throw ParquetFormatError("data page too short for its \(kind) levels") }
            levels = (0..<count).map { i in
                var v: UInt32 = 0
                for b in (i * width)..<((i + 1) * width) { v = v << 1 | UInt32((p[b >> 3] >> UInt8(7 - b & 7)) & 1) }
                return v
            }
            used = (bits + 7) / 8
        default:
            throw ParquetFormatError("\(kind) levels encoded \(encoding)", unsupported: true)
        }
        guard levels.allSatisfy({ $0 <= maxLevel }) else {
            throw ParquetFormatError("a \(kind) level exceeds the column's maximum (\(maxLevel))")
        }
        return (levels, used)
    }

    /// Decodes `count` non-null values of a data page.
    private func decodeValues(
        _ p: UnsafeRawBufferPointer, _ encoding: ParquetEncoding, _ count: Int,
        _ dictionary: ColumnStorage?
    ) throws -> ColumnStorage {
        switch encoding {
        case .plain:
            return try converter.plain(p, count: count).0
        case .plainDictionary, .rleDictionary:
            guard count > 0 else { return try converter.plain(p, count: 0).0 }
            guard let dictionary else { throw ParquetFormatError("dictionary-encoded page without a dictionary page") }
            guard p.count >= 1 else { throw ParquetFormatError("dictionary-encoded page without its bit width") }
            var rle = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: p[1...]), bitWidth: Int(p[0]))
            return try ParquetValueConverter.gather(dictionary, try rle.decode(count: count))
        case .rle where leaf.physicalType == .boolean:
            guard p.count >= 4 else { throw ParquetFormatError("RLE boolean page too short") }
            let length = Int(p.loadUnaligned(as: UInt32.self).littleEndian)
            guard length <= p.count - 4 else { throw ParquetFormatError("RLE booleans of \(length) bytes run past the page") }
            var rle = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: p[4..<(4 + length)]), bitWidth: 1)
            return .bool(try rle.decode(count: count).map { $0 != 0 })
        case .deltaBinaryPacked where leaf.physicalType == .int32 || leaf.physicalType == .int64:
            let (values, _) = try DeltaDecoders.binaryPacked(p, expected: count)
            return try converter.integers(count) { values[$0] }
        case .deltaLengthByteArray where leaf.physicalType == .byteArray:
            let (offsets, data, _) = try DeltaDecoders.lengthByteArray(p, count: count)
            return try converter.byteArrays(offsets, data)
        case .deltaByteArray where leaf.physicalType == .byteArray || leaf.physicalType == .fixedLenByteArray:
            let (offsets, data) = try DeltaDecoders.byteArray(p, count: count)
            return try converter.byteArrays(offsets, data)
        case .byteStreamSplit where converter.fixedWidth != nil && leaf.physicalType != .int96:
            let width = converter.fixedWidth!
            let plain = try DeltaDecoders.byteStreamSplit(p, count: count, width: width)
            return try plain.withUnsafeBytes { try converter.fixed($0, count: count, width: width) }
        default:
            throw ParquetFormatError("\(leaf.physicalType) values encoded \(encoding) are not supported", unsupported: true)
        }
    }
}
