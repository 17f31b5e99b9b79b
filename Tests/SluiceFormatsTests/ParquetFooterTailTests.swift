import Foundation
import SluiceCore
import Testing

@testable import SluiceFormats

/// Reading a footer from a file's last bytes only (an object's suffix range).
@Suite struct ParquetFooterTailTests {
    @Test func theTailAloneGivesTheFootersMetadataOrSaysToFetchMore() throws {
        let schema = Schema([Field("id", .int64), Field("v", .string)])
        let batch = ParquetTestSupport.makeBatch(schema, rows: 5000) { r, c, b in
            if c == 0 { b.append(Int64(r)) } else { b.append(string: "value \(r % 97)") }
        }
        var options = ParquetWriterOptions()
        options.keyValueMetadata = ["sluice.tier": "archive", "sluice.modified": "1764892800"]
        let bytes = try ParquetTestSupport.writeToMemory([batch], schema: schema, options: options)
        let whole = try ParquetReader(bytes: bytes).metadata

        let length = try #require(ParquetReader.footerLength(tail: Array(bytes.suffix(8))))
        let tail = Array(bytes.suffix(length + 8))
        let read = try #require(try ParquetReader.metadata(name: "t", size: bytes.count, tail: tail))
        #expect(read == whole)
        #expect(read.keyValue["sluice.tier"] == "archive" && read.rows == 5000)
        // A tail shorter than the footer: nil, fetch more.
        #expect(try ParquetReader.metadata(name: "t", size: bytes.count, tail: Array(bytes.suffix(length))) == nil)
        // Not a Parquet file's end: a clear error.
        #expect(throws: ParquetError.self) { try ParquetReader.metadata(name: "t", size: 100, tail: Array("not parquet at all".utf8)) }
    }
}
