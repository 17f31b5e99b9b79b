import Testing
import SluiceCore
@testable import SluiceFormats

@Suite struct SmokeTests {
    @Test func smoke() throws {
        let (d, out) = try csv("a,b,c\n1,x,2.5\n2,\"y,z\",\n")
        print(d.schema, out.table, out.rejects)
        let (d2, out2) = try ndjson("{\"a\":1,\"b\":\"x\"}\n{\"a\":2.5,\"c\":[1,2]}\n")
        print(d2.schema, out2.table, out2.rejects)
        var bytes: [UInt8] = []
        let batch = RecordBatch.empty(d2.schema)
        _ = batch
        _ = bytes
        bytes = []
    }
}
