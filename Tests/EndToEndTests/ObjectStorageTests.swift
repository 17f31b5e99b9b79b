import Foundation
import SluiceTesting
import Testing

/// The lake on a real S3 server (SeaweedFS): exactly once under `kill -9`, read back by pyarrow's
/// S3 filesystem and listed by the AWS CLI, both independent of Sluice.
@Suite(.offCooperativePool, .serialized) struct ObjectStorageTests {
    /// `storage:` for a test server, credentials written in (the tests' own throwaway keys).
    static func storage(_ server: S3TestServer) -> String {
        #"storage: { endpoint: "\#(server.endpoint)", access_key_id: \#(S3TestServer.accessKey), secret_access_key: \#(S3TestServer.secretKey) }"#
    }

    /// Every `id` pyarrow reads from the Parquet dataset under `s3://bucket/prefix`, and the
    /// number of files.
    static func readLake(_ server: S3TestServer, bucket: String, prefix: String, in dir: String) throws -> (ids: [Int], files: Int) {
        let out = try python(
            """
            import pyarrow.fs as fs, pyarrow.dataset as ds
            s3 = fs.S3FileSystem(access_key='\(S3TestServer.accessKey)', secret_key='\(S3TestServer.secretKey)',
                                 endpoint_override='\(server.endpoint)', region='us-east-1', scheme='http')
            d = ds.dataset('\(bucket)/\(prefix)', filesystem=s3, format='parquet', partitioning='hive')
            print(len(d.files))
            print(' '.join(str(i) for i in d.to_table(columns=['id']).column('id').to_pylist()))
            """, in: dir)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.dropFirst().joined().split(separator: " ").compactMap { Int($0) }, Int(lines[0]) ?? 0)
    }

    static func expectExactlyOnce(_ ids: [Int], rows: Int) {
        #expect(ids.count == rows, "\(ids.count) rows, expected \(rows)")
        #expect(Set(ids).count == ids.count, "\(ids.count - Set(ids).count) duplicates")
        #expect(Set(ids) == Set(0..<rows), "missing \(Set(0..<rows).subtracting(ids).count) rows")
    }

    @Test func aPartitionedLakeOnS3KilledTwentyTimesHoldsEveryRowOnce() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-lake")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 1_000_000
        try await offPool { try CrashRecoveryTests.generateCSV("\(dir)/events.csv", rows: rows) }
        try write(
            """
            \(Self.storage(server))
            pipelines:
              lake:
                source: { file: { path: events.csv, batch_rows: 8192 } }
                batch: { max_rows: 8192 }
                sink: { parquet: { path: "s3://lake/events", partition_by: "day(created_at)", target_file_size: 2MB, max_open_files: 4 } }
            """, to: "\(dir)/p.yaml")
        // Every other run pauses between the commit phases: kills land between the upload and
        // the state commit, and between the commit and CompleteMultipartUpload.
        let kills = try await killRepeatedly(in: dir, kills: 20, delays: 100...1500, maxRuns: 60) { false }
        #expect(kills >= 20, "only \(kills) kills landed; make the input larger")
        let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        let (ids, files) = try await offPool { try Self.readLake(server, bucket: "lake", prefix: "events", in: dir) }
        Self.expectExactlyOnce(ids, rows: rows)
        #expect(files > 28, "one file per partition per commit at least; found \(files)")
        // DuckDB reads the same objects (downloaded by the AWS CLI: its S3 extension is not
        // available offline), with the partition column from the Hive layout.
        try await offPool { try server.aws(["s3", "cp", "--recursive", "--quiet", "s3://lake/events", "\(dir)/downloaded"]) }
        let duck = try await offPool {
            try python(
                """
                import duckdb
                print(duckdb.sql("select count(*), count(distinct id), count(distinct created_at_day) from read_parquet('downloaded/**/*.parquet', hive_partitioning=1)").fetchall()[0])
                """, in: dir)
        }
        #expect(duck == "(\(rows), \(rows), 28)", "\(duck)")
        // No upload left behind (the AWS CLI asks the server), and nothing but Parquet files.
        let uploads = try await offPool { try server.aws(["s3api", "list-multipart-uploads", "--bucket", "lake"]) }
        #expect(!uploads.contains("UploadId"), "incomplete uploads remain: \(uploads)")
        let listing = try await offPool { try server.aws(["s3", "ls", "--recursive", "s3://lake/"]) }
        let keys = listing.split(separator: "\n").compactMap { $0.split(separator: " ").last }
        #expect(keys.allSatisfy { $0.hasSuffix(".parquet") && $0.contains("/created_at_day=") }, "\(keys.filter { !$0.hasSuffix(".parquet") })")
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(!log.contains("missing"), "a committed object went missing")
    }

    @Test func theSourceResumesMidObjectAndReportsReplacedObjects() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("raw") }
        let dir = try makeWorkDirectory("s3-source")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 1_000_000
        try await offPool { try CrashRecoveryTests.generateCSV("\(dir)/events.csv", rows: rows) }
        try await offPool { try server.aws(["s3", "cp", "\(dir)/events.csv", "s3://raw/in/events.csv"]) }
        try write(
            """
            \(Self.storage(server))
            pipelines:
              pull:
                source: { file: { path: "s3://raw/in/*.csv" } }
                sink: { ndjson: { path: out, max_file_size: 2MB } }
            """, to: "\(dir)/p.yaml")
        func visibleFiles() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/out")) ?? []).filter { !$0.hasPrefix(".") }.count }
        // Each run is killed at a random moment after it committed something (a loaded machine
        // must not turn this into kills before the first commit, which would resume nothing).
        // Logged at info: a resumed run says it fetched the rest of the object from its checkpoint.
        var kills = 0
        for _ in 0..<5 {
            let before = visibleFiles()
            let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir, log: "\(dir)/sluice.log")
            _ = try await waitUntil(seconds: 120, interval: .milliseconds(5)) { visibleFiles() > before || !p.isRunning }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
            kill(p.processIdentifier, SIGKILL)
            await waitForExit(p)
            if p.terminationReason == .uncaughtSignal { kills += 1 } else { break }
        }
        #expect(kills >= 3, "only \(kills) kills landed before the run finished")
        let final = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "info"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        Self.expectExactlyOnce(CrashRecoveryTests.ids(try await offPool { try outputLines("\(dir)/out") }), rows: rows)
        let log = (try? String(contentsOfFile: "\(dir)/sluice.log", encoding: .utf8)) ?? ""
        #expect(log.contains("fetching the rest of an object from its resume point"), "\(log.suffix(2000))")

        // A second object, partly ingested (the run is killed once its first file is committed),
        // then replaced: the rest of the new version is not mixed with the old part.
        try await offPool { try CrashRecoveryTests.generateCSV("\(dir)/more.csv", rows: 1_000_000) }
        try await offPool { try server.aws(["s3", "cp", "\(dir)/more.csv", "s3://raw/in/more.csv"]) }
        let before = visibleFiles()
        let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/partial.log")
        let committed = try await waitUntil(seconds: 60, interval: .milliseconds(5)) { visibleFiles() > before }
        kill(p.processIdentifier, SIGKILL)
        await waitForExit(p)
        #expect(committed)
        try "id,user,amount,url,created_at\n1,replaced,1,u,2026-11-01T00:00:00Z\n".write(toFile: "\(dir)/more.csv", atomically: true, encoding: .utf8)
        try await offPool { try server.aws(["s3", "cp", "\(dir)/more.csv", "s3://raw/in/more.csv"]) }
        let again = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        let letters = try await SluiceProcess.runWithoutBlocking(["dlq", "list", "-c", "p.yaml"], in: dir)
        #expect(letters.stdout.contains("replaced while being read"), "\(letters.stdout)\(letters.stderr)")
        #expect(!(try await offPool { try outputLines("\(dir)/out") }).contains { $0.contains("replaced") })
    }

    @Test func aStoppedS3ServerPausesThePipelineWhichResumesWithoutLoss() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-outage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 300_000
        try await offPool { try CrashRecoveryTests.generateCSV("\(dir)/events.csv", rows: rows) }
        try write(
            """
            \(Self.storage(server))
            pipelines:
              lake:
                source: { file: { path: events.csv, batch_rows: 4096 } }
                batch: { max_rows: 4096 }
                retry: { max_attempts: 3, base_delay: 100ms, max_delay: 1s }
                sink: { parquet: { path: "s3://lake/events", target_file_size: 1MB } }
            """, to: "\(dir)/p.yaml")
        let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/run.log")
        // Stop the server once the first objects are there, for long enough that the sink's own
        // retries run out and the pipeline pauses; then start it again.
        let started = try await waitUntil(seconds: 60, interval: .milliseconds(20)) {
            ((try? server.aws(["s3api", "list-objects-v2", "--bucket", "lake"])) ?? "").contains("parquet")
        }
        #expect(started)
        try await offPool { server.kill() }
        let paused = try await waitUntil(seconds: 60) {
            ((try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? "").contains("is the S3 server at")
        }
        #expect(paused, "the pipeline did not report the outage")
        #expect(p.isRunning, "the pipeline stopped instead of pausing")
        try await offPool { try server.run() }
        await waitForExit(p)
        let log = (try? String(contentsOfFile: "\(dir)/run.log", encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(log.suffix(3000))")
        Self.expectExactlyOnce(try await offPool { try Self.readLake(server, bucket: "lake", prefix: "events", in: dir) }.ids, rows: rows)

        // `validate --connect` lists and writes there; a wrong secret is named with the bucket.
        let ok = try await SluiceProcess.runWithoutBlocking(["validate", "--connect", "p.yaml"], in: dir)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        try write(
            (try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8)).replacingOccurrences(of: S3TestServer.secretKey, with: "wrong"),
            to: "\(dir)/bad.yaml")
        let bad = try await SluiceProcess.runWithoutBlocking(["validate", "--connect", "bad.yaml"], in: dir)
        #expect(bad.status != 0)
        #expect(bad.stdout.contains("bucket 'lake'") && bad.stdout.contains("secret access key"), "\(bad.stdout)\(bad.stderr)")
        // `inspect` reads an object's footer.
        let listed = try await offPool { try server.aws(["s3", "ls", "--recursive", "s3://lake/events/"]) }
        let key = try #require(listed.split(separator: "\n").first?.split(separator: " ").last)
        let inspect = try await SluiceProcess.runWithoutBlocking(
            ["inspect", "s3://lake/\(key)", "--endpoint", server.endpoint], in: dir, environment: server.environment)
        #expect(inspect.status == 0 && inspect.stdout.contains("rows:") && inspect.stdout.contains("id: int64"), "\(inspect.stdout)\(inspect.stderr)")
    }

    @Test func readyzChecksTheBucketAndPushedRecordsLandOnS3() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-serve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            \(Self.storage(server))
            pipelines:
              clicks:
                source: { http: { stream: clicks } }
                sink: { parquet: { path: "s3://lake/clicks", max_file_age: 1s } }
            """, to: "\(dir)/p.yaml")
        let port = try freePort()
        let served = try await ServedProcess.start(in: dir, port: port)
        #expect(try curl(["http://127.0.0.1:\(port)/readyz"]).status == 200)
        let body = (0..<100).map { "{\"id\":\($0)}" }.joined(separator: "\n")
        let pushed = try curl([
            "-X", "POST", "--data-binary", body, "-H", "Content-Type: application/x-ndjson", "http://127.0.0.1:\(port)/v1/streams/clicks/records",
        ])
        #expect(pushed.status == 202, "\(pushed.body)")
        try await offPool { server.kill() }
        let down = try curl(["http://127.0.0.1:\(port)/readyz"])
        #expect(down.status == 503 && down.body.contains("sink of pipeline 'clicks' is not reachable"), "\(down.body)")
        try await offPool { try server.run() }
        let up = try await waitUntil(seconds: 30) { (try? curl(["http://127.0.0.1:\(port)/readyz"]))?.status == 200 }
        #expect(up)
        #expect(served.stop() == 0)
        Self.expectExactlyOnce(try await offPool { try Self.readLake(server, bucket: "lake", prefix: "clicks", in: dir) }.ids, rows: 100)
    }

    @Test func aWatchedPrefixPicksUpNewObjectsOnce() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("raw") }
        let dir = try makeWorkDirectory("s3-watch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            \(Self.storage(server))
            pipelines:
              watch:
                source: { file: { path: "s3://raw/drop/", watch: true, poll_interval: 200ms, min_age: 0s } }
                sink: { ndjson: { path: out, max_file_age: 200ms } }
            """, to: "\(dir)/p.yaml")
        let p = try SluiceProcess.start(["run", "p.yaml", "--no-progress"], in: dir, log: "\(dir)/watch.log")
        for batch in 0..<3 {
            let csv = "id,user,amount,url,created_at\n" + (0..<1000).map { "\(batch * 1000 + $0),u,1,x,2026-11-01T00:00:00Z" }.joined(separator: "\n") + "\n"
            try csv.write(toFile: "\(dir)/batch.csv", atomically: true, encoding: .utf8)
            try await offPool { try server.aws(["s3", "cp", "\(dir)/batch.csv", "s3://raw/drop/batch-\(batch).csv"]) }
            let arrived = try await waitUntil(seconds: 60) { (try? outputLines("\(dir)/out").count) == (batch + 1) * 1000 }
            #expect(arrived, "batch \(batch) did not arrive")
        }
        p.terminate()
        await waitForExit(p)
        #expect(p.terminationStatus == 0)
        Self.expectExactlyOnce(CrashRecoveryTests.ids(try await offPool { try outputLines("\(dir)/out") }), rows: 3000)
    }
}
