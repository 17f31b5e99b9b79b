import FuzzSupport
import SluiceCore
import SluiceFormats

// The input is an NDJSON file, read as the file source reads it (prepared on the whole input,
// then decoded) with inferred columns and with declared ones, each at once and in three chunks:
// both must give the same number of rows and the same rejects.
// Mirrored by Tests/SluiceFormatsTests/FuzzRegressionTests.swift.

let declared = NDJSONOptions(
    columns: [
        Field("i", .int64), Field("f", .float64), Field("d", .decimal(precision: 38, scale: 2)), Field("b", .bool),
        Field("t", .timestamp), Field("day", .date), Field("s", .string), Field("bin", .binary), Field("j", .json),
    ],
    batchRows: 7)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNDJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for options in [NDJSONOptions(batchRows: 5), declared] {
        let whole = decode(input, options: options, chunk: nil)
        let chunked = decode(input, options: options, chunk: max(1, size / 3))
        if whole.rows != chunked.rows || whole.rejects.count != chunked.rejects.count {
            fatalError("NDJSON decoded in chunks differs: \(chunked) vs at once \(whole)")
        }
    }
    return 0
}

func decode(_ input: UnsafeRawBufferPointer, options: NDJSONOptions, chunk: Int?) -> (rows: Int, rejects: [String]) {
    let decoder = NDJSONDecoder(options: options)
    let start: Int
    do {
        start = try decoder.prepare(sample: input, isWholeInput: true)
    } catch {
        fatalError("NDJSON prepare threw a \(type(of: error)): \(error)")
    }
    precondition(start >= 0 && start <= input.count, "data start \(start) outside the input")
    return FuzzDrive.decodeAll(decoder, Array(input[start...]), chunk: chunk ?? max(1, input.count))
}
