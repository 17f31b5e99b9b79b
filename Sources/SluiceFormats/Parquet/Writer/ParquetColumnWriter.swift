import SluiceCore

/// Encodes one column of a row group into pages held in memory until the row group is written.
///
/// Values are appended in slices sized so a page is cut close to `pageBytes`. Columns start in
/// dictionary mode where that is offered (byte arrays, ints, dates, timestamps, doubles); the
/// dictionary is dropped for the rest of the chunk (PLAIN pages follow) when it grows past
/// `dictionaryPageLimit`, or when it does not save a fifth of the PLAIN size of the first values
/// (judged after 64 KiB of PLAIN-equivalent values or the first page, whichever comes first).
final class ParquetColumnWriter {
    let spec: ParquetColumnSpec
    let kind: ParquetColumnSpec.Kind
    let nullable: Bool
    let options: ParquetWriterOptions
    /// Scratch and codec: the writer's set, or a lane's while columns are encoded in parallel.
    var resources: ParquetWriterResources
    var compressor: ParquetCompressor { resources.compressor }
    var thrift = ThriftCompactWriter()

    // Column chunk state.
    let pages = GrowableBytes(capacity: 1 << 16)
    let fixedDictionary: FixedDictionary?
    let bytesDictionary: BytesDictionary?
    @exclusivity(unchecked) var usingDictionary: Bool
    var dictionaryUsed = false
    var dictionaryEvaluated = false
    /// What the values seen in dictionary mode would take PLAIN-encoded.
    @exclusivity(unchecked) var plainEquivalentBytes = 0
    var chunkStatistics = ColumnStatistics()
    var chunkValueCount = 0
    var dataPagesUncompressed = 0
    var dataPagesCompressed = 0
    var firstDataPageSeen = false
    var pageEncodingCounts: [ParquetEncoding: Int32] = [:]

    // Page state.
    let pageValues = GrowableBytes(capacity: 1 << 16)
    let pageIndices = IndexBuffer()
    var pageBools: [UInt8] = []
    /// Definition levels of the page, materialised only once the page has a null.
    var pageLevels: [UInt8] = []
    var pageHasLevels = false
    @exclusivity(unchecked) var pageValueCount = 0
    @exclusivity(unchecked) var pageNullCount = 0
    var pageStatistics = ColumnStatistics()

    // Scratch, shared by the columns (used only while a page is cut).
    var body: GrowableBytes { resources.body }
    var compressed: GrowableBytes { resources.compressed }

    init(spec: ParquetColumnSpec, options: ParquetWriterOptions, resources: ParquetWriterResources) {
        self.spec = spec
        kind = spec.kind
        nullable = spec.field.nullable
        self.options = options
        self.resources = resources
        let dictionary = options.dictionaryEnabled && options.dictionaryPageLimit > 0
        switch spec.kind {
        case .bytes:
            bytesDictionary = dictionary ? BytesDictionary() : nil
            fixedDictionary = nil
        case .int64, .decimalInt64, .double:
            fixedDictionary = dictionary ? FixedDictionary(valueWidth: 8) : nil
            bytesDictionary = nil
        case .int32:
            fixedDictionary = dictionary ? FixedDictionary(valueWidth: 4) : nil
            bytesDictionary = nil
        case .boolean, .decimalFixed:
            fixedDictionary = nil
            bytesDictionary = nil
        }
        usingDictionary = fixedDictionary != nil || bytesDictionary != nil
    }

    /// The dictionary is judged once the values seen in dictionary mode would take this many PLAIN bytes.
    static let dictionaryTrialBytes = 64 << 10

    /// Whether dictionary + indices save at least a fifth of the PLAIN size of the values seen so far.
    func dictionaryPays(indices: Int) -> Bool {
        let width = max(1, RLEHybridEncoder.bitWidth(forMax: UInt64(max(dictionaryCount, 1) - 1)))
        return (dictionaryBytes + indices * width / 8) * 5 <= plainEquivalentBytes * 4
    }

    var dictionaryCount: Int { fixedDictionary?.count ?? bytesDictionary?.count ?? 0 }
    var dictionaryBytes: Int { fixedDictionary?.byteSize ?? bytesDictionary?.byteSize ?? 0 }

    /// PLAIN bytes one value takes (an average for byte arrays).
    func plainValueWidth(_ column: Column, _ range: Range<Int>) -> Int {
        switch kind {
        case .boolean: return 1
        case .int32: return 4
        case .int64, .double, .decimalInt64: return 8
        case let .decimalFixed(width): return width
        case .bytes:
            guard case let .bytes(offsets, _) = column.storage, !range.isEmpty else { return 4 }
            return 4 + Int(offsets[range.upperBound] - offsets[range.lowerBound]) / range.count
        }
    }

    /// Encoded size of the current page so far.
    var pageEncodedBytes: Int {
        let levels = pageValueCount / 8
        if usingDictionary {
            let width = RLEHybridEncoder.bitWidth(forMax: UInt64(max(dictionaryCount, 1)))
            return levels + pageIndices.count * width / 8
        }
        return levels + pageValues.count + pageBools.count / 8
    }

