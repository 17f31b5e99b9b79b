import Foundation
import Testing
import SluiceTesting

/// `sluice dlq stats | export | drop` and retention, on a real run's dead letters; exports are
/// read back by pyarrow and Python's base64, byte for byte.
@Suite(.offCooperativePool) struct DLQAdminTests {
    /// Lines that cannot be decoded, one with bytes that are not UTF-8.
    static let badLines: [[UInt8]] = [Array("{not json".utf8), Array("{\"a\":".utf8) + [0xFF, 0xFE, 0x00], Array("[1,2".utf8)]

    @Test func statsExportAndDropRoundTripEveryByte() async throws {
        let dir = try makeWorkDirectory("dlq-admin")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              p:
                source: { file: { path: "in/*.ndjson", format: ndjson } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        var input: [UInt8] = Array("{\"id\":1}\n".utf8)
        for line in Self.badLines { input += line + [10] }
        input += Array("{\"id\":2}\n".utf8)
        FileManager.default.createFile(atPath: "\(dir)/in/1.ndjson", contents: Data(input))
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")

        let stats = try await SluiceProcess.runWithoutBlocking(["dlq", "stats", "-c", "p.yaml", "--json"], in: dir)
        #expect(stats.status == 0 && stats.stdout.contains("\"count\":3") && stats.stdout.contains("\"stage\":\"decode\""), "\(stats.stdout)\(stats.stderr)")
        let table = try await SluiceProcess.runWithoutBlocking(["dlq", "stats", "-c", "p.yaml"], in: dir)
        #expect(table.stdout.hasPrefix("PIPELINE") && table.stdout.contains("total: 3 in 1 pipeline(s)"), "\(table.stdout)")

        for format in ["ndjson", "parquet"] {
            let export = try await SluiceProcess.runWithoutBlocking(
                ["dlq", "export", "-c", "p.yaml", "--pipeline", "p", "--format", format, "-o", "dead.\(format)"], in: dir)
            #expect(export.status == 0 && export.stderr.contains("exported 3 dead letter(s)"), "\(export.stderr)")
        }
        // Dropping needs --yes (without it nothing goes) and a filter (or --all).
        let dry = try await SluiceProcess.runWithoutBlocking(["dlq", "drop", "-c", "p.yaml", "--pipeline", "p"], in: dir)
        #expect(dry.status != 0 && dry.stderr.contains("3 dead letter(s) match; nothing dropped"), "\(dry.stderr)")
        let bare = try await SluiceProcess.runWithoutBlocking(["dlq", "drop", "-c", "p.yaml", "--yes"], in: dir)
        #expect(bare.status != 0 && bare.stderr.contains("--all"), "\(bare.stderr)")
        let none = try await SluiceProcess.runWithoutBlocking(["dlq", "drop", "-c", "p.yaml", "--reason", "constraint", "--yes"], in: dir)
        #expect(none.stdout.contains("dropped 0"), "\(none.stdout)")
        let drop = try await SluiceProcess.runWithoutBlocking(["dlq", "drop", "-c", "p.yaml", "--pipeline", "p", "--since", "1h", "--yes"], in: dir)
        #expect(drop.status == 0 && drop.stdout.contains("dropped 3"), "\(drop.stdout)\(drop.stderr)")
        let list = try await SluiceProcess.runWithoutBlocking(["dlq", "list", "-c", "p.yaml"], in: dir)
        #expect(list.stdout.contains("no dead letters"), "\(list.stdout)")

        // The exports still hold every byte: pyarrow reads the Parquet file, base64 the NDJSON.
        let expected = Self.badLines.map { Data($0).base64EncodedString() }
        let check = try await runTool(
            [
                "python3", "-c",
                """
                import base64, json, pyarrow.parquet as pq
                t = pq.read_table('dead.parquet')
                assert t.num_rows == 3, t.num_rows
                assert str(t.schema.field('raw').type) == 'binary', t.schema
                assert str(t.schema.field('first_seen').type).startswith('timestamp'), t.schema
                print(json.dumps([base64.b64encode(r).decode() for r in t.column('raw').to_pylist()]))
                lines = [json.loads(l) for l in open('dead.ndjson')]
                print(json.dumps([l['raw_base64'] for l in lines]))
                print(json.dumps([l['raw'] for l in lines]))
                print(json.dumps(sorted(set(l['kind'] for l in lines)) + sorted(set(l['stage'] for l in lines))))
                """,
            ], in: dir)
        #expect(check.0 == 0, "\(check.1)")
        let out = check.1.split(separator: "\n").map(String.init)
        let json = { (s: String) in try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [Any] }
        #expect(out.count == 4, "\(check.1)")
        if out.count == 4 {
            #expect(json(out[0]) as? [String] == expected, "parquet: \(out[0])")
            #expect(json(out[1]) as? [String] == expected, "ndjson: \(out[1])")
            // Text where the bytes are UTF-8, null where they are not.
            let texts = json(out[2]) ?? []
            #expect(texts.count == 3 && texts[0] as? String == "{not json" && texts[1] is NSNull, "\(out[2])")
        }
    }

    @Test func retentionKeepsTheNewestAndExpiresTheOld() async throws {
        let dir = try makeWorkDirectory("dlq-retention")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func config(_ retention: String) throws {
            try write(
                """
                pipelines:
                  p:
                    source: { file: { path: "in/*.ndjson", format: ndjson } }
                    sink: { ndjson: { path: out } }
                    dead_letter: \(retention)
                """, to: "\(dir)/p.yaml")
        }
        try config("{ max_rows: 2 }")
        try write((1...5).map { "{bad \($0)" }.joined(separator: "\n") + "\n{\"id\":1}\n", to: "\(dir)/in/1.ndjson")
        func run() async throws -> String {
            let r = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stderr
        }
        func ids() async throws -> [String] {
            let list = try await SluiceProcess.runWithoutBlocking(["dlq", "list", "-c", "p.yaml", "--json"], in: dir)
            return list.stdout.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["location"] as? String
            }
        }
        _ = try await run()
        #expect(try await ids().count == 5, "the sweep runs at the start: this run's dead letters are all there")
        let second = try await run()
        #expect(second.contains("dead letters removed by retention"), "\(second)")
        let kept = try await ids()
        #expect(kept.count == 2 && kept.allSatisfy { $0.hasSuffix(":4") || $0.hasSuffix(":5") }, "the newest two: \(kept)")
        try config("{ ttl: 1s }")
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await run()
        #expect(try await ids().isEmpty)
    }
}
