/// A configuration problem, located by file, line, column and key path.
///
/// Configuration errors are found before any data moves (DESIGN.md §2.5);
/// the CLI prints them and exits with status 2.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// Dotted path of the offending key, e.g. `pipelines.events.source.file.format`.
    public var keyPath: String
    public var message: String

    public init(file: String, line: Int?, column: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        var where_ = file
        if let line { where_ += ":\(line)" }
        if let column { where_ += ":\(column)" }
        return keyPath.isEmpty ? "\(where_): \(message)" : "\(where_): \(keyPath): \(message)"
    }
}

/// Suggests the closest known name for a misspelt one.
enum NameSuggestion {
    /// "unknown key 'x'; did you mean 'y'?" (or the known keys when none is close).
    static func unknownKey(_ name: String, known: [String]) -> String {
        var message = "unknown key '\(name)'"
        if let suggestion = closest(to: name, in: known) {
            message += "; did you mean '\(suggestion)'?"
        } else if !known.isEmpty {
            message += "; known keys: \(known.joined(separator: ", "))"
        }
        return message
    }

    static func closest(to name: String, in candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = distance(Array(name.lowercased().utf8), Array(c.lowercased().utf8))
            if d <= max(2, c.count / 3), d < (best?.1 ?? .max) { best = (c, d) }
        }
        return best?.0
    }

    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
