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
        // Letters by file, in order; indices, not copies (a replay page holds tens of thousands).
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        var lastPath: String?
        var lastCompressed = false
        for i in letters.indices {
            // Left as they are: letters without a row (a file that could not be read at all) and
            // rows of compressed files (the header or sample would have to be read decompressed).
            guard !letters[i].letter.raw.isEmpty else { continue }
            let location = letters[i].letter.location
            let path = lastPath.flatMap { Self.isLine(location, of: $0) ? $0 : nil } ?? Self.path(of: location)
            if path != lastPath {
                lastPath = path
                lastCompressed = Self.isCompressed(path)
                if !lastCompressed && groups[path] == nil { order.append(path) }
            }
            if !lastCompressed { groups[path, default: []].append(i) }
        }
        var batches: [(RecordBatch, [Int64])] = []
        var failures: [(Int64, DeadLetter)] = []
        func fail(_ l: StoredDeadLetter, _ kind: String, _ message: String) {
            failures.append((l.id, DeadLetter(stage: "decode", errorKind: kind, message: message, location: l.letter.location, raw: l.letter.raw, attempts: 1)))
        }
        for path in order {
            let indices = groups[path]!
            let group = indices.count == letters.count ? letters : indices.map { letters[$0] }
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

    /// Rows all of one file, decoded at once (see ``DeadLetterDecoder/decode(lines:)``).
    func decode(lines: DeadLetterBlock.Lines) async throws -> [(records: RecordBatch, ids: [Int64])]? {
        guard !lines.ids.isEmpty else { return nil }
        var path = Self.path(of: lines.location(0))
        guard !Self.isCompressed(path) else { return nil }
        let oneFile = path.withUTF8 { p in lines.allLocations { Self.isLine($0, of: UnsafeRawBufferPointer(p)) } }
        guard oneFile, let decoder = try? source.makeDecoder(for: path) else { return nil }
        let sample = Self.head(of: path)
        if decoder is CSVDecoder && sample == nil { return nil }
        do {
            // Prepared from the rows themselves when the file is gone: those of the first block.
            let first = lines.texts.first.map { Array(lines.blocks[$0.block][$0.range]) } ?? []
            try (sample ?? first).withUnsafeBytes { _ = try decoder.prepare(sample: $0, isWholeInput: sample == nil || sample!.count < 1 << 20) }
        } catch {
            return nil
        }
        return DeadLetterRows.decode(lines: lines, with: decoder)
    }

    static func isCompressed(_ path: String) -> Bool {
        let lower = path.lowercased()
        return [".gz", ".zst", ".zstd", ".snappy", ".bz2", ".xz"].contains { lower.hasSuffix($0) }
    }

    /// True when `location` is `path:<line>`.
    static func isLine(_ location: String, of path: String) -> Bool {
        var location = location, path = path
        return location.withUTF8 { l in path.withUTF8 { isLine(UnsafeRawBufferPointer(l), of: UnsafeRawBufferPointer($0)) } }
    }

    /// True when the bytes `l` are `p:<line>`.
    static func isLine(_ l: UnsafeRawBufferPointer, of p: UnsafeRawBufferPointer) -> Bool {
        guard l.count > p.count + 1, l[p.count] == UInt8(ascii: ":"), p.isEmpty || memcmp(l.baseAddress!, p.baseAddress!, p.count) == 0 else {
            return false
        }
        return l[(p.count + 1)...].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
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
