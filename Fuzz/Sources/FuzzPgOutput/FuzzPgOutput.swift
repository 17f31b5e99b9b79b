#if canImport(Glibc)
    import Glibc
#endif
import SluicePostgres

// The input is one pgoutput message (an XLogData payload), and also one CopyData payload of the
// streaming replication protocol (a frame; an XLogData frame's payload is decoded as a message).
// Every failure must be a PgOutputError. Mirrored by Tests/SluicePostgresTests/FuzzRegressionTests.swift.

/// `SLUICE_FUZZ_VERBOSE=1`: print why each input was refused (to triage a corpus by hand).
let verbose = getenv("SLUICE_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPgOutput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        _ = try PgOutputDecoder.decode(bytes)
    } catch let error as PgOutputError {
        if verbose { print("message refused: \(error)") }
    } catch {
        fatalError("PgOutputDecoder threw a \(type(of: error)): \(error)")
    }
    do {
        if case let .xLogData(_, _, _, payload) = try ReplicationFrame.decode(bytes) {
            _ = try PgOutputDecoder.decode(payload)
        }
    } catch let error as PgOutputError {
        if verbose { print("frame refused: \(error)") }
    } catch {
        fatalError("ReplicationFrame threw a \(type(of: error)): \(error)")
    }
    return 0
}
