import Foundation
import SluiceTesting
import SluiceCore
import Testing
@testable import SluiceFormats

/// Helpers shared by the Parquet tests: canonical value text for exact comparisons across
/// Sluice, pyarrow and DuckDB, temporary files, and running python3.
enum ParquetTestSupport {
    /// A value as text that compares exactly: doubles by bit pattern ("nan" for any NaN),
    /// decimals as unscaled integers, dates as days, timestamps as microseconds, binary as hex.
    static func canonical(_ column: Column, _ row: Int) -> String? {
        if column.isNull(row) { return nil }
        switch column.storage {
        case let .bool(v): return v[row] ? "true" : "false"
        case let .int64(v): return String(v[row])
        case let .float64(v): return v[row].isNaN ? "nan" : String(Int64(bitPattern: v[row].bitPattern))
        case let .decimal(v): return String(v[row])
        case let .int32(v): return String(v[row])
        case .bytes:
            let bytes = column.withBytes(at: row) { Array($0) }
            if column.type == .binary { return bytes.map { String(format: "%02x", $0) }.joined() }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Every column of `batches` (one schema) as canonical text, by column name.
    static func canonicalColumns(_ batches: [RecordBatch]) -> [String: [String?]] {
        var result: [String: [String?]] = [:]
        guard let schema = batches.first?.schema else { return result }
        for (c, field) in schema.fields.enumerated() {
            var values: [String?] = []
            for batch in batches {
                for r in 0..<batch.count { values.append(canonical(batch.columns[c], r)) }
            }
            result[field.name] = values
        }
        return result
    }

    static func makeBatch(_ schema: Schema, rows: Int, _ fill: (Int, Int, inout ColumnBuilder) -> Void) -> RecordBatch {
        var builders = schema.fields.map { ColumnBuilder(type: $0.type) }
        for r in 0..<rows {
            for c in builders.indices { fill(r, c, &builders[c]) }
        }
        return RecordBatch(schema: schema, columns: builders.indices.map { builders[$0].finish() })
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-parquet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(
        _ batches: [RecordBatch], schema: Schema, options: ParquetWriterOptions = .init(),
        to path: String
    ) throws -> ParquetFileSummary {
        let output = try ParquetFileOutput(path: path)
        let writer = try ParquetWriter(schema: schema, options: options, output: output)
        for batch in batches { try writer.write(batch) }
        let summary = try writer.close()
        try output.close()
        return summary
    }

    static func writeToMemory(_ batches: [RecordBatch], schema: Schema, options: ParquetWriterOptions = .init()) throws -> [UInt8] {
        let output = ParquetMemoryOutput()
        let writer = try ParquetWriter(schema: schema, options: options, output: output)
        for batch in batches { try writer.write(batch) }
        try writer.close()
        return output.bytes
    }

    struct ProcessResult {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `python3 -c script args…`.
    static func python(_ script: String, _ args: [String] = []) throws -> ProcessResult {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + args
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try ChildProcesses.run(process)
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Whether python3 can import pyarrow and duckdb; records a failing issue saying how to fix it when not.
    static func requirePythonModules(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let result = try? python("import pyarrow, duckdb")
        if result?.status == 0 { return true }
        Issue.record(
            """
            python3 cannot import pyarrow and duckdb, which the Parquet interop tests need. \
            Run the test setup script (or `pip install pyarrow duckdb`). \(result?.stderr ?? "python3 not found")
            """, sourceLocation: sourceLocation)
        return false
    }

    /// Parses `{"types": {name: type}, "columns": {name: [text or null]}}` printed by a python script.
    static func parseCanonicalJSON(_ text: String) throws -> (types: [String: String], columns: [String: [String?]]) {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        let types = object["types"] as? [String: String] ?? [:]
        var columns: [String: [String?]] = [:]
        for (name, values) in object["columns"] as? [String: [Any]] ?? [:] {
            columns[name] = values.map { $0 as? String }
        }
        return (types, columns)
    }

    /// Compares two canonical column maps, recording the first differences of each column.
    static func expectSameColumns(
        _ actual: [String: [String?]], _ expected: [String: [String?]], _ context: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(Set(actual.keys) == Set(expected.keys), "\(context): column names differ", sourceLocation: sourceLocation)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let got = actual[name] else { continue }
            guard got.count == want.count else {
                Issue.record("\(context): column \(name) has \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
                continue
            }
            let diffs = zip(got, want).enumerated().filter { $0.element.0 != $0.element.1 }
            if let first = diffs.first {
                Issue.record(
                    """
                    \(context): column \(name) differs in \(diffs.count) rows; first at row \(first.offset): \
                    got \(first.element.0 ?? "null"), expected \(first.element.1 ?? "null")
                    """, sourceLocation: sourceLocation)
            }
        }
    }
}
