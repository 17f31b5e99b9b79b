import Foundation
import SluiceTesting
import Testing

/// `sluice doctor` on real deployments: it passes on a healthy one, and finds each problem
/// injected into it (a lost replication slot, a revoked privilege, an unreachable sink, a
/// nearly full disk, a damaged state file, stale commits and old dead letters), each with its
/// fix, in text and in JSON, with exit status 1.
@Suite(.offCooperativePool, .timeLimit(.minutes(10))) struct DoctorTests {
    /// The findings of `doctor --json` that are not ok, as (check, status, message, fix).
    static func problems(_ result: SluiceProcess.Result) throws -> [(check: String, status: String, message: String, fix: String)] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(object["ok"] as? Bool == (result.status == 0))
        return findings.filter { $0["status"] as? String != "ok" }.map {
            ($0["check"] as? String ?? "", $0["status"] as? String ?? "", $0["message"] as? String ?? "", $0["fix"] as? String ?? "")
        }
    }

    static func doctor(_ arguments: [String], in dir: String) async throws -> SluiceProcess.Result {
        try await SluiceProcess.runWithoutBlocking(["doctor"] + arguments, in: dir)
    }

    /// A pull and a CDC pipeline on PostgreSQL, the sink written by a role of its own: healthy,
    /// then with a privilege revoked, then with the slot dropped under the CDC pipeline.
    @Test func postgresPipelinesPassThenARevokedPrivilegeAndALostSlotAreFound() async throws {
        let url = try postgresURL()
        let dir = try makeWorkDirectory("doctor-pg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try makeSchema("doctor")
        let role = "r_\(s)", slot = "slot_\(s)", publication = "pub_\(s)"
        defer {
            dropCDCObjects(slots: [slot], publication: publication, schemas: [s])
            _ = try? psql("DROP OWNED BY \(role); DROP ROLE IF EXISTS \(role)")
        }
        try await psqlAsync(
            """
            CREATE TABLE \(s).src (id int PRIMARY KEY, v text); INSERT INTO \(s).src SELECT g, 'v' || g FROM generate_series(1, 50) g;
            CREATE ROLE \(role) LOGIN PASSWORD 'pw'; GRANT USAGE, CREATE ON SCHEMA \(s) TO \(role);
            """)
        let roleURL = try #require(URL(string: url)).absoluteString.replacingOccurrences(of: "sluice:sluice@", with: "\(role):pw@")
        try write(
            """
            pipelines:
              pull:
                source: { postgres: { url: "\(url)", table: \(s).src, key: [id] } }
                sink: { postgres: { url: "\(roleURL)", table: \(s).dst, mode: upsert, key: [id] } }
              changes:
                source: { postgres_cdc: { url: "\(url)", slot: \(slot), publication: \(publication), tables: [\(s).src] } }
                sink: { ndjson: { path: out, max_file_age: 100ms } }
            """, to: "\(dir)/p.yaml")
        let pull = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--pipeline", "pull"], in: dir)
        try #require(pull.status == 0, "\(pull.stderr)")
        let cdc = try SluiceProcess.start(["run", "p.yaml", "--pipeline", "changes"], in: dir, log: "\(dir)/cdc.log")
        defer { if cdc.isRunning { kill(cdc.processIdentifier, SIGKILL) } }
        #expect(try await waitUntil(seconds: 120) { (try? outputLines("\(dir)/out").count) == 50 })
        kill(cdc.processIdentifier, SIGTERM)
        await waitForExit(cdc)

        let healthy = try await Self.doctor(["-c", "p.yaml", "--json", "--min-free", "1MB"], in: dir)
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(try Self.problems(healthy).isEmpty)
        let text = try await Self.doctor(["-c", "p.yaml", "--min-free", "1MB"], in: dir)
        #expect(text.status == 0 && text.stdout.contains("cdc.slot") && text.stdout.contains("healthy"), "\(text.stdout)")
        #expect(!text.stdout.contains(":pw@"), "passwords are never printed")

        try await psqlAsync("REVOKE UPDATE ON \(s).dst FROM \(role)")
        let revoked = try await Self.doctor(["-c", "p.yaml", "--json", "--min-free", "1MB"], in: dir)
        #expect(revoked.status == 1)
        let grant = try Self.problems(revoked)
        #expect(grant.count == 1 && grant[0].check == "sink.privileges" && grant[0].message.contains("lacks UPDATE"), "\(grant)")
        #expect(grant.first?.fix == "GRANT UPDATE ON \"\(s)\".\"dst\" TO \"\(role)\";", "\(grant)")
        try await psqlAsync("GRANT UPDATE ON \(s).dst TO \(role); SELECT pg_drop_replication_slot('\(slot)')")

        let lost = try await Self.doctor(["-c", "p.yaml", "--min-free", "1MB"], in: dir)
        #expect(lost.status == 1)
        #expect(lost.stdout.contains("ERROR  cdc.slot") && lost.stdout.contains("changes since are lost"), "\(lost.stdout)")
        #expect(lost.stdout.contains("fix: sluice cdc resnapshot"), "\(lost.stdout)")
    }

    /// A sink whose server is not there, and a lake on a nearly full disk: each an error with
    /// its fix, while the rest of the file checks out.
    @Test func anUnreachableSinkAndANearlyFullDiskAreFound() async throws {
        let dir = try makeWorkDirectory("doctor-disk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let volume = "\(dir)/volume"
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let mounted = try await runTool(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", volume], in: dir)
        try #require(mounted.status == 0, "mounting a tmpfs needs root (CI has it): \(mounted.output)")
        defer { _ = try? SluiceProcess.collect(DiskFullTests.unmount(volume)) }
        try write("{\"id\":1}\n", to: "\(dir)/in/a.ndjson")
        let closedPort = try freePort()
        try write(
            """
            pipelines:
              lake:
                source: { file: { path: in, format: ndjson } }
                sink: { parquet: { path: volume/lake } }
              warehouse:
                source: { file: { path: in, format: ndjson } }
                sink: { postgres: { url: "postgres://u:secret@127.0.0.1:\(closedPort)/db", table: t } }
            """, to: "\(dir)/p.yaml")
        // Room enough now (8 MB against --min-free 4MB), for the unreachable sink alone.
        let first = try Self.problems(try await Self.doctor(["-c", "p.yaml", "--json", "--min-free", "4MB"], in: dir))
        #expect(first.map(\.check) == ["sink.reachable"], "\(first)")
        #expect(first.first.map { $0.message.contains("127.0.0.1:\(closedPort)") && !$0.message.contains("secret") } == true, "\(first)")
        DiskFullTests.fill("\(volume)/filler")
        let full = try await Self.doctor(["-c", "p.yaml", "--min-free", "4MB"], in: dir)
        #expect(full.status == 1)
        #expect(full.stdout.contains("ERROR  sink.disk_space") && full.stdout.contains("(below 4"), "\(full.stdout)")
        #expect(full.stdout.contains("ERROR  sink.reachable"), "\(full.stdout)")
    }

    /// Stale commits and old dead letters are warnings (exit 0, or 1 with --strict); a damaged
    /// state file is an error.
    @Test func staleCommitsOldDeadLettersAndADamagedStateFileAreFound() async throws {
        let dir = try makeWorkDirectory("doctor-state")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("{\"id\":1}\n{\"id\":\"two\"}\n", to: "\(dir)/in/a.ndjson")
        try write(
            """
            pipelines:
              events:
                source: { file: { path: in, format: ndjson, columns: { id: int64 } } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml"], in: dir)
        try #require(run.status == 0, "\(run.stderr)")
        let fresh = try await Self.doctor(["-c", "p.yaml", "--min-free", "1MB"], in: dir)
        #expect(fresh.status == 0, "\(fresh.stdout)")
        #expect(fresh.stdout.contains("1 dead letter(s)"), "\(fresh.stdout)")
        try await Task.sleep(for: .seconds(2))
        let old = try await Self.doctor(["-c", "p.yaml", "--json", "--min-free", "1MB", "--stale-after", "1s", "--dead-letter-age", "1s"], in: dir)
        #expect(old.status == 0, "warnings alone pass: \(old.stdout)")
        let warnings = try Self.problems(old)
        #expect(warnings.map(\.check).sorted() == ["pipeline.dead_letters", "pipeline.last_commit"], "\(warnings)")
        #expect(warnings.allSatisfy { $0.status == "warning" && !$0.fix.isEmpty }, "\(warnings)")
        #expect(warnings.contains { $0.fix.contains("sluice dlq replay --pipeline events") }, "\(warnings)")
        let strict = try await Self.doctor(["-c", "p.yaml", "--min-free", "1MB", "--stale-after", "1s", "--strict"], in: dir)
        #expect(strict.status == 1, "\(strict.stdout)")

        // Damage a page in the middle of the state file.
        let state = "\(dir)/.sluice/state.db"
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: state))
        try handle.seek(toOffset: 4096 * 3)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 4096 * 2))
        try handle.close()
        let damaged = try await Self.doctor(["-c", "p.yaml", "--json", "--min-free", "1MB"], in: dir)
        #expect(damaged.status == 1)
        let broken = try Self.problems(damaged)
        #expect(broken.contains { $0.check == "state.integrity" && $0.status == "error" }, "\(broken)")
    }
}
