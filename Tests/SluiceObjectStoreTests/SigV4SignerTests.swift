import Foundation
import SluiceObjectStore
import Testing
import SluiceTesting

/// The signer against AWS's published examples: the S3 API reference's "Signature Calculations
/// for the Authorization Header" (GET object, PUT object, GET bucket lifecycle, list objects)
/// and the SigV4 test suite's `get-vanilla` cases.
@Suite(.offCooperativePool) struct SigV4SignerTests {
    let s3 = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    let may24 = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func signature(_ headers: [(String, String)]) -> String {
        let auth = headers.first { $0.0 == "Authorization" }!.1
        return String(auth[auth.range(of: "Signature=")!.upperBound...])
    }

    @Test func getObjectWithARange() {
        let headers = s3.sign(
            method: "GET", path: "/test.txt", query: [], headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: may24)
        #expect(signature(headers) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        let auth = headers.first { $0.0 == "Authorization" }!.1
        #expect(
            auth.hasPrefix(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            ))
        #expect(headers.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    @Test func putObjectWithAPayloadAndAnEncodedKey() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let hash = SigV4Signer.sha256Hex(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let headers = s3.sign(
            method: "PUT", path: SigV4Signer.encodePath("/test$file.text"), query: [],
            headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ], payloadHash: hash, date: may24)
        #expect(signature(headers) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycleWithAnEmptyQueryValue() {
        let headers = s3.sign(
            method: "GET", path: "/", query: [("lifecycle", "")], headers: [("Host", "examplebucket.s3.amazonaws.com")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: may24)
        #expect(signature(headers) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjectsWithQueryParametersSorted() {
        let headers = s3.sign(
            method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [("Host", "examplebucket.s3.amazonaws.com")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: may24)
        #expect(signature(headers) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func theTestSuitesVanillaRequests() {
        let suite = SigV4Signer(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")
        let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
        let vanilla = suite.sign(
            method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com")], payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(signature(vanilla) == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        let ordered = suite.sign(
            method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")], headers: [("Host", "example.amazonaws.com")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(signature(ordered) == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        // No content hash header outside S3, and a session token is signed when present.
        #expect(!vanilla.contains { $0.0 == "x-amz-content-sha256" })
        var temporary = suite
        temporary.sessionToken = "token"
        let withToken = temporary.sign(
            method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com")], payloadHash: SigV4Signer.emptyPayloadHash, date: date)
        #expect(withToken.contains { $0 == ("x-amz-security-token", "token") })
        #expect(withToken.last!.1.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"))
    }

    @Test func encodingFollowsRFC3986AsSigV4Wants() {
        #expect(SigV4Signer.encode("a b+c/d~e_f.g-h*") == "a%20b%2Bc%2Fd~e_f.g-h%2A")
        #expect(SigV4Signer.encodePath("/bucket/day=2026-12-05/é x.parquet") == "/bucket/day%3D2026-12-05/%C3%A9%20x.parquet")
        #expect(SigV4Signer.timestamp(Date(timeIntervalSince1970: 1_369_353_600)) == "20130524T000000Z")
    }
}
