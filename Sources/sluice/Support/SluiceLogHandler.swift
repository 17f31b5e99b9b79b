import Foundation
import Logging

/// Structured log lines on standard error: `text` for people, `json` for machines.
///
/// text: `2026-11-25T10:00:00.123Z info  pipeline finished pipeline=events records_in=100`
/// json: `{"ts":"…","level":"info","msg":"pipeline finished","pipeline":"events","records_in":"100"}`
struct SluiceLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    let terminal: Terminal
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, format: LogFormat, terminal: Terminal) {
        self.label = label
        self.format = format
        self.terminal = terminal
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let ts = Self.timestamp()
        switch format {
        case .text:
            var line = "\(ts) \(event.level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(event.message)"
            for key in all.keys.sorted() {
                let value = "\(all[key]!)"
                line += " \(key)=" + (value.contains(" ") ? "\"\(value)\"" : value)
            }
            terminal.writeLine(line)
        case .json:
            var object: [String: String] = ["ts": ts, "level": event.level.rawValue, "msg": "\(event.message)"]
            for (k, v) in all { object[k] = "\(v)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            terminal.writeLine(String(decoding: data, as: UTF8.self))
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let micros = Int64(tv.tv_sec) * 1_000_000 + Int64(tv.tv_usec)
        let full = SluiceCoreTime.format(micros: micros - micros % 1000)
        return full
    }
}

import SluiceCore

enum SluiceCoreTime {
    static func format(micros: Int64) -> String { TemporalText.formatTimestamp(micros: micros) }
}
