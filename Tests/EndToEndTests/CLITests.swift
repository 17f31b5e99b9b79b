import Foundation
import Testing

/// The CLI as a user meets it: exit codes, located config errors, DLQ and state commands.
@Suite struct CLITests {
    @Test func misspelledKeyExitsTwoNamingFileLineAndKey() throws {
        let dir = try makeWorkDirectory("cfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("""
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
        try write("""
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
        try write("""
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
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(tool) failed")
        }
        try write("""
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

    @Test func helpTeachesWithExamples() throws {
        let r = try SluiceProcess.run(["run", "--help"], in: NSTemporaryDirectory())
        #expect(r.status == 0)
        #expect(r.stdout.contains("Examples:"))
        #expect(r.stdout.contains("--metrics-port"))
    }
}

/// Every example file stays valid as the code changes.
@Suite struct ExampleFilesTests {
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
}
