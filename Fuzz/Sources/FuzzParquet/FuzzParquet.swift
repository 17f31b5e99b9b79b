#if canImport(Glibc)
    import Glibc
#endif
import SluiceCore
import SluiceFormats

// The input is a Parquet file: footer (Thrift), schema, then every row group's pages are read.
// It also goes through the footer-only path used for object storage (`metadata(name:size:tail:)`).
// Every failure must be a ParquetError. Mirrored by Tests/SluiceFormatsTests/FuzzRegressionTests.swift.

/// `SLUICE_FUZZ_VERBOSE=1`: print why each input was refused (to triage a corpus by hand).
let verbose = getenv("SLUICE_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParquet(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let reader = try ParquetReader(bytes: bytes, name: "fuzz.parquet")
        for g in 0..<reader.rowGroupCount {
            let batch = try reader.readRowGroup(g)
            precondition(batch.count == reader.metadata.rowGroups[g].rows, "row group \(g): \(batch.count) rows read")
        }
    } catch let error as ParquetError {
        if verbose { print("refused: \(error)") }
    } catch {
        fatalError("ParquetReader threw a \(type(of: error)): \(error)")
    }
    do {
        _ = try ParquetReader.metadata(name: "fuzz.parquet", size: size, tail: bytes)
    } catch is ParquetError {
    } catch {
        fatalError("ParquetReader.metadata threw a \(type(of: error)): \(error)")
    }
    return 0
}
