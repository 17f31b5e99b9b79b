import Foundation

/// The metrics of `sluice dlq replay --metrics-file PATH`, in the Prometheus text format, for
/// node_exporter's textfile collector (the Prometheus convention for jobs that run and exit).
///
/// The file accumulates: `sluice_replayed_total` adds this replay's outcomes to the counts the
/// file held (so it only grows, as a counter must, and the reprocessing success rate is
/// `rate(sluice_replayed_total{result="ok"}) / rate(sluice_replayed_total)` across replays),
/// and other pipelines' series in the same file are kept.
public struct ReplayMetricsFile: Sendable, Equatable {
    /// `sluice_replayed_total` by pipeline and result (`ok`, `failed`).
    public var replayed: [Key: Double] = [:]
    /// `sluice_replay_last_run_timestamp_seconds` by pipeline: when its last replay ended.
    public var lastRun: [String: Double] = [:]

    public struct Key: Sendable, Hashable, Comparable {
        public var pipeline: String
        public var result: String

        public init(pipeline: String, result: String) {
            self.pipeline = pipeline
            self.result = result
        }

        public static func < (a: Key, b: Key) -> Bool { (a.pipeline, a.result) < (b.pipeline, b.result) }
    }

    public static let replayedName = "sluice_replayed_total"
    public static let lastRunName = "sluice_replay_last_run_timestamp_seconds"

    public init() {}

    /// Reads what an earlier replay wrote: comments and other metrics' labelled series are
    /// skipped; a line that is not a labelled series is refused with its number (the file is
    /// Sluice's own).
    public init(parsing text: String) throws {
        for (index, line) in text.split(whereSeparator: \.isNewline).enumerated() where !line.hasPrefix("#") {
            guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), open < close,
                let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
            else {
                throw SluiceError(.malformedInput, "not a line of a replay metrics file: \(line.prefix(120))", location: "line \(index + 1)")
            }
            let name = String(line[..<open])
            let labels = try Self.labels(line[line.index(after: open)..<close], line: index + 1)
            switch name {
            case Self.replayedName:
                guard let pipeline = labels["pipeline"], let result = labels["result"] else {
                    throw SluiceError(.malformedInput, "\(name) needs the labels pipeline and result", location: "line \(index + 1)")
                }
                replayed[Key(pipeline: pipeline, result: result)] = value
            case Self.lastRunName:
                guard let pipeline = labels["pipeline"] else {
                    throw SluiceError(.malformedInput, "\(name) needs the label pipeline", location: "line \(index + 1)")
                }
                lastRun[pipeline] = value
            default:
                continue
            }
        }
    }

    /// Adds one replay's outcomes and its end time.
    public mutating func add(pipeline: String, ok: Int, failed: Int, at time: Date) {
        replayed[Key(pipeline: pipeline, result: "ok"), default: 0] += Double(ok)
        replayed[Key(pipeline: pipeline, result: "failed"), default: 0] += Double(failed)
        lastRun[pipeline] = time.timeIntervalSince1970
    }

    /// The exposition, with HELP and TYPE lines, series sorted.
    public var text: String {
        var out = "# HELP \(Self.replayedName) \(MetricHelp.text[Self.replayedName] ?? "")\n# TYPE \(Self.replayedName) counter\n"
        for key in replayed.keys.sorted() {
            out += "\(Self.replayedName){pipeline=\"\(Self.escape(key.pipeline))\",result=\"\(Self.escape(key.result))\"} \(Self.format(replayed[key]!))\n"
        }
        out += "# HELP \(Self.lastRunName) \(MetricHelp.text[Self.lastRunName] ?? "")\n# TYPE \(Self.lastRunName) gauge\n"
        for pipeline in lastRun.keys.sorted() {
            out += "\(Self.lastRunName){pipeline=\"\(Self.escape(pipeline))\"} \(Self.format(lastRun[pipeline]!))\n"
        }
        return out
    }

    /// Reads `path` (absent: nothing yet), so that a file that is not one of these is refused
    /// before a replay starts.
    public static func check(path: String) throws {
        _ = try read(path)
    }

    /// Reads `path` (absent: nothing yet), adds the outcomes and replaces the file atomically
    /// (a temporary file in the same directory, synced, renamed over it), as the textfile
    /// collector asks. An exclusive `flock` on `<path>.lock` (not a `.prom` name, so the
    /// collector skips it) keeps two replays that end together from losing either's counts.
    public static func update(path: String, pipeline: String, ok: Int, failed: Int, at time: Date = Date()) throws {
        let lockPath = path + ".lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw SluiceError(.io, "cannot open \(lockPath): \(String(cString: strerror(errno)))", location: lockPath) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        var file = try read(path)
        file.add(pipeline: pipeline, ok: ok, failed: failed, at: time)
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).\(getpid()).tmp")
        do {
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SluiceError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", location: temporary) }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            try handle.write(contentsOf: Data(file.text.utf8))
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, path) == 0 else {
                throw SluiceError(.io, "could not replace \(path): \(String(cString: strerror(errno)))", location: path)
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The file at `path`, empty when there is none.
    static func read(_ path: String) throws -> ReplayMetricsFile {
        guard FileManager.default.fileExists(atPath: path) else { return ReplayMetricsFile() }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        do { return try ReplayMetricsFile(parsing: text) } catch let error as SluiceError {
            throw SluiceError(error.code, "\(path): \(error.message); give --metrics-file a file of its own", location: error.location)
        }
    }

    static func labels(_ text: Substring, line: Int) throws -> [String: String] {
        var labels: [String: String] = [:]
        var rest = text[...]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)...].first == "\"" else {
                throw SluiceError(.malformedInput, "malformed labels: {\(text)}", location: "line \(line)")
            }
            let name = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
            var value = ""
            var index = rest.index(equals, offsetBy: 2)
            var closed = false
            while index < rest.endIndex {
                let c = rest[index]
                if c == "\\", rest.index(after: index) < rest.endIndex {
                    let next = rest[rest.index(after: index)]
                    value.append(next == "n" ? "\n" : next)
                    index = rest.index(index, offsetBy: 2)
                    continue
                }
                if c == "\"" {
                    closed = true
                    break
                }
                value.append(c)
                index = rest.index(after: index)
            }
            guard closed else { throw SluiceError(.malformedInput, "unterminated label value: {\(text)}", location: "line \(line)") }
            labels[name] = value
            rest = rest[rest.index(after: index)...].drop { $0 == "," || $0 == " " }
        }
        return labels
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
