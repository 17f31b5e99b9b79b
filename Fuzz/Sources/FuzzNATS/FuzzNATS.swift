#if canImport(Glibc)
    import Glibc
#endif
import SluiceNATS

// The input is what a NATS server sends. It is parsed at once and again arriving in pieces
// (cut at a third and two thirds): the operations, and whether a protocol error ends them,
// must be the same. Every failure must be a NATSProtocolError.
// Mirrored by Tests/SluiceNATSTests/FuzzRegressionTests.swift.

/// `SLUICE_FUZZ_VERBOSE=1`: print why each input was refused (to triage a corpus by hand).
let verbose = getenv("SLUICE_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNATS(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = parse([bytes[...]])
    let cuts = [0, size / 3, 2 * size / 3, size]
    let pieces = (0..<3).map { bytes[cuts[$0]..<cuts[$0 + 1]] }
    let split = parse(pieces)
    if whole.ops != split.ops || whole.failed != split.failed {
        fatalError("NATS parsed in pieces differs: \(split) vs at once \(whole)")
    }
    return 0
}

func parse(_ pieces: [ArraySlice<UInt8>]) -> (ops: [NATSServerOp], failed: Bool) {
    var parser = NATSParser()
    parser.maxPayload = 1 << 20
    var ops: [NATSServerOp] = []
    do {
        for piece in pieces {
            parser.append(piece)
            while let op = try parser.next() { ops.append(op) }
        }
    } catch let error as NATSProtocolError {
        if verbose { print("\(ops.count) operations, then: \(error)") }
        return (ops, true)
    } catch {
        fatalError("NATSParser threw a \(type(of: error)): \(error)")
    }
    return (ops, false)
}
