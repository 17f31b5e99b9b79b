import Foundation
import Logging
import SluiceCore
import SluiceObjectStore
import SluiceTesting
import Testing

/// The object-store seam against a real S3 server (SeaweedFS) and a local directory: the same
/// checks for both, then what only S3 answers (authentication, missing buckets, outages).
@Suite(.offCooperativePool) struct ObjectStoreTests {
    let logger = Logger(label: "s3-test")

    func s3(_ server: S3TestServer, bucket: String, secret: String = S3TestServer.secretKey, attempts: Int = 6) -> S3ObjectStore {
        let settings = S3Settings(
            endpoint: server.endpoint, region: "us-east-1", pathStyle: true, accessKeyID: S3TestServer.accessKey, secretAccessKey: secret)
        return S3ObjectStore(bucket: bucket, settings: settings, logger: logger, attempts: attempts)
    }

    /// Put, get (whole, ranged, conditional), head, list, delete and a multipart upload.
    func exercise(_ store: any ObjectStore) async throws {
        let text = Array("hello, object storage".utf8)
        try await store.put("a/one.txt", bytes: text, ifNoneMatch: false)
        try await store.put("a/b/two=2/é x.txt", bytes: [1, 2, 3], ifNoneMatch: true)
        await #expect(throws: ObjectStoreError.alreadyExists("a/one.txt")) {
            try await store.put("a/one.txt", bytes: [9], ifNoneMatch: true)
        }
        #expect(try await store.get("a/one.txt", range: nil, ifMatch: nil) == text)
        #expect(try await store.get("a/one.txt", range: 7..<13, ifMatch: nil) == Array("object".utf8))
        let info = try #require(try await store.head("a/one.txt"))
        #expect(info.size == text.count && !info.etag.isEmpty)
        #expect(try await store.get("a/one.txt", range: 0..<5, ifMatch: info.etag) == Array("hello".utf8))
        #expect(try await store.head("a/none") == nil)
        await #expect(throws: ObjectStoreError.notFound("a/none")) { try await store.get("a/none", range: nil, ifMatch: nil) }
        let listed = try await store.list(prefix: "a/")
        #expect(listed.map(\.key) == ["a/b/two=2/é x.txt", "a/one.txt"])
        #expect(listed.map(\.size) == [3, text.count])
        try await store.put("a/one.txt", bytes: Array("replaced".utf8), ifNoneMatch: false)
        await #expect(throws: ObjectStoreError.changed("a/one.txt")) { try await store.get("a/one.txt", range: nil, ifMatch: info.etag) }

        // A multipart upload stays invisible until completed; parts are listed back with ETags.
        let big = (0..<(11 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: file, contents: Data(big))
        defer { unlink(file) }
        let (uploadID, parts) = try await FileUpload(store: store, partSize: 5 << 20, parallelParts: 2).upload(
            path: file, size: big.count, to: "m/big.bin")
        #expect(parts.map(\.number) == [1, 2, 3] && parts.map(\.size) == [5 << 20, 5 << 20, 1 << 20])
        #expect(try await store.head("m/big.bin") == nil)
        #expect(try await store.listMultipartUploads(prefix: "m/").map(\.uploadID) == [uploadID])
        let listedParts = try #require(try await store.listParts("m/big.bin", uploadID: uploadID))
        #expect(listedParts.map(\.etag) == parts.map(\.etag))
        try await store.completeMultipartUpload("m/big.bin", uploadID: uploadID, parts: listedParts)
        #expect(try await store.get("m/big.bin", range: nil, ifMatch: nil) == big)
        #expect(try await store.listParts("m/big.bin", uploadID: uploadID) == nil)
        #expect(try await store.listMultipartUploads(prefix: "m/").isEmpty)

        let abandoned = try await store.createMultipartUpload("m/abandoned.bin")
        _ = try await store.uploadPart("m/abandoned.bin", uploadID: abandoned, number: 1, bytes: [1, 2])
        try await store.abortMultipartUpload("m/abandoned.bin", uploadID: abandoned)
        try await store.abortMultipartUpload("m/abandoned.bin", uploadID: abandoned)  // twice is fine
        #expect(try await store.listMultipartUploads(prefix: "m/").isEmpty)
        #expect(try await store.head("m/abandoned.bin") == nil)

        try await store.delete("a/one.txt")
        try await store.delete("a/one.txt")
        #expect(try await store.list(prefix: "a/").map(\.key) == ["a/b/two=2/é x.txt"])
    }

