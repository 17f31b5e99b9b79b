#if canImport(Glibc)
    import Glibc
#endif
import SluiceMySQLProtocol

// MySQLFuzzEntry.parse: the first byte chooses the parser (a binlog, a greeting, a query's
// answer, an authentication reply, a binary JSON document). Every failure must be a
// MySQLProtocolError (or the server's own error, MySQLServerError).

/// `SLUICE_FUZZ_VERBOSE=1`: print why each input was refused (to triage a corpus by hand).
let verbose = getenv("SLUICE_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMySQL(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try MySQLFuzzEntry.parse(bytes)
    } catch let error as MySQLProtocolError {
        if verbose { print("refused: \(error)") }
    } catch let error as MySQLServerError {
        if verbose { print("server error: \(error)") }
    } catch {
        fatalError("the MySQL parsers threw a \(type(of: error)): \(error)")
    }
    return 0
}
