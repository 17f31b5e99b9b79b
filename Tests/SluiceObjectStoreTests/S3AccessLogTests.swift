import Foundation
import Testing
import SluiceTesting

@testable import SluiceObjectStore

/// Records of the S3 server access log format, as AWS documents them.
@Suite(.offCooperativePool) struct S3AccessLogTests {
    @Test func documentedRecordsParse() throws {
        // AWS's documented example, then a GET of an encoded key by another client.
        let example = """
            79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV2 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - -
            """
        let r = try #require(S3AccessLogRecord.parse(Substring(example)))
        #expect(r.bucket == "awsexamplebucket1" && r.operation == "REST.GET.VERSIONING" && r.key == nil && r.status == 200)
        #expect(r.userAgent == "S3Console/0.4")
        #expect(r.time == Date(timeIntervalSince1970: 1_549_411_238))

        let get = """
            owner lake [05/Dec/2026:23:59:59 -0130] 10.0.0.1 arn:aws:iam::1:user/a REQ1 REST.GET.OBJECT events/day%3D2026-12-05/part-1.parquet "GET /lake/events/day%3D2026-12-05/part-1.parquet HTTP/1.1" 206 - 1024 4096 12 10 "-" "duckdb/1.1 (linux)" -
            """
        let g = try #require(S3AccessLogRecord.parse(Substring(get)))
        #expect(g.key == "events/day=2026-12-05/part-1.parquet" && g.status == 206 && g.userAgent == "duckdb/1.1 (linux)")
        // 23:59:59 at -01:30 is 01:29:59 UTC the next day.
        #expect(g.time == Date(timeIntervalSince1970: 1_796_515_199 + 5400))
    }

    @Test func whatIsNotARecordIsSkipped() {
        #expect(S3AccessLogRecord.parse("") == nil)
        #expect(S3AccessLogRecord.parse("a b c") == nil)
        #expect(S3AccessLogRecord.parse(#"o b [not a time] ip r id REST.GET.OBJECT k "GET /" 200"#) == nil)
        #expect(S3AccessLogRecord.parse(#"o b [06/Feb/2019:00:00:38 +0000] ip r id REST.GET.OBJECT k "GET /k HTTP/1.1" 200"#)?.key == "k")
    }
}