    @Test func aRealS3ServerBehavesAsTheSeamSays() async throws {
        // Starting, stopping and the AWS CLI block: off the cooperative pool, which the tests share.
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("seam") }
        let store = s3(server, bucket: "seam")
        try await exercise(store)
        // An independent client sees the same objects.
        let listing = try await offPool { try server.aws(["s3api", "list-objects-v2", "--bucket", "seam"]) }
        #expect(listing.contains("m/big.bin") && listing.contains("a/b/two=2/é x.txt"))

        // A wrong secret: a clear, non-retryable error naming the bucket.
        let wrong = s3(server, bucket: "seam", secret: "not-the-secret")
        await #expect {
            try await wrong.put("x", bytes: [1], ifNoneMatch: false)
        } throws: { error in
            let e = error as? SluiceError
            return e?.code == .authentication && e?.isRetryable == false && "\(error)".contains("secret access key")
                && "\(error)".contains("s3://seam/x")
        }
        // A bucket that does not exist.
        await #expect {
            try await s3(server, bucket: "no-such-bucket").list(prefix: "")
        } throws: { error in
            (error as? SluiceError)?.code == .configuration && "\(error)".contains("'no-such-bucket' does not exist")
        }
        // A stopped server: retried, then a retryable error that says what is wrong.
        try await offPool { server.kill() }
        let impatient = s3(server, bucket: "seam", attempts: 2)
        await #expect {
            try await impatient.head("m/big.bin")
        } throws: { error in
            let e = error as? SluiceError
            return e?.isRetryable == true && "\(error)".contains("is the S3 server at \(server.endpoint) up?")
        }
        // Back again: the same store works (connections re-established).
        try await offPool { try server.run() }
        #expect(try await store.head("m/big.bin")?.size == 11 << 20)
        await store.shutdown()
        await wrong.shutdown()
        await impatient.shutdown()
    }

    @Test func aLocalDirectoryBehavesTheSame() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("local-store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await exercise(LocalObjectStore(root: root))
    }

    @Test func settingsResolveLikeTheAWSCLIAndNeverShowSecrets() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("aws-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        try """
        [default]
        aws_access_key_id = DEFAULTKEY
        aws_secret_access_key = defaultsecret
        # a comment
        [lake]
        aws_access_key_id=LAKEKEY
        aws_secret_access_key=lakesecret
        aws_session_token = laketoken
        """.write(to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        let env = ["HOME": home.path]
        let aws = try S3Settings.resolve(StorageConfig(region: "eu-central-1"), environment: env)
        #expect(aws.endpoint == "https://s3.eu-central-1.amazonaws.com" && !aws.pathStyle && aws.accessKeyID == "DEFAULTKEY")
        let lake = try S3Settings.resolve(StorageConfig(endpoint: "http://127.0.0.1:9000/", profile: "lake"), environment: env)
        #expect(lake.endpoint == "http://127.0.0.1:9000" && lake.pathStyle && lake.accessKeyID == "LAKEKEY" && lake.region == "us-east-1")
        #expect(!"\(lake)".contains("lakesecret") && !"\(lake)".contains("laketoken"))
        let fromEnv = try S3Settings.resolve(
            StorageConfig(), environment: ["HOME": home.path, "AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_REGION": "ap-south-1"])
        #expect(fromEnv.accessKeyID == "ENVKEY" && fromEnv.region == "ap-south-1")
        #expect(throws: SluiceError.self) { try S3Settings.resolve(StorageConfig(profile: "nope"), environment: env) }
        #expect { try S3Settings.resolve(StorageConfig(), environment: ["HOME": "/nonexistent"]) } throws: { "\($0)".contains("AWS_ACCESS_KEY_ID") }
        #expect { try S3Settings.resolve(StorageConfig(endpoint: "minio:9000"), environment: env) } throws: { "\($0)".contains("storage.endpoint") }
        #expect("\(StorageConfig(secretAccessKey: "s3cr3t", sessionToken: "t0k"))".contains("***"))
        #expect(!"\(StorageConfig(secretAccessKey: "s3cr3t", sessionToken: "t0k"))".contains("s3cr3t"))
    }

    @Test func objectPathsParse() throws {
        #expect(try ObjectLocation(parsing: "s3://lake/events/day=1/") == ObjectLocation(bucket: "lake", key: "events/day=1/"))
        #expect(try ObjectLocation(parsing: "s3://lake") == ObjectLocation(bucket: "lake", key: ""))
        #expect(try ObjectLocation(parsing: "lake/events") == nil)
        #expect(throws: ObjectLocationError.self) { try ObjectLocation(parsing: "s3://My_Bucket/x") }
        #expect(ObjectLocation(bucket: "b", key: "p").appending("x/y").description == "s3://b/p/x/y")
    }
}

/// Runs blocking work (starting a server, the AWS CLI) on a thread of its own and awaits it.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
