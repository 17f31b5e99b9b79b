import Foundation
import Testing
import SluiceTesting

/// The CLI around PostgreSQL: passwords never shown, clear errors before any data moves.
@Suite(.offCooperativePool) struct PostgresCLITests {
    @Test func passwordsNeverAppearInLogsErrorsOrOutput() throws {
        let url = try postgresURL()
        let secret = "pw-Secret-\(UUID().uuidString.prefix(6))"
        let role = "r_\(UUID().uuidString.prefix(6).lowercased())"
        try psql("CREATE ROLE \(role) LOGIN PASSWORD '\(secret)'; GRANT CREATE ON DATABASE postgres TO \(role); GRANT CREATE ON SCHEMA public TO \(role)")
        defer { _ = try? psql("DROP OWNED BY \(role); DROP ROLE \(role)") }
        let roleURL = url.replacingOccurrences(of: "sluice:sluice@", with: "\(role):\(secret)@")
        let dir = try makeWorkDirectory("pg-secret")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              missing:
                source:
                  postgres: { url: "\(roleURL)", table: public.no_such_table }
                sink:
                  postgres: { url: "\(roleURL)", table: public.nowhere }
            """, to: "\(dir)/p.yaml")
        let run = try SluiceProcess.run(["run", "p.yaml", "--no-progress", "--log-level", "trace"], in: dir)
        #expect(run.status == 1)
        #expect(run.stderr.contains("no_such_table") && run.stderr.contains("does not exist"), "\(run.stderr)")
        let validate = try SluiceProcess.run(["validate", "--connect", "p.yaml"], in: dir)
        #expect(validate.status != 0 && validate.stdout.contains("no_such_table"), "\(validate.stdout)")
        for output in [run.stdout, run.stderr, validate.stdout, validate.stderr] {
            #expect(!output.contains(secret), "the password leaked: \(output)")
        }
        // Bad credentials: one clear, non-retried error naming the cause.
        try write(
            try String(contentsOfFile: "\(dir)/p.yaml", encoding: .utf8).replacingOccurrences(of: secret, with: "wrong-\(secret)"),
            to: "\(dir)/p.yaml")
        let denied = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("refused the credentials") && !denied.stderr.contains(secret), "\(denied.stderr)")
        #expect(!denied.stderr.contains("retrying"), "bad credentials are not retried")
    }

    @Test func badConfigurationStopsBeforeAnyDataMoves() throws {
        let dir = try makeWorkDirectory("pg-badconfig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              p:
                source:
                  postgres: { url: "mysql://x", table: t, mode: incremental }
                sink:
                  postgres: { url: "postgres://h/db", table: "a;b", mode: upsert }
            """, to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["validate", "p.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("p.yaml:4") && r.stderr.contains("postgres://"), "\(r.stderr)")
    }
}
