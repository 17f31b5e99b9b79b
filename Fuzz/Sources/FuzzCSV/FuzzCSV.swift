import FuzzSupport
import SluiceCore
import SluiceFormats

// The input is a CSV file, read the way the file source reads files — prepared on
// the whole input, then decoded — with the default options (header, inferred types) and with
// declared columns (no header, `;`), in small batches, each both at once and in three chunks: the chunked run
// must decode the same rows and rejects (a record split by a chunk boundary waits for the rest).
// Mirrored by Tests/SluiceFormatsTests/FuzzRegressionTests.swift.

let declared = CSVOptions(
    delimiter: UInt8(ascii: ";"), header: false,
    columns: [
        Field("i", .int64), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
        Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary),
    ],
    batchRows: 7)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for options in [CSVOptions(batchRows: 5), declared] {
        let whole = decode(input, options: options, chunk: nil)
        let chunked = decode(input, options: options, chunk: max(1, size / 3))
        if whole?.rows != chunked?.rows || whole?.rejects != chunked?.rejects {
            fatalError("CSV decoded in chunks differs: \(String(describing: chunked)) vs at once \(String(describing: whole))")
        }
    }
    return 0
}

/// Rows and reject kinds, or nil when `prepare` refused the input (with a `SluiceError`).
func decode(_ input: UnsafeRawBufferPointer, options: CSVOptions, chunk: Int?) -> (rows: Int, rejects: [String])? {
    let decoder = CSVDecoder(options: options)
    let start: Int
    do {
        start = try decoder.prepare(sample: input, isWholeInput: true)
    } catch is SluiceError {
        return nil
    } catch {
        fatalError("CSV prepare threw a \(type(of: error)): \(error)")
    }
    precondition(start >= 0 && start <= input.count, "data start \(start) outside the input")
    return FuzzDrive.decodeAll(decoder, Array(input[start...]), chunk: chunk ?? max(1, input.count))
}