    /// Roughly the bytes ``finishPages()`` has left to encode and compress: the open page and
    /// the dictionary.
    var pendingBytes: Int {
        pageValues.count + pageIndices.count * 4 + pageBools.count + (dictionaryUsed || usingDictionary ? dictionaryBytes : 0)
    }

    // MARK: Appending

    /// Appends rows `range` of `column` (already checked against the field).
    func append(_ column: Column, range: Range<Int>) throws {
        let width = max(plainValueWidth(column, range), 1)
        var start = range.lowerBound
        while start < range.upperBound {
            let room = max(options.pageBytes - pageEncodedBytes, 0)
            let n = min(range.upperBound - start, max(1, min(room / width + 1, 8192)))
            appendSlice(column, start..<(start + n))
            if pageEncodedBytes >= options.pageBytes { try flushPage() }
            if usingDictionary && dictionaryBytes > options.dictionaryPageLimit {
                try flushPage()
                usingDictionary = false
            } else if usingDictionary && !dictionaryEvaluated && plainEquivalentBytes >= Self.dictionaryTrialBytes {
                dictionaryEvaluated = true
                if !dictionaryPays(indices: pageIndices.count) {
                    try flushPage()
                    usingDictionary = false
                }
            }
            start += n
        }
    }

    private func appendSlice(_ column: Column, _ r: Range<Int>) {
        let validity = column.validity
        var nulls = 0
        if let validity, nullable {
            for i in r where !validity[i] { nulls += 1 }
            if nulls > 0 && !pageHasLevels {
                pageLevels.removeAll(keepingCapacity: true)
                pageLevels.append(contentsOf: repeatElement(1, count: pageValueCount))
                pageHasLevels = true
            }
            if pageHasLevels {
                for i in r { pageLevels.append(validity[i] ? 1 : 0) }
            }
        } else if pageHasLevels {
            pageLevels.append(contentsOf: repeatElement(1, count: r.count))
        }
        let valid = nulls > 0 ? validity : nil
        switch (kind, column.storage) {
        case let (.boolean, .bool(values)): appendBools(values, r, valid)
        case let (.int64, .int64(values)): appendInt64s(values, r, valid)
        case let (.int32, .int32(values)): appendInt32s(values, r, valid)
        case let (.double, .float64(values)): appendDoubles(values, r, valid)
        case let (.decimalInt64, .decimal(values)): appendDecimalsAsInt64(values, r, valid)
        case let (.decimalFixed(width), .decimal(values)): appendDecimalsFixed(values, width, r, valid)
        case let (.bytes, .bytes(offsets, data)): appendBytes(offsets, data, r, valid)
        default: preconditionFailure("column storage does not match \(spec.field)")
        }
        pageValueCount += r.count
        pageNullCount += nulls
        pageStatistics.nullCount += Int64(nulls)
    }

    // MARK: Pages

    /// Encodes the buffered page, compresses it and appends it (header first) to the chunk.
    func flushPage() throws {
        guard pageValueCount > 0 else { return }
        body.removeAll()
        if nullable {
            let lengthAt = body.count
            body.appendLE(UInt32(0))
            if pageHasLevels {
                RLEHybridEncoder.encode(pageLevels, bitWidth: 1, into: body)
            } else {
                RLEHybridEncoder.repeated(1, count: pageValueCount, bitWidth: 1, into: body)
            }
            body.setUInt32LE(UInt32(body.count - lengthAt - 4), at: lengthAt)
        }
        let nonNull = pageValueCount - pageNullCount
        let encoding: ParquetEncoding
        if usingDictionary && nonNull > 0 {
            encoding = .rleDictionary
            let width = max(1, RLEHybridEncoder.bitWidth(forMax: UInt64(dictionaryCount - 1)))
            body.append(byte: UInt8(width))
            RLEHybridEncoder.encode(pageIndices.buffer, bitWidth: width, into: body)
            dictionaryUsed = true
        } else {
            encoding = .plain
            if kind == .boolean {
                packBools(into: body)
            } else {
                body.append(pageValues)
            }
        }
        var header = ParquetPageHeader(type: .dataPage, uncompressedPageSize: Int32(body.count), compressedPageSize: 0)
        let stored = try compressedBody()
        header.compressedPageSize = Int32(stored.count)
        header.dataPageHeader = ParquetDataPageHeader(
            numValues: Int32(pageValueCount), encoding: encoding, definitionLevelEncoding: .rle,
            repetitionLevelEncoding: .rle, statistics: pageStatistics.encoded(kind: kind))
        let headerBytes = header.serialized(using: &thrift)
        pages.append(headerBytes)
        pages.append(stored)
        dataPagesUncompressed += headerBytes.count + body.count
        dataPagesCompressed += headerBytes.count + stored.count
        pageEncodingCounts[encoding, default: 0] += 1
        chunkStatistics.merge(pageStatistics, kind: kind)
        chunkValueCount += pageValueCount

        // After the first page (if the trial did not decide earlier), keep the dictionary only if it pays.
        if usingDictionary && !dictionaryEvaluated && nonNull > 0 {
            dictionaryEvaluated = true
            if !dictionaryPays(indices: pageIndices.count) { usingDictionary = false }
        }
        pageValues.removeAll()
        pageIndices.removeAll()
        pageBools.removeAll(keepingCapacity: true)
        pageLevels.removeAll(keepingCapacity: true)
        pageHasLevels = false
        pageValueCount = 0
        pageNullCount = 0
        pageStatistics.reset()
    }

