import ArgumentParser
import Foundation
import SluiceCore
import SluiceFormats
import SluiceObjectStore
import Logging

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a Parquet file's schema, row groups, sizes, codecs and statistics.",
        discussion: """
            Reads only the footer. Like `parquet-tools meta`. An `s3://bucket/key` is read with two
            ranged GETs (the footer's length, then the footer), with the credentials and endpoint
            of the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ~/.aws/credentials) or --endpoint.

            Examples:
              sluice inspect lake/events/created_at_day=2026-11-25/part-….parquet
              sluice inspect file.parquet --row-groups 0      the schema and totals only
              sluice inspect s3://lake/events/part-….parquet --endpoint http://127.0.0.1:8333
            """
    )

    @Argument(help: "A Parquet file, or an object: s3://bucket/key.") var file: String
    @Option(name: .long, help: "Show at most this many row groups in detail.") var rowGroups = 10
    @Option(name: .long, help: "An S3-compatible server for s3:// paths (default: AWS_ENDPOINT_URL, else AWS S3).") var endpoint: String?

    func run() async throws {
        var path = file
        var size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        var spool: String?
        defer { if let spool { unlink(spool) } }
        do {
            if let location = try ObjectLocation(parsing: file) {
                (spool, size) = try await Self.fetchFooter(location, endpoint: endpoint)
                path = spool!
            }
        } catch {
            FileHandle.standardError.write(Data("error: \((error as? SluiceError)?.description ?? "\(error)")\n".utf8))
            throw ExitCode(1)
        }
        let report: ParquetFileReport
        do {
            report = try ParquetReader(path: path).report()
        } catch let error as ParquetError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8).replacing(Data(path.utf8), with: Data(file.utf8)))
            throw ExitCode(1)
        }
        print("file:        \(file)")
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

    /// Writes an object's footer at its offset in a sparse local file of the object's size (the
    /// reader reads only the footer), and returns that file and the size.
    static func fetchFooter(_ location: ObjectLocation, endpoint: String?) async throws -> (String, Int) {
        let settings = try S3Settings.resolve(StorageConfig(endpoint: endpoint))
        let store = S3ObjectStore(bucket: location.bucket, settings: settings, logger: Logger(label: "sluice.inspect"), attempts: 3)
        do {
            guard let info = try await store.head(location.key) else {
                throw SluiceError(.io, "no such object", location: location.description)
            }
            guard info.size >= 12 else { throw SluiceError(.malformedInput, "too small to be Parquet (\(info.size) bytes)", location: location.description) }
            let tail = try await store.get(location.key, range: (info.size - 8)..<info.size, ifMatch: info.etag)
            let footerLength = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
            let start = max(0, info.size - 8 - footerLength)
            let footer = try await store.get(location.key, range: start..<info.size, ifMatch: info.etag)
            let path = NSTemporaryDirectory() + "sluice-inspect-\(UUID().uuidString).parquet"
            let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw SluiceError(.io, "cannot create a temporary file", location: path) }
            defer { close(fd) }
            ftruncate(fd, off_t(info.size))
            _ = footer.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(start)) }
            // The magic at the start, which the reader checks.
            _ = Array("PAR1".utf8).withUnsafeBytes { pwrite(fd, $0.baseAddress!, 4, 0) }
            await store.shutdown()
            return (path, info.size)
        } catch {
            await store.shutdown()
            throw error
        }
    }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}
