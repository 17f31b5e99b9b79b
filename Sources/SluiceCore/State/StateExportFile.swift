import Foundation

/// The file `sluice state export` writes and `sluice state import` reads: NDJSON, one header
/// line, one line per row (`{"t": table, "v": [values in column order]}`), and a last line with
/// each table's rows and checksum, so a truncated or edited file is refused on import.
///
/// Values are JSON strings (integers and reals as their exact decimal text, bytes as base64),
/// `true`/`false` and `null`: nothing goes through a floating-point JSON number.
public enum StateExportFile {
    public static let formatVersion = 1

    /// Writes rows to a file, buffered; used by one task at a time.
    public final class Writer: @unchecked Sendable {
        let handle: FileHandle
        let path: String
        var buffer = Data()
        public private(set) var summary = StateSummary()

        /// Creates `path` (refusing to overwrite a file) and writes the header.
        public init(path: String, from source: String) throws {
            // Never over another file (an earlier export), and readable by its owner only: the
            // state holds raw records and key hashes.
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let reason = errno == EEXIST ? "it exists" : String(cString: strerror(errno))
                throw SluiceError(.configuration, "cannot create \(path): \(reason)", location: path)
            }
            self.path = path
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            let header: [String: Any] = [
                "sluice_state": StateExportFile.formatVersion, "from": source, "exported_at": ISO8601DateFormatter().string(from: Date()),
                "tables": StateTables.all.map(\.name),
            ]
            buffer.append(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
            buffer.append(0x0A)
        }

        public func write(_ row: StateRow) throws {
            summary.add(row)
            buffer.append(contentsOf: "{\"t\":\"\(row.table)\",\"v\":[".utf8)
            for (i, value) in row.values.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                switch value {
                case .null: buffer.append(contentsOf: "null".utf8)
                case .bool(let z): buffer.append(contentsOf: (z ? "true" : "false").utf8)
                case .int(let n): buffer.append(contentsOf: "\"\(n)\"".utf8)
                case .real(let d): buffer.append(contentsOf: "\"\(d)\"".utf8)
                case .bytes(let b): buffer.append(contentsOf: "\"\(Data(b).base64EncodedString())\"".utf8)
                case .text(let t): buffer.append(try JSONSerialization.data(withJSONObject: t, options: [.fragmentsAllowed]))
                }
            }
            buffer.append(contentsOf: "]}\n".utf8)
            if buffer.count >= 1 << 20 { try flush() }
        }

        /// Writes the summary line, flushes and fsyncs the file.
        public func finish() throws {
            let tables = Dictionary(
                uniqueKeysWithValues: summary.rows.keys.map {
                    ($0, ["rows": summary.rows[$0]!, "checksum": String(summary.checksums[$0]!, radix: 16)] as [String: Any])
                })
            buffer.append(try JSONSerialization.data(withJSONObject: ["summary": tables], options: [.sortedKeys]))
            buffer.append(0x0A)
            try flush()
            try handle.synchronize()
            try handle.close()
        }

        func flush() throws {
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    /// Reads a file `Writer` wrote, row by row; used by one task at a time.
    public final class Reader: @unchecked Sendable {
        let path: String
        let handle: FileHandle
        var pending = Data()
        var offset = 0
        var atEnd = false
        var line = 0
        /// The store kind the file was exported from.
        public private(set) var source = ""
        /// The summary the file ends with (once ``next()`` returned nil).
        public private(set) var expected: StateSummary?
        /// The summary of the rows read so far.
        public private(set) var summary = StateSummary()

        public init(path: String) throws {
            self.path = path
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw SluiceError(.configuration, "cannot read \(path)", location: path)
            }
            self.handle = handle
            guard let first = try nextLine(), let header = try JSONSerialization.jsonObject(with: first) as? [String: Any],
                let version = header["sluice_state"] as? Int
            else {
                throw SluiceError(.configuration, "\(path) is not a state export of `sluice state export` (no header line)", location: "\(path):1")
            }
            guard version == StateExportFile.formatVersion else {
                throw SluiceError(
                    .configuration, "\(path) has export format \(version); this sluice reads format \(StateExportFile.formatVersion)", location: "\(path):1")
            }
            source = header["from"] as? String ?? "?"
        }

        /// The next row; nil after the summary line, which must be there and match the rows.
        public func next() throws -> StateRow? {
            guard let data = try nextLine() else {
                throw SluiceError(.configuration, "\(path) ends without its summary line: the export is incomplete", location: "\(path):\(line)")
            }
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            if let tables = object?["summary"] as? [String: [String: Any]] {
                var s = StateSummary()
                for (name, t) in tables {
                    s.rows[name] = t["rows"] as? Int ?? -1
                    s.checksums[name] = (t["checksum"] as? String).flatMap { UInt64($0, radix: 16) }
                }
                expected = s
                let differ = summary.differences(from: s)
                guard differ.isEmpty else {
                    throw SluiceError(
                        .configuration, "\(path): the rows of \(differ.joined(separator: ", ")) do not match the summary line: the file was changed or damaged",
                        location: "\(path):\(line)")
                }
                return nil
            }
            guard let name = object?["t"] as? String, let table = StateTables.named(name), let values = object?["v"] as? [Any],
                values.count == table.columns.count
            else {
                throw SluiceError(.configuration, "\(path):\(line): not a row of a state table", location: "\(path):\(line)")
            }
            var row = StateRow(table: name, values: [])
            row.values.reserveCapacity(values.count)
            for (value, column) in zip(values, table.columns) {
                row.values.append(try decode(value, column.type, table: name, column: column.name))
            }
            summary.add(row)
            return row
        }

        func decode(_ value: Any, _ type: StateTable.ColumnType, table: String, column: String) throws -> StateValue {
            if value is NSNull { return .null }
            func bad() -> SluiceError {
                SluiceError(.configuration, "\(path):\(line): \(table).\(column) holds \(value), not a \(type)", location: "\(path):\(line)")
            }
            if type == .bool {
                guard let z = value as? Bool else { throw bad() }
                return .bool(z)
            }
            guard let text = value as? String else { throw bad() }
            switch type {
            case .int:
                guard let n = Int64(text) else { throw bad() }
                return .int(n)
            case .real:
                guard let d = Double(text) else { throw bad() }
                return .real(d)
            case .bytes:
                guard let b = Data(base64Encoded: text) else { throw bad() }
                return .bytes([UInt8](b))
            case .text, .bool:
                return .text(text)
            }
        }

        func nextLine() throws -> Data? {
            while true {
                if let newline = pending[offset...].firstIndex(of: 0x0A) {
                    let data = pending[offset..<newline]
                    offset = newline + 1
                    line += 1
                    return Data(data)
                }
                if atEnd { return nil }
                pending.removeSubrange(0..<offset)
                offset = 0
                guard let more = try handle.read(upToCount: 1 << 20), !more.isEmpty else {
                    atEnd = true
                    continue
                }
                pending.append(more)
            }
        }
    }
}
