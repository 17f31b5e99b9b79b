import Foundation
import SluiceCore
import Testing
@testable import SluiceFormats

@Suite("Parquet malformed input")
struct ParquetMalformedTests {
    static let sample: [UInt8] = {
        var options = ParquetWriterOptions(compression: .snappy)
        options.pageBytes = 512
        options.rowGroupRows = 150
        return try! ParquetTestSupport.writeToMemory(
            ParquetSampleData.batches(rows: 400, batchSize: 400),
            schema: ParquetSampleData.schema, options: options)
    }()

    /// Opens and reads everything; returns the error, or nil when the bytes were read.
    func readError(_ bytes: [UInt8], name: String = "bad.parquet") -> (any Error)? {
        do {
            let reader = try ParquetReader(bytes: bytes, name: name)
            _ = try reader.readAll()
            return nil
        } catch {
            return error
        }
    }

    func expectParquetError(_ bytes: [UInt8], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error = readError(bytes) else {
            Issue.record("expected an error mentioning \"\(text)\"", sourceLocation: sourceLocation)
            return
        }
        guard let e = error as? ParquetError else {
            Issue.record("expected a ParquetError, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(e.path == "bad.parquet", sourceLocation: sourceLocation)
        #expect(e.description.contains(text), "\(e)", sourceLocation: sourceLocation)
    }

    @Test func sampleIsValid() throws {
        #expect(readError(Self.sample) == nil)
        #expect(try ParquetReader(bytes: Self.sample).rowGroupCount == 3)
    }

    @Test func tooShortAndWrongMagic() {
        expectParquetError([], mentioning: "too short")
        expectParquetError(Array("PAR1PAR1".utf8), mentioning: "too short")
        var wrongHead = Self.sample
        wrongHead[0] = UInt8(ascii: "X")
        expectParquetError(wrongHead, mentioning: "does not start with PAR1")
        var wrongTail = Self.sample
        wrongTail[wrongTail.count - 1] = 0
        expectParquetError(wrongTail, mentioning: "does not end with PAR1")
        expectParquetError(Array("just some text, definitely not parquet".utf8), mentioning: "PAR1")
    }

    @Test func truncatedFilesAreRefused() {
        let n = Self.sample.count
        for cut in [1, 4, 8, 12, n / 3, n / 2, n - 9, n - 8, n - 5, n - 1] {
            expectParquetError(Array(Self.sample.prefix(cut)), mentioning: "bad.parquet")
        }
        // Truncated, then closed again with a magic: the footer length points outside.
        expectParquetError(
            Array(Self.sample.prefix(n / 2)) + [0xFF, 0xFF, 0xFF, 0x7F] + Array("PAR1".utf8),
            mentioning: "footer length")
    }

    func footerRange(_ bytes: [UInt8]) -> Range<Int> {
        let n = bytes.count
        let length = Int(bytes[n - 8]) | Int(bytes[n - 7]) << 8 | Int(bytes[n - 6]) << 16 | Int(bytes[n - 5]) << 24
        return (n - 8 - length)..<(n - 8)
    }

    @Test func corruptFooterIsRefused() {
        var bytes = Self.sample
        let footer = footerRange(bytes)
        for i in footer.prefix(40) { bytes[i] = 0xFF }
        expectParquetError(bytes, mentioning: "corrupt footer")
        var zeros = Self.sample
        for i in footer { zeros[i] = 0 }
        expectParquetError(zeros, mentioning: "corrupt footer")
    }

    /// Re-serialises the sample with edited metadata.
    func withMetadata(_ edit: (inout ParquetFileMetaData) -> Void) throws -> [UInt8] {
        let footer = footerRange(Self.sample)
        var r = ThriftCompactReader(Array(Self.sample[footer]))
        var meta = try ParquetFileMetaData.decode(&r)
        edit(&meta)
        var serialized = meta.serialized()
        let length = UInt32(serialized.count)
        serialized += (0..<4).map { UInt8(truncatingIfNeeded: length >> (8 * UInt32($0))) } + Array("PAR1".utf8)
        return Array(Self.sample[..<footer.lowerBound]) + serialized
    }

    @Test func offsetsAndCountsOutsideTheFileAreRefused() throws {
        expectParquetError(try withMetadata { $0.rowGroups[1].columns[2].metaData!.dataPageOffset = 1 << 40 }, mentioning: "outside")
        expectParquetError(try withMetadata { $0.rowGroups[0].columns[0].metaData!.totalCompressedSize = 1 << 30 }, mentioning: "outside")
        // A chunk without a dictionary starts at its data page offset.
        expectParquetError(try withMetadata { $0.rowGroups[0].columns[10].metaData!.dataPageOffset += 3 }, mentioning: "column huge")

        expectParquetError(try withMetadata { $0.numRows += 1 }, mentioning: "rows")
        expectParquetError(try withMetadata { $0.rowGroups[2].numRows = 1 << 40 }, mentioning: "rows")
        expectParquetError(try withMetadata { $0.rowGroups[0].columns.removeLast() }, mentioning: "column chunks")
        expectParquetError(try withMetadata { $0.schema[0].numChildren = 99 }, mentioning: "children")
        expectParquetError(try withMetadata { $0.rowGroups[0].columns[4].metaData!.codec = .lz4Raw }, mentioning: "LZ4_RAW")
    }

    @Test func aGroupSwallowingTheNextColumnIsACorruptSchema() throws {
        // Column 1 turned into a group of one child takes column 2 as its child: the root then
        // lacks a child, and the footer is corrupt (nested columns as such are read).
        let bytes = try withMetadata { meta in
            meta.schema[1].numChildren = 1
            meta.schema[1].type = nil
        }
        guard let e = readError(bytes) as? ParquetError else {
            Issue.record("expected a ParquetError")
            return
        }
        #expect(e.kind == .malformed)
        #expect(e.message.contains("children"), "\(e.message)")
    }

    @Test func randomCorruptionNeverCrashes() throws {
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for round in 0..<400 {
            var bytes = Self.sample
            switch round % 4 {
            case 0:  // flip a few bytes anywhere
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:  // flip a byte in the footer
                let footer = footerRange(bytes)
                bytes[Int.random(in: footer, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 2:  // cut a slice out of the data and fix up the tail
                let start = Int.random(in: 4..<(bytes.count - 200), using: &rng)
                bytes.removeSubrange(start..<(start + Int.random(in: 1...50, using: &rng)))
            default:  // overwrite a run with zeros or 0xFF
                let start = Int.random(in: 4..<(bytes.count - 40), using: &rng)
                let fill: UInt8 = Bool.random(using: &rng) ? 0 : 0xFF
                for i in start..<(start + Int.random(in: 1...32, using: &rng)) { bytes[i] = fill }
            }
            if let error = readError(bytes) {
                if !(error is ParquetError) { Issue.record("round \(round): not a ParquetError: \(error)") }
                failures += 1
            }
        }
        #expect(failures > 0)
    }
}
