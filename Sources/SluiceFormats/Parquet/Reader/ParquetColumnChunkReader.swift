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

    /// Reads `numValues` values (one per row for flat columns) from the chunk's bytes.
    func read(_ bytes: [UInt8], numValues: Int, rows: Int) throws -> Column {
        var accumulator = ColumnAccumulator(type: leaf.field.type, capacity: rows)
        var dictionary: ColumnStorage?
        var pos = 0
        var valuesRead = 0
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
            let page = pos..<(pos + size)
            pos += size
            switch header.type {
            case .dictionaryPage:
                guard dictionary == nil else { throw ParquetFormatError("column chunk has a second dictionary page") }
                guard let h = header.dictionaryPageHeader else { throw ParquetFormatError("dictionary page without its header") }
                guard h.encoding == .plain || h.encoding == .plainDictionary else {
                    throw ParquetFormatError("dictionary page encoded \(h.encoding)", unsupported: true)
                }
                let body = try decompress(bytes, page, Int(header.uncompressedPageSize))
                dictionary = try body.withUnsafeBytes { try converter.plain($0, count: Int(h.numValues)).0 }
            case .dataPage:
                guard let h = header.dataPageHeader else { throw ParquetFormatError("data page without its header") }
                let n = Int(h.numValues)
                try checkCount(n, valuesRead, numValues)
                let body = try decompress(bytes, page, Int(header.uncompressedPageSize))
                try body.withUnsafeBytes { p in
                    var offset = 0
                    var levels: [UInt32]?
                    var present = n
                    if leaf.maxDefinitionLevel > 0 {
                        let (decoded, used) = try Self.levelsV1(p, count: n, encoding: h.definitionLevelEncoding)
                        offset = used
                        present = decoded.reduce(0) { $0 + Int($1) }
                        levels = present == n ? nil : decoded
                    }
                    let values = try decodeValues(UnsafeRawBufferPointer(rebasing: p[offset...]), h.encoding, present, dictionary)
                    try accumulator.append(values, levels: levels)
                }
                valuesRead += n
            case .dataPageV2:
                guard let h = header.dataPageHeaderV2 else { throw ParquetFormatError("data page v2 without its header") }
                let n = Int(h.numValues)
                try checkCount(n, valuesRead, numValues)
                let repLength = Int(h.repetitionLevelsByteLength), defLength = Int(h.definitionLevelsByteLength)
                guard repLength + defLength <= size else {
                    throw ParquetFormatError("data page v2 level lengths exceed the page size")
                }
                var levels: [UInt32]?
                let present = n - Int(h.numNulls)
                if leaf.maxDefinitionLevel > 0 && defLength > 0 {
                    let levelStart = page.lowerBound + repLength
                    let decoded = try bytes.withUnsafeBytes { b in
                        var rle = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: b[levelStart..<(levelStart + defLength)]), bitWidth: 1)
                        return try rle.decode(count: n)
                    }
                    let defined = decoded.reduce(0) { $0 + Int($1) }
                    guard defined == present else {
                        throw ParquetFormatError("data page v2 says \(h.numNulls) nulls but its levels hold \(n - defined)")
                    }
                    levels = present == n ? nil : decoded
                } else if present != n {
                    throw ParquetFormatError("data page v2 has nulls in a required column or without definition levels")
                }
                let valuesRange = (page.lowerBound + repLength + defLength)..<page.upperBound
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
                    try accumulator.append(values, levels: levels)
                }
                valuesRead += n
            default:
                continue  // index pages and unknown page types carry no values
            }
        }
        guard accumulator.count == rows else {
            throw ParquetFormatError("column has \(accumulator.count) values but its row group has \(rows) rows")
        }
        return accumulator.column()
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

    /// Definition levels of a v1 data page (RLE with a 4-byte length, or the old BIT_PACKED).
    static func levelsV1(_ p: UnsafeRawBufferPointer, count: Int, encoding: ParquetEncoding) throws -> ([UInt32], Int) {
        switch encoding {
        case .rle:
            guard p.count >= 4 else { throw ParquetFormatError("data page too short for its definition levels") }
            let length = Int(p.loadUnaligned(as: UInt32.self).littleEndian)
            guard length <= p.count - 4 else {
                throw ParquetFormatError("definition levels of \(length) bytes run past the page")
            }
            var rle = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: p[4..<(4 + length)]), bitWidth: 1)
            return (try rle.decode(count: count), 4 + length)
        case .bitPacked:
            let length = (count + 7) / 8
            guard length <= p.count else { throw ParquetFormatError("data page too short for its definition levels") }
            let levels = (0..<count).map { i in UInt32((p[i >> 3] >> UInt8(7 - i & 7)) & 1) }
            return (levels, length)
        default:
            throw ParquetFormatError("definition levels encoded \(encoding)", unsupported: true)
        }
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
