import Foundation
import SluiceCore
import SluiceFormats

extension FileSource {
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { FileDeadLetterDecoder(source: self) }
}

/// Decodes dead letters of a file source again (`sluice dlq replay`): each letter's raw bytes
/// are one row of the file named by its location (`path:line`). The decoder is the one the
/// source uses now (its current `format`, `columns` and options), prepared from the start of
/// the original file when it is still there (a CSV header, the schema a run would infer), else
/// from the rows themselves (NDJSON; a CSV row needs its header: it fails again, saying so).
struct FileDeadLetterDecoder: DeadLetterDecoder {
    let source: FileSource

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        var groups: [String: [StoredDeadLetter]] = [:]
        var order: [String] = []
        var lastPath: String?
        for l in letters {
            // Left as they are: letters without a row (a file that could not be read at all) and
            // rows of compressed files (the header or sample would have to be read decompressed).
            guard !l.letter.raw.isEmpty else { continue }
            let path = Self.path(of: l.letter.location)
            if path != lastPath {
                guard !Self.isCompressed(path) else { continue }
                lastPath = path
                if groups[path] == nil { order.append(path) }
            }
            groups[path, default: []].append(l)
        }
        var batches: [(RecordBatch, [Int64])] = []
        var failures: [(Int64, DeadLetter)] = []
        func fail(_ l: StoredDeadLetter, _ kind: String, _ message: String) {
            failures.append((l.id, DeadLetter(stage: "decode", errorKind: kind, message: message, location: l.letter.location, raw: l.letter.raw, attempts: 1)))
        }
        for path in order {
            let group = groups[path]!
            let decoder: any RecordDecoder
            do {
                decoder = try source.makeDecoder(for: path)
            } catch {
                for l in group { fail(l, "unsupported", "\(error)") }
                continue
            }
            let isCSV = decoder is CSVDecoder
            // The original file's first MiB: the header and the sample a run prepares from.
            let sample = Self.head(of: path)
            if isCSV && sample == nil {
                for l in group { fail(l, "unsupported", "cannot read the header of \(path) (is the file gone?); a CSV row is decoded with its header") }
                continue
            }
            var input: [UInt8] = []
            if sample == nil { for l in group { input += l.letter.raw; input.append(10) } }
            do {
                try (sample ?? input).withUnsafeBytes { _ = try decoder.prepare(sample: $0, isWholeInput: sample == nil || sample!.count < 1 << 20) }
            } catch {
                for l in group { fail(l, "malformed_row", "\(error)") }
                continue
            }
            let out = DeadLetterRows.decode(group, with: decoder)
            batches += out.batches
            failures += out.failures
        }
        return (batches, failures)
    }

    static func isCompressed(_ path: String) -> Bool {
        let lower = path.lowercased()
        return [".gz", ".zst", ".zstd", ".snappy", ".bz2", ".xz"].contains { lower.hasSuffix($0) }
    }

    /// `path:line` → `path`.
    static func path(of location: String) -> String {
        guard let colon = location.lastIndex(of: ":"), Int(location[location.index(after: colon)...]) != nil else { return location }
        return String(location[..<colon])
    }

    /// The first MiB of a local file, nil when it cannot be read.
    static func head(of path: String) -> [UInt8]? {
        guard !path.contains("://"), let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 1 << 20)).map { [UInt8]($0) } ?? []
    }
}