    /// `body` compressed (or `body` itself when uncompressed).
    private func compressedBody() throws -> GrowableBytes {
        if compressor.codec == .uncompressed { return body }
        compressed.removeAll()
        try compressor.compress(body.bytes, into: compressed)
        return compressed
    }

    private func packBools(into out: GrowableBytes) {
        var byte: UInt8 = 0
        for (i, b) in pageBools.enumerated() {
            byte |= b << UInt8(i & 7)
            if i & 7 == 7 {
                out.append(byte: byte)
                byte = 0
            }
        }
        if pageBools.count & 7 != 0 { out.append(byte: byte) }
    }

    // MARK: Chunk

    /// The chunk's dictionary page (header and stored bytes), cut by ``finishPages()``.
    private var dictionaryPage: (bytes: [UInt8], uncompressed: Int, compressed: Int)?
    /// Whether ``finishPages()`` ran for the current chunk.
    private var pagesFinished = false

    /// Cuts the chunk's last data page and its dictionary page: the encoding and compressing
    /// part of writing a chunk, which the columns of a row group do on several threads at once
    /// before ``writeChunk(to:)`` writes them, in order, on one.
    func finishPages() throws {
        guard !pagesFinished else { return }
        try flushPage()
        if dictionaryUsed {
            body.removeAll()
            if let fixedDictionary { fixedDictionary.writePlain(into: body) }
            if let bytesDictionary { body.append(bytesDictionary.plain) }
            var header = ParquetPageHeader(type: .dictionaryPage, uncompressedPageSize: Int32(body.count), compressedPageSize: 0)
            let stored = try compressedBody()
            header.compressedPageSize = Int32(stored.count)
            header.dictionaryPageHeader = ParquetDictionaryPageHeader(numValues: Int32(dictionaryCount), encoding: .plain)
            var page = header.serialized(using: &thrift)
            let headerCount = page.count
            page.append(contentsOf: stored.bytes)
            dictionaryPage = (page, headerCount + body.count, headerCount + stored.count)
        }
        pagesFinished = true
    }

    /// Writes the column chunk (dictionary page first, then the data pages) to `output`, which
    /// is at file offset `offset`; returns its metadata and resets for the next row group.
    func writeChunk(to output: any ParquetOutput) throws -> ParquetColumnChunk {
        try finishPages()
        let start = output.offset
        var dictionaryOffset: Int64?
        var dictionaryUncompressed = 0
        var dictionaryCompressed = 0
        if let dictionaryPage {
            dictionaryOffset = Int64(output.offset)
            try dictionaryPage.bytes.withUnsafeBytes { try output.write($0) }
            dictionaryUncompressed = dictionaryPage.uncompressed
            dictionaryCompressed = dictionaryPage.compressed
        }
        let dataOffset = output.offset
        try output.write(pages.bytes)

        var encodings: [ParquetEncoding] = [.rle]
        if dictionaryUsed { encodings.append(.plain) }
        for e in [ParquetEncoding.plain, .rleDictionary] where pageEncodingCounts[e] != nil && !encodings.contains(e) {
            encodings.append(e)
        }
        var encodingStats: [ParquetPageEncodingStats] = []
        if dictionaryUsed { encodingStats.append(.init(pageType: .dictionaryPage, encoding: .plain, count: 1)) }
        for e in [ParquetEncoding.plain, .rleDictionary] {
            if let n = pageEncodingCounts[e] { encodingStats.append(.init(pageType: .dataPage, encoding: e, count: n)) }
        }
        let meta = ParquetColumnMetaData(
            type: spec.physicalType, encodings: encodings, pathInSchema: [spec.field.name], codec: compressor.codec,
            numValues: Int64(chunkValueCount),
            totalUncompressedSize: Int64(dictionaryUncompressed + dataPagesUncompressed),
            totalCompressedSize: Int64(dictionaryCompressed + dataPagesCompressed),
            dataPageOffset: Int64(dataOffset), dictionaryPageOffset: dictionaryOffset,
            statistics: chunkStatistics.encoded(kind: kind), encodingStats: encodingStats)
        var chunk = ParquetColumnChunk()
        chunk.fileOffset = Int64(start)
        chunk.metaData = meta
        resetChunk()
        return chunk
    }

    private func resetChunk() {
        pagesFinished = false
        dictionaryPage = nil
        pages.removeAll()
        fixedDictionary?.removeAll()
        bytesDictionary?.removeAll()
        usingDictionary = fixedDictionary != nil || bytesDictionary != nil
        dictionaryUsed = false
        dictionaryEvaluated = false
        plainEquivalentBytes = 0
        chunkStatistics.reset()
        chunkValueCount = 0
        dataPagesUncompressed = 0
        dataPagesCompressed = 0
        pageEncodingCounts.removeAll()
    }
}
