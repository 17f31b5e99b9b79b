#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
import SluiceCore

/// Decodes CSV (RFC 4180) into typed columnar batches.
///
/// - Records end at LF or CRLF outside quotes; quoted fields may hold the delimiter, quotes
///   (doubled) and line breaks. Blank lines are skipped (they still count as lines). A UTF-8 BOM
///   at the start of the file is skipped.
/// - An unquoted empty field is NULL; a quoted empty field (`""`) is the empty string in string
///   and binary columns and NULL in the others.
/// - Column types are declared (``CSVOptions/columns``) or inferred from the sample given to
///   ``prepare(sample:isWholeInput:)``: per column the narrowest of bool, int64, float64,
///   timestamp, date, else string. Numbers with a superfluous leading zero (`007`) count as text.
/// - Bad rows never stop decoding; they become ``DecodeReject``s (`field_count`,
///   `type_mismatch`, `invalid_utf8`, `malformed_row`) and leave nothing in the batch.
///
/// Not thread-safe: one decoder reads one file at a time.
public final class CSVDecoder: RecordDecoder {
    public let options: CSVOptions
    private var core: CSVRowBuilder

    public init(options: CSVOptions = CSVOptions()) {
        self.options = options
        core = CSVRowBuilder(options: options)
    }

    deinit { core.deallocate() }

    public var schema: Schema { core.plan.schema }
    /// Declared columns the header does not name: they are in the schema and always NULL.
    public private(set) var missingDeclaredColumns: [String] = []
    /// Data rows of the sample that type inference looked at.
    public var inferredRows: Int { core.plan.inferredRows }
    /// Offset and 1-based line of the next record to decode (after ``prepare(sample:isWholeInput:)``,
    /// the first data row; advanced by each `decode` call by the bytes it consumed).
    public var nextOffset: Int { core.offset }
    public var nextLine: Int { core.line }

    public var isBetweenRecords: Bool { !core.oversized.discarding }

    /// Where the last complete record ends: at the last LF when the input holds no quote
    /// character at all, else where the record scanner (the one `decode` uses) finds it.
    public func completeRecordsEnd(_ input: UnsafeRawBufferPointer) -> Int {
        guard let base = input.baseAddress, input.count > 0 else { return 0 }
        if memchr(base, Int32(options.quote), input.count) == nil { return Self.afterLastLineFeed(input) }
        var scanner = CSVRecordScanner(delimiter: options.delimiter, quote: options.quote)
        defer { scanner.deallocate() }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var pos = 0
        while pos < input.count {
            switch scanner.scan(p, from: pos, end: input.count, isFinal: false) {
            case .incomplete: return pos
            case let .blank(next): pos = next
            case let .record(record): pos = record.next
            }
        }
        return pos
    }

    public func seek(offset: Int, line: Int) {
        core.offset = offset
        core.line = line
    }

    public func decode(_ input: UnsafeRawBufferPointer, isFinal: Bool) -> DecodeOutput {
        core.decode(input, isFinal: isFinal, batchRows: max(options.batchRows, 1), maxRecordBytes: max(options.maxRecordBytes, 1))
    }

