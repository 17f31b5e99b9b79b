import Foundation
import SluiceCore
import SluiceTesting
import Testing

/// `sluice lifecycle run` on a lake in object storage (SeaweedFS): a dry run changes nothing and
/// lists what the run then does; tiered objects are rewritten at zstd 19 under their own keys
/// with every row (read back by pyarrow's S3 filesystem) and marked in their footers; expired
/// partitions are deleted; compaction is refused, saying why. The run's clock is moved forward
/// (`SLUICE_TEST_LIFECYCLE_CLOCK_SHIFT_S`): an object store dates its objects itself.
@Suite(.offCooperativePool, .serialized) struct ObjectLakeLifecycleTests {

    static let rows = 30_000

    /// Each object of the lake under `s3://lake/events/`: key → (ETag, footer `sluice.tier`,
    /// footer `sluice.modified`), and every `id`, by pyarrow.
    static func objects(_ server: S3TestServer, in dir: String) throws -> (objects: [String: [String]], ids: [Int]) {
        let out = try python(
            """
            import pyarrow.fs as fs, pyarrow.parquet as pq, pyarrow.dataset as ds
            s3 = fs.S3FileSystem(access_key='\(S3TestServer.accessKey)', secret_key='\(S3TestServer.secretKey)',
                                 endpoint_override='\(server.endpoint)', region='us-east-1', scheme='http')
            infos = [i for i in s3.get_file_info(fs.FileSelector('lake/events', recursive=True, allow_not_found=True)) if i.path.endswith('.parquet')]
            for i in infos:
                m = pq.ParquetFile(s3.open_input_file(i.path)).metadata.metadata or {}
                print('object', i.path, i.mtime.timestamp(), m.get(b'sluice.tier', b'-').decode(), m.get(b'sluice.modified', b'-').decode())
            if infos:
                d = ds.dataset('lake/events', filesystem=s3, format='parquet', partitioning='hive')
                print('ids', ' '.join(str(i) for i in d.to_table(columns=['id']).column('id').to_pylist()))
            """, in: dir)
        var objects: [String: [String]] = [:]
        var ids: [Int] = []
        for line in out.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            if fields.first == "object", fields.count == 5 { objects[fields[1]] = Array(fields[2...]) }
            if fields.first == "ids" { ids = fields.dropFirst().compactMap { Int($0) } }
        }
        return (objects, ids)
    }

    func lifecycle(_ arguments: [String], days: Int, in dir: String) async throws -> SluiceProcess.Result {
        try await SluiceProcess.runWithoutBlocking(
            ["lifecycle", "run", "-c", "p.yaml"] + arguments, in: dir, environment: ["SLUICE_TEST_LIFECYCLE_CLOCK_SHIFT_S": "\(days * 86_400)"])
    }

    @Test func tieringAndRetentionDoWhatTheDryRunSaidAndCompactionIsRefused() async throws {
        let server = try await offPool { try S3TestServer.start() }
        defer { server.stop() }
        try await offPool { try server.makeBucket("lake") }
        let dir = try makeWorkDirectory("s3-lifecycle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = ""
        for i in 0..<Self.rows { text += "{\"id\":\(i),\"ts\":\"2026-10-0\(i % 3 + 1)T12:00:00Z\",\"v\":\"value \(i % 1000)\"}\n" }
        try write(text, to: "\(dir)/in/1.ndjson")
        try write(
            """
            \(ObjectStorageTests.storage(server))
            pipelines:
              events:
                source: { file: { path: "in/*.ndjson" } }
                sink: { parquet: { path: "s3://lake/events", partition_by: "day(ts)", target_file_size: 64KB, lifecycle: { tier_after: 30d, delete_after: 365d } } }
            """, to: "\(dir)/p.yaml")
        let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress", "--log-level", "error"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let start = try await offPool { try Self.objects(server, in: dir) }
        #expect(start.ids.count == Self.rows && Set(start.ids).count == Self.rows)
        #expect(start.objects.count >= 3 && start.objects.values.allSatisfy { $0[1] == "-" }, "\(start.objects)")

        // Today nothing is due.
        let today = try await lifecycle([], days: 0, in: dir)
        #expect(today.status == 0 && today.stdout.contains("nothing to do"), "\(today.stdout) \(today.stderr)")

        // 40 days on: the dry run lists every object for tiering and changes nothing.
        let dry = try await lifecycle(["--dry-run", "--json"], days: 40, in: dir)
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        let tiers = ((plan["actions"] as? [[String: Any]]) ?? []).filter { $0["action"] as? String == "tier" }.compactMap { $0["file"] as? String }
        #expect(Set(tiers.map { String($0.dropFirst("s3://".count)) }) == Set(start.objects.keys), "\(tiers)")
        #expect(try await offPool { try Self.objects(server, in: dir) }.objects == start.objects, "a dry run changes nothing")

        // The run tiers exactly those: every row still there once, each object marked.
        let tiered = try await lifecycle(["--json"], days: 40, in: dir)
        #expect(tiered.status == 0, "\(tiered.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(tiered.stdout.utf8)) as? [String: Any])
        #expect(report["files_tiered"] as? Int == start.objects.count, "\(tiered.stdout)")
        let after = try await offPool { try Self.objects(server, in: dir) }
        #expect(after.ids.count == Self.rows && Set(after.ids) == Set(start.ids), "every row once after tiering")
        #expect(Set(after.objects.keys) == Set(start.objects.keys))
        for (key, value) in after.objects {
            #expect(value[1] == "archive" && value[2] != "-", "\(key): \(value)")
            // The data's date, not the rewrite's: the store's date of the original object.
            let original = Double(start.objects[key]?[0] ?? "") ?? 0
            let kept = Double(value[2]) ?? -1
            #expect(abs(original - kept) < 2, "\(key): footer date \(value[2]), original \(start.objects[key]?[0] ?? "-")")
        }
        let again = try await lifecycle([], days: 40, in: dir)
        #expect(again.stdout.contains("nothing to do"), "tiered objects are not rewritten again: \(again.stdout)")

        // Compaction is refused, saying why, and the rest of the work still happens.
        let compact = try await lifecycle(["--compact"], days: 40, in: dir)
        #expect(compact.status == 1 && compact.stderr.contains("compaction needs a local lake"), "\(compact.stderr)")

        // Unread lakes in object storage, told by the bucket's access logs (SeaweedFS delivers
        // none: the test writes them, in S3's documented format, where the server would).
        let withLogs = try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8)
            .replacingOccurrences(of: "storage: { ", with: "storage: { access_logs: \"s3://lake/logs/\", ")
        try write(withLogs, to: "\(dir)/logs.yaml")
        func unread() async throws -> Bool {
            let r = try await SluiceProcess.runWithoutBlocking(["cost", "-c", "logs.yaml", "--json"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: "\n").contains { $0.contains("\"unread_output\"") && $0.contains("\"events\"") }
        }
        func deliverLog(_ name: String, agent: String) async throws {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "dd/MMM/yyyy:HH:mm:ss '+0000'"
            let key = try #require(after.objects.keys.first).dropFirst("lake/".count)
            let line =
                "owner lake [\(f.string(from: Date()))] 10.0.0.1 reader REQ REST.GET.OBJECT \(key) \"GET /lake/\(key) HTTP/1.1\" 200 - 1024 4096 12 10 \"-\" \"\(agent)\" -\n"
            try write(line, to: "\(dir)/\(name).log")
            _ = try await offPool { try server.aws(["s3", "cp", "\(dir)/\(name).log", "s3://lake/logs/\(name)"]) }
        }
        #expect(try await unread(), "no access log shows a read: unread")
        try await deliverLog("1", agent: "sluice-lifecycle/\(SluiceVersion.current)")  // what lifecycle runs send
        #expect(try await unread(), "lifecycle runs' reads do not count")
        try await deliverLog("2", agent: "duckdb/1.1 (linux)")
        #expect(try await !unread(), "a GET by another client is a read")

        // `compact: true` on such a lake stops at validation, naming the key.
        try write(
            try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8).replacingOccurrences(
                of: "lifecycle: { tier_after", with: "lifecycle: { compact: true, tier_after"),
            to: "\(dir)/compact.yaml")
        let invalid = try await SluiceProcess.runWithoutBlocking(["validate", "compact.yaml"], in: dir)
        #expect(invalid.status != 0 && invalid.stderr.contains("lifecycle.compact"), "\(invalid.stderr)")

        // 400 days on: the dry run lists every partition for deletion; the run deletes them.
        let dryDelete = try await lifecycle(["--dry-run", "--json"], days: 400, in: dir)
        let deletes = try #require(try JSONSerialization.jsonObject(with: Data(dryDelete.stdout.utf8)) as? [String: Any])["actions"] as? [[String: Any]]
        #expect(deletes?.count == 3 && deletes?.allSatisfy { $0["action"] as? String == "delete" } == true, "\(dryDelete.stdout)")
        #expect(try await offPool { try Self.objects(server, in: dir) }.objects == after.objects, "a dry run changes nothing")
        let deleted = try await lifecycle([], days: 400, in: dir)
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(try await offPool { try Self.objects(server, in: dir) }.objects.isEmpty, "every expired object deleted")
    }
}
