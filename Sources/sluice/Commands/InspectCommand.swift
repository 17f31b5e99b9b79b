import ArgumentParser
import Foundation
import SluiceCore
import SluiceFormats

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a Parquet file's schema, row groups, sizes, codecs and statistics.",
        discussion: """
            Reads only the footer. Like `parquet-tools meta`.

            Examples:
              sluice inspect lake/events/created_at_day=2026-11-25/part-….parquet
              sluice inspect file.parquet --row-groups 0      the schema and totals only
            """
    )

    @Argument(help: "A Parquet file.") var file: String
    @Option(name: .long, help: "Show at most this many row groups in detail.") var rowGroups = 10

    func run() throws {
        let report: ParquetFileReport
        do {
            report = try ParquetReader(path: file).report()
        } catch let error as ParquetError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        print("file:        \(report.path)")
        print("size:        \(Self.bytes(Int64(size)))")
        print("rows:        \(report.rows)")
        print("row groups:  \(report.rowGroups.count)")
        if let createdBy = report.createdBy { print("created by:  \(createdBy)") }
        let uncompressed = report.rowGroups.reduce(Int64(0)) { $0 + $1.uncompressedBytes }
        let compressed = report.rowGroups.reduce(Int64(0)) { $0 + $1.compressedBytes }
        if compressed > 0 {
            print(
                "data:        \(Self.bytes(compressed)) compressed, \(Self.bytes(uncompressed)) uncompressed (\(String(format: "%.1f", Double(uncompressed) / Double(compressed)))×)"
            )
        }
        print("schema:")
        for field in report.schema.fields {
            let nested = report.nestedTypes[field.name].map { " (\($0), as JSON text)" } ?? ""
            print("  \(field.name): \(field.type)\(field.nullable ? "" : " not null")\(nested)")
        }
        for key in report.keyValue.keys.sorted() where key != "sluice.schema" {
            print("metadata:    \(key) = \(report.keyValue[key]!.prefix(80))")
        }
        for (i, group) in report.rowGroups.prefix(rowGroups).enumerated() {
            print("row group \(i): \(group.rows) rows, \(Self.bytes(group.compressedBytes)) compressed, \(Self.bytes(group.uncompressedBytes)) uncompressed")
            for c in group.columns {
                // Padded to 16 characters, never cut: nested leaves have long paths (`tags.list.element`).
                let name = c.column.count >= 16 ? c.column : c.column.padding(toLength: 16, withPad: " ", startingAt: 0)
                var line = "  \(name) \(c.physicalType) \(c.codec) "
                line += "\(Self.bytes(c.compressedBytes))/\(Self.bytes(c.uncompressedBytes)) [\(c.encodings.joined(separator: ","))]"
                if let n = c.nullCount { line += " nulls=\(n)" }
                if let min = c.min, let max = c.max { line += " min=\(min) max=\(max)" }
                print(line)
            }
        }
        if report.rowGroups.count > rowGroups { print("… \(report.rowGroups.count - rowGroups) more row groups (--row-groups)") }
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}