    public func prepare(sample: UnsafeRawBufferPointer, isWholeInput: Bool) throws -> Int {
        try validateOptions()
        var scanner = CSVRecordScanner(delimiter: options.delimiter, quote: options.quote)
        defer { scanner.deallocate() }
        let n = sample.count
        let emptyByte: [UInt8] = [0]
        return try emptyByte.withUnsafeBufferPointer { empty in
            let p = sample.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? empty.baseAddress!
            var pos = 0
            if n >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF { pos = 3 }
            var line = 1

            var headerNames: [String]?
            if options.header {
                headerLoop: while pos < n {
                    switch scanner.scan(p, from: pos, end: n, isFinal: isWholeInput) {
                    case .incomplete:
                        throw SluiceError(
                            .malformedInput, "the CSV header row is longer than the first \(n) bytes of the file",
                            location: "line \(line)")
                    case let .blank(next):
                        line += 1
                        pos = next
                    case let .record(record):
                        if record.problem != .none {
                            throw SluiceError(
                                .malformedInput, "the CSV header row is malformed (unbalanced quotes)",
                                location: "line \(line)")
                        }
                        headerNames = (0..<record.fieldCount).map { field(p, scanner, $0) }
                        line += 1 + record.newlines
                        pos = record.next
                        break headerLoop
                    }
                }
            }
            let dataStart = pos

            // Sample rows for type inference.
            var candidates: [CSVTypeCandidates] = []
            var columnCount = headerNames?.count ?? -1
            var rows = 0
            var scanPos = pos
            var unescaped = [UInt8]()
            sampling: while scanPos < n && rows < options.inferRows {
                switch scanner.scan(p, from: scanPos, end: n, isFinal: isWholeInput) {
                case .incomplete:
                    break sampling
                case let .blank(next):
                    scanPos = next
                case let .record(record):
                    scanPos = record.next
                    if columnCount < 0 { columnCount = max(record.fieldCount, options.columns?.count ?? 0) }
                    guard record.problem == .none, record.fieldCount == columnCount else { continue }
                    if candidates.isEmpty { candidates = Array(repeating: CSVTypeCandidates(), count: columnCount) }
                    for c in 0..<columnCount {
                        let start = scanner.starts[c], len = scanner.ends[c] - start
                        if scanner.flags[c] & CSVRecordScanner.escapedFlag != 0 {
                            if unescaped.count < len { unescaped = [UInt8](repeating: 0, count: len) }
                            unescaped.withUnsafeMutableBufferPointer { u in
                                let m = scanner.unescape(p + start, len, into: u.baseAddress!)
                                candidates[c].observe(u.baseAddress!, m)
                            }
                        } else {
                            candidates[c].observe(p + start, len)
                        }
                    }
                    rows += 1
                }
            }
            if columnCount < 0 {
                if let declared = options.columns {
                    columnCount = declared.count
                } else if !isWholeInput && n > dataStart {
                    throw SluiceError(
                        .malformedInput,
                        "the first CSV row is longer than the first \(n) bytes of the file; declare `columns:`",
                        location: "line \(line)")
                } else {
                    columnCount = 0
                }
            }
            if candidates.isEmpty { candidates = Array(repeating: CSVTypeCandidates(), count: columnCount) }
            let plan = makePlan(headerNames: headerNames, columnCount: columnCount, candidates: candidates, inferredRows: rows)
            core.install(plan, batchRows: max(options.batchRows, 1))
            core.offset = dataStart
            core.line = line
            return dataStart
        }
    }

    private func validateOptions() throws {
        let forbidden: Set<UInt8> = [UInt8(ascii: "\n"), UInt8(ascii: "\r")]
        if options.delimiter == options.quote || forbidden.contains(options.delimiter) || forbidden.contains(options.quote) {
            throw SluiceError(.configuration, "the CSV delimiter and quote must differ and be neither CR nor LF")
        }
    }

    /// The text of a header field (unescaped, lossily decoded, surrounding blanks trimmed).
    private func field(_ p: UnsafePointer<UInt8>, _ scanner: CSVRecordScanner, _ f: Int) -> String {
        let start = scanner.starts[f], len = scanner.ends[f] - start
        var bytes = [UInt8](repeating: 0, count: len)
        let m = bytes.withUnsafeMutableBufferPointer { b -> Int in
            guard len > 0 else { return 0 }
            if scanner.flags[f] & CSVRecordScanner.escapedFlag != 0 { return scanner.unescape(p + start, len, into: b.baseAddress!) }
            b.baseAddress!.update(from: p + start, count: len)
            return len
        }
        let text = String(decoding: bytes[0..<m], as: UTF8.self)
        return String(text.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }

    private func makePlan(headerNames: [String]?, columnCount: Int, candidates: [CSVTypeCandidates], inferredRows: Int) -> CSVColumnPlan {
        var plan = CSVColumnPlan()
        plan.inferredRows = inferredRows
        plan.fileColumns = columnCount
        let declared = options.columns ?? []
        var used = Set<String>()
        func unique(_ name: String) -> String {
            var candidate = name, k = 2
            while used.contains(candidate) { candidate = "\(name)_\(k)"; k += 1 }
            used.insert(candidate)
            return candidate
        }
        if let headerNames {
            let byName = Dictionary(declared.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
            for (c, raw) in headerNames.enumerated() {
                let name = unique(raw.isEmpty ? "column_\(c + 1)" : raw)
                plan.names.append(name)
                if let type = byName[raw] {
                    plan.types.append(type)
                    plan.declared.append(true)
                } else {
                    plan.types.append(candidates[c].type)
                    plan.declared.append(false)
                }
            }
            let present = Set(headerNames)
            missingDeclaredColumns = []
            for field in declared where !present.contains(field.name) {
                missingDeclaredColumns.append(field.name)
                plan.names.append(unique(field.name))
                plan.types.append(field.type)
                plan.declared.append(true)
            }
        } else {
            for c in 0..<columnCount {
                if c < declared.count {
                    plan.names.append(unique(declared[c].name))
                    plan.types.append(declared[c].type)
                    plan.declared.append(true)
                } else {
                    plan.names.append(unique("column_\(c + 1)"))
                    plan.types.append(candidates[c].type)
                    plan.declared.append(false)
                }
            }
        }
        return plan
    }
}
