import Foundation
import SluiceTesting
import Testing

/// The CLI as a user meets it: exit codes, located config errors, DLQ and state commands.
@Suite(.offCooperativePool) struct CLITests {
    @Test func misspelledKeyExitsTwoNamingFileLineAndKey() throws {
        let dir = try makeWorkDirectory("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              events:
                source:
                  file: { path: data.csv, fromat: csv }
                sink:
                  ndjson: { path: out }
            """, to: "\(dir)/bad.yaml")
        let r = try SluiceProcess.run(["validate", "bad.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("bad.yaml:4:"), "\(r.stderr)")
        #expect(r.stderr.contains("pipelines.events.source.file.fromat"))
        #expect(r.stderr.contains("did you mean 'format'"))
        // `run` refuses the same file before moving any data.
        let run = try SluiceProcess.run(["run", "bad.yaml"], in: dir)
        #expect(run.status == 2)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out"))
    }

    @Test func wrongTypeExitsTwo() throws {
        let dir = try makeWorkDirectory("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              events:
                source:
                  file: { path: data.csv, header: maybe }
                sink:
                  ndjson: { path: out }
            """, to: "\(dir)/bad.yaml")
        let r = try SluiceProcess.run(["validate", "bad.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("bad.yaml:4:"), "\(r.stderr)")
        #expect(r.stderr.contains("pipelines.events.source.file.header"))
        #expect(r.stderr.contains("expected true or false"))
    }

    @Test func aServeOnlyFileServesTheRegistryAndRunRefusesIt() async throws {
        let dir = try makeWorkDirectory("serve-only")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("state: state.db\nserve:\n  port: 8080\n", to: "\(dir)/r.yaml")
        let run = try SluiceProcess.run(["run", "r.yaml"], in: dir)
        #expect(run.status == 2)
        #expect(run.stderr.contains("r.yaml") && run.stderr.contains("missing required key 'pipelines'"), "\(run.stderr)")
        #expect(run.stderr.contains("sluice serve"), "the error says what such a file is for: \(run.stderr)")
        try write("pipelines: {}\n", to: "\(dir)/empty.yaml")
        #expect(try SluiceProcess.run(["run", "empty.yaml"], in: dir).stderr.contains("no pipelines are defined"))

        let port = try freePort()
        let server = try await ServedProcess.start("r.yaml", in: dir, port: port)
        let registered = try curl([
            "-X", "POST", "http://127.0.0.1:\(port)/subjects/s/versions", "-H", "Content-Type: application/json",
            "--data-binary", #"{"schema": "{\"type\": \"string\"}"}"#,
        ])
        #expect(registered.status == 200 && registered.json["id"] as? Int != nil, "\(registered.body)")
        #expect(try curl(["http://127.0.0.1:\(port)/subjects"]).body == #"["s"]"#)
        #expect(server.stop() == 0)
    }

    @Test func apiKeysHaveExplicitDocumentedScopes() throws {
        let dir = try makeWorkDirectory("keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("state: state.db\nserve:\n  registry_auth: api_key\n", to: "\(dir)/r.yaml")
        let help = try SluiceProcess.run(["keys", "--help"], in: dir)
        #expect(help.stdout.contains("--registry write") && help.stdout.contains("--stream NAME") && help.stdout.contains("--all-streams"), "\(help.stdout)")
        let createHelp = try SluiceProcess.run(["keys", "create", "--help"], in: dir)
        #expect(createHelp.stdout.contains("--registry") && createHelp.stdout.contains("schema registry"), "\(createHelp.stdout)")

        let unscoped = try SluiceProcess.run(["keys", "create", "--name", "anything", "-c", "r.yaml"], in: dir)
        #expect(unscoped.status != 0 && unscoped.stdout.isEmpty, "a key without a scope is refused")
        #expect(unscoped.stderr.contains("needs a scope") && unscoped.stderr.contains("--registry write"), "\(unscoped.stderr)")
        #expect(try SluiceProcess.run(["keys", "create", "--name", "x", "--registry", "read", "-c", "r.yaml"], in: dir).status != 0)

        let registry = try SluiceProcess.run(["keys", "create", "--name", "schema-ci", "--registry", "write", "-c", "r.yaml"], in: dir)
        #expect(registry.status == 0 && registry.stdout.hasPrefix("slk_"), "\(registry.stderr)")
        let all = try SluiceProcess.run(["keys", "create", "--name", "ingest", "--all-streams", "-c", "r.yaml"], in: dir)
        #expect(all.status == 0 && all.stderr.contains("all streams"), "\(all.stderr)")
        let listed = try SluiceProcess.run(["keys", "list", "-c", "r.yaml"], in: dir)
        #expect(listed.stdout.contains("registry:write") && listed.stdout.contains("SCOPES"), "\(listed.stdout)")
    }

    @Test func missingFileExitsTwo() throws {
        let dir = try makeWorkDirectory("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SluiceProcess.run(["run", "nowhere.yaml"], in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("nowhere.yaml"))
        #expect(r.stderr.contains("no such file"))
    }

    @Test func malformedRowsGoToTheDeadLetterQueueWithTheirLocation() throws {
        let dir = try makeWorkDirectory("dlq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("id,amount,name\n1,2.5,a\n2,oops,b\n3,4.0\n4,5.5,\"d\"\n", to: "\(dir)/data/in.csv")
        try write("{\"id\":1}\n{\"id\": 2,,}\n{\"id\":3}\n", to: "\(dir)/data/in.ndjson")
        try write(
            """
            pipelines:
              csv:
                source: { file: { path: data/in.csv, columns: { amount: float64 } } }
                sink: { ndjson: { path: out/csv } }
              json:
                source: { file: { path: data/in.ndjson } }
                sink: { ndjson: { path: out/json } }
            """, to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try outputLines("\(dir)/out/csv").count == 2)
        #expect(try outputLines("\(dir)/out/json").count == 2)
        let list = try SluiceProcess.run(["dlq", "list", "--json"], in: dir)
        #expect(list.status == 0)
        let entries = list.stdout.split(separator: "\n")
        #expect(entries.count == 3, "\(list.stdout)")
        #expect(list.stdout.contains("in.csv:3"))
        #expect(list.stdout.contains("in.csv:4"))
        #expect(list.stdout.contains("in.ndjson:2"))
        let entry = try #require(entries.first { $0.contains("in.csv:3") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: Any])
        let id = try #require(object["id"] as? Int)
        #expect(object["raw"] as? String == "2,oops,b")
        #expect(object["stage"] as? String == "decode")
        let show = try SluiceProcess.run(["dlq", "show", "\(id)", "--raw"], in: dir)
        #expect(show.stdout == "2,oops,b")
        // A second run reads nothing new: files are ingested once.
        let again = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(again.status == 0)
        #expect(try outputLines("\(dir)/out/csv").count == 2)
        let state = try SluiceProcess.run(["state", "show", "csv"], in: dir)
        #expect(state.stdout.contains("in.csv"))
        #expect(state.stdout.contains("\"done\":true"))
    }

    @Test func compressedInputsAndGlobs() throws {
        let dir = try makeWorkDirectory("gz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("id,v\n1,a\n2,b\n", to: "\(dir)/data/a.csv")
        try write("id,v\n3,c\n", to: "\(dir)/data/b.csv")
        try write("id,v\n4,d\n5,e\n", to: "\(dir)/data/c.csv")
        for (tool, file) in [("gzip", "b.csv"), ("zstd", "c.csv")] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [tool, "-q", "--rm", "\(dir)/data/\(file)"].filter { tool == "zstd" || $0 != "--rm" }
            try ChildProcesses.run(p)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(tool) failed")
        }
        try write(
            """
            pipelines:
              many:
                source: { file: { path: "data/*.csv*", format: csv } }
                sink: { ndjson: { path: out } }
            """, to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = try outputLines("\(dir)/out")
        #expect(lines.count == 5)
        #expect(Set(lines.map { String($0) }).contains(#"{"id":4,"v":"d"}"#))
    }

    @Test func aMistypedLogLevelIsRefusedWithTheChoices() throws {
        let r = try SluiceProcess.run(["run", "p.yaml", "--log-level", "verbose"], in: NSTemporaryDirectory())
        #expect(r.status != 0)
        #expect(r.stderr.contains("verbose") && r.stderr.contains("warning"), "\(r.stderr)")
        let version = try SluiceProcess.run(["--version"], in: NSTemporaryDirectory())
        #expect(version.status == 0 && version.stdout.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil, "\(version.stdout)")
    }

    /// `validate` refuses what `serve` would: a push stream fed to two pipelines, and
    /// unauthenticated endpoints on a non-loopback `serve.host` (unless allowed, as for `serve`).
    @Test func validateRefusesWhatServeWouldRefuse() throws {
        let dir = try makeWorkDirectory("validate-serve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              a:
                source: { http: { stream: clicks } }
                sink: { ndjson: { path: out/a } }
              b:
                source: { http: { stream: clicks } }
                sink: { ndjson: { path: out/b } }
            """, to: "\(dir)/twice.yaml")
        let twice = try SluiceProcess.run(["validate", "twice.yaml"], in: dir)
        #expect(
            twice.status == 2 && twice.stderr.contains("twice.yaml:6") && twice.stderr.contains("pipelines.b.source.http.stream")
                && twice.stderr.contains("already consumed by pipeline 'a'"), "\(twice.stderr)")
        try write(
            """
            serve: { host: 0.0.0.0 }
            pipelines:
              a:
                source: { http: { stream: clicks } }
                sink: { ndjson: { path: out/a } }
            """, to: "\(dir)/open.yaml")
        let open = try SluiceProcess.run(["validate", "open.yaml"], in: dir)
        #expect(open.status == 2 && open.stderr.contains("refusing to listen on 0.0.0.0") && open.stderr.contains("stream clicks"), "\(open.stderr)")
        let allowed = try SluiceProcess.run(["validate", "open.yaml", "--allow-unauthenticated"], in: dir)
        #expect(allowed.status == 0, "\(allowed.stderr)")
    }

    /// A backfill into a sink that replaces its table on each pass is refused before anything
    /// connects (the sink says so through `replacesOutputEachPass`, not a cast in the command).
    @Test func aBackfillIntoAReplacingSinkIsRefused() throws {
        let dir = try makeWorkDirectory("backfill-replace")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            pipelines:
              orders:
                source: { postgres: { url: "postgres://u:p@127.0.0.1:1/db", table: public.orders, mode: incremental, cursor: [updated_at] } }
                sink: { postgres: { url: "postgres://u:p@127.0.0.1:1/db", table: analytics.orders, mode: replace } }
            """, to: "\(dir)/p.yaml")
        let r = try SluiceProcess.run(["backfill", "orders", "--from", "2026-01-01", "--to", "2026-02-01", "-c", "p.yaml"], in: dir)
        #expect(r.status == 2 && r.stderr.contains("pipelines.orders.sink.postgres.mode") && r.stderr.contains("replaces its table"), "\(r.stderr)")
    }

    @Test func helpTeachesWithExamples() throws {
        let r = try SluiceProcess.run(["run", "--help"], in: NSTemporaryDirectory())
        #expect(r.status == 0)
        #expect(r.stdout.contains("Examples:"))
        #expect(r.stdout.contains("--metrics-port"))
    }
}

/// Every example file stays valid as the code changes.
@Suite(.offCooperativePool) struct ExampleFilesTests {
    @Test func everyExampleValidates() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let examples = try FileManager.default.contentsOfDirectory(atPath: "\(root)/examples").filter { $0.hasSuffix(".yaml") }
        #expect(examples.count >= 5)
        for example in examples {
            let r = try SluiceProcess.run(["validate", "examples/\(example)"], in: root)
            #expect(r.status == 0, "\(example): \(r.stderr)")
        }
    }

    @Test func everyComponentHasAnExample() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let text = try FileManager.default.contentsOfDirectory(atPath: "\(root)/examples").filter { $0.hasSuffix(".yaml") }
            .map { try String(contentsOfFile: "\(root)/examples/\($0)", encoding: .utf8) }.joined()
        let components = try SluiceProcess.run(["components"], in: root).stdout
            .split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.trimmingCharacters(in: .whitespaces).split(separator: ":").first.map(String.init) }
        #expect(components.count >= 5)
        for c in components {
            #expect(text.contains("\(c): {") || text.contains("\(c):\n"), "no example uses '\(c)'")
        }
    }

    static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Every file under `directory`, by relative path.
    func files(under directory: String) throws -> [String: String] {
        var out: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory)
        while let name = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(directory)/\(name)", isDirectory: &isDirectory), !isDirectory.boolValue {
                out[name] = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
            }
        }
        return out
    }

    /// CI fails when the committed reference is not what the specs generate.
    @Test func theCommittedReferenceIsTheGeneratedOne() throws {
        let dir = try makeWorkDirectory("reference")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SluiceProcess.run(["components", "--format", "markdown", "--output", "\(dir)/reference"], in: Self.root)
        #expect(r.status == 0, "\(r.stderr)")
        let generated = try files(under: "\(dir)/reference"), committed = try files(under: "\(Self.root)/docs/reference")
        #expect(generated.count >= 14, "\(generated.keys.sorted())")
        let stale = Set(generated.keys).union(committed.keys).filter { generated[$0] != committed[$0] }.sorted()
        #expect(
            stale.isEmpty, "docs/reference differs from the specs in \(stale); run `sluice components --format markdown --output docs/reference` and commit it")
        let schema = try SluiceProcess.run(["components", "--format", "json"], in: Self.root)
        #expect(schema.stdout == committed["sluice.schema.json"], "`components --format json` is not the committed schema")
    }

    /// The JSON Schema, read by an independent validator (Python's jsonschema): every example
    /// file passes; a misspelled key, a word outside a choice and a missing sink are refused.
    @Test func theExamplesPassTheJSONSchemaAndMistakesDoNot() throws {
        let script = """
            import glob, json, yaml, jsonschema
            schema = json.load(open('docs/reference/sluice.schema.json'))
            jsonschema.Draft202012Validator.check_schema(schema)
            v = jsonschema.Draft202012Validator(schema)
            files = sorted(glob.glob('examples/*.yaml'))
            bad = [f + ': ' + e.message for f in files for e in v.iter_errors(yaml.safe_load(open(f)))]
            good = {'pipelines': {'p': {'source': {'file': {'path': 'in/*.csv', 'watch': True}}, 'sink': {'parquet': {'path': 'lake', 'compression': 'zstd'}}}}}
            mistakes = [
                {'pipelines': {'p': {'source': {'file': {'pathh': 'in/*.csv'}}, 'sink': {'blackhole': {}}}}},
                {'pipelines': {'p': {'source': {'file': {'path': 'x', 'compression': 'gzipp'}}, 'sink': {'blackhole': {}}}}},
                {'pipelines': {'p': {'source': {'file': {'path': 'x'}}}}},
            ]
            print(len(files), len(bad), v.is_valid(good), sum(1 for m in mistakes if not v.is_valid(m)))
            for b in bad[:5]: print(b)
            """
        let out = try python(script, in: Self.root).split(separator: "\n")
        let counts = out.first?.split(separator: " ") ?? []
        #expect(counts.count == 4 && Int(counts[0]) ?? 0 >= 5, "\(out)")
        #expect(counts.count == 4 && counts[1] == "0", "examples the schema refuses: \(out.dropFirst())")
        #expect(counts.count == 4 && counts[2] == "True" && counts[3] == "3", "\(out)")
    }
}
