import Foundation
import SluiceTesting
import Testing

/// `sluice dlq replay` into a Parquet lake on a real S3 server (SeaweedFS), killed at random
/// moments, with the pipeline's own runs in between: their start-up recovery aborts uploads no
/// intent of theirs names, and must never touch a replay's. pyarrow reads the lake back.
@Suite(.offCooperativePool, .serialized, .timeLimit(.minutes(10))) struct ObjectStorageReplayTests {
    static func config(_ server: S3TestServer, amount: String) -> String {
        """
        \(ObjectStorageTests.storage(server))
        pipelines:
          p:
            source: { file: { path: "in/*.ndjson", format: ndjson, columns: { id: int64, amount: "\(amount)" } } }
            sink: { parquet: { path: "s3://lake/events", compression: zstd } }
        """
    }

    @Test func aReplayIntoAnS3LakeKilledBetweenPipelineRunsLandsEveryRowOnce() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-dlq-replay")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rows = 40_000
        // Every amount has three decimals; the column first takes two.
        try write(Self.config(server, amount: "decimal(10,2)"), to: "\(dir)/p.yaml")
        try write((1...rows).map { "{\"id\":\($0),\"amount\":\"\($0).125\"}" }.joined(separator: "\n") + "\n", to: "\(dir)/in/0.ndjson")
        let first = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try await DLQReplayTests.letters(dir).count == rows)

        try write(Self.config(server, amount: "decimal(12,3)"), to: "\(dir)/p.yaml")
        var generator = SystemRandomNumberGenerator()
        var kills = 0, runs = 0
        for _ in 0..<30 where kills < 10 {
            // Each commit pauses between its phases, so kills also land after the state commit,
            // before CompleteMultipartUpload.
            let replay = try SluiceProcess.start(
                ["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--batch", "500", "--no-progress", "--log-level", "error"], in: dir,
                log: "\(dir)/replay.log", environment: ["SLUICE_TEST_COMMIT_DELAY_MS": "100"])
            let timer = KillTimer(replay.processIdentifier, afterMilliseconds: Int.random(in: 300...2_500, using: &generator))
            await waitForExit(replay)
            timer.cancel()
            guard replay.terminationReason == .uncaughtSignal else {
                break
            }
            kills += 1
            // The pipeline runs over one new row: its writer's recovery lists the bucket's open
            // uploads while the killed replay's last commit may wait to be completed.
            runs += 1
            try write("{\"id\":\(rows + runs),\"amount\":\"0.5\"}\n", to: "\(dir)/in/\(runs).ndjson")
            let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "warning"], in: dir)
            #expect(run.status == 0, "\(run.stderr)")
        }
        #expect(kills >= 10, "only \(kills) kills landed")
        let last = try await SluiceProcess.runWithoutBlocking(["dlq", "replay", "-c", "p.yaml", "--pipeline", "p", "--no-progress"], in: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(try await DLQReplayTests.letters(dir).isEmpty, "every dead letter replayed")

        let (ids, _) = try await offPool { try ObjectStorageTests.readLake(server, bucket: "lake", prefix: "events", in: dir) }
        #expect(ids.count == rows + runs, "\(ids.count) rows, expected \(rows + runs)")
        #expect(Set(ids) == Set(1...(rows + runs)), "missing \(Set(1...(rows + runs)).subtracting(ids).count) rows")
        let uploads = try await offPool { try server.aws(["s3api", "list-multipart-uploads", "--bucket", "lake"]) }
        #expect(!uploads.contains("UploadId"), "incomplete uploads remain: \(uploads)")
        let listing = try await offPool { try server.aws(["s3", "ls", "s3://lake/events/"]) }
        #expect(listing.contains("part_replay-") && listing.contains("part-"), "a replay's objects are named apart: \(listing)")
        let log = ((try? String(contentsOfFile: "\(dir)/replay.log", encoding: .utf8)) ?? "") + last.stderr
        #expect(!log.contains("missing"), "a committed object went missing: \(log.suffix(2_000))")
    }

    /// A replay killed after its state commit, before its objects were completed, and never run
    /// again (its dead letters are gone): the pipeline's next run completes them.
    @Test func thePipelineCompletesWhatAKilledReplayCommitted() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-dlq-replay-held")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await DLQReplayTests.replayKilledAfterItsCommit(
            in: dir, config: { Self.config(server, amount: $0) },
            readIDs: { try await offPool { try ObjectStorageTests.readLake(server, bucket: "lake", prefix: "events", in: dir).ids } })
        let uploads = try await offPool { try server.aws(["s3api", "list-multipart-uploads", "--bucket", "lake"]) }
        #expect(!uploads.contains("UploadId"), "incomplete uploads remain: \(uploads)")
    }
}
