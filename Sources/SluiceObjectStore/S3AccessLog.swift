import Foundation

/// A record of an S3 server access log (the format AWS documents for bucket logging): who did
/// what to which key, when. Fields are space-separated; the time is in brackets and the
/// request line, referrer and user agent in quotes; a missing value is `-`; keys are
/// URL-encoded.
public struct S3AccessLogRecord: Sendable, Hashable {
    public var bucket: String
    public var time: Date
    /// `REST.GET.OBJECT`, `REST.PUT.OBJECT`, …
    public var operation: String
    /// The key, decoded; nil for operations without one.
    public var key: String?
    public var status: Int?
    public var userAgent: String?

    /// Parses one line; nil when it is not a record (too few fields, an unreadable time).
    public static func parse(_ line: Substring) -> S3AccessLogRecord? {
        let fields = tokens(line)
        guard fields.count >= 10, let time = Self.time(fields[2]) else { return nil }
        let key = fields[7] == "-" ? nil : (fields[7].removingPercentEncoding ?? fields[7])
        let agent = fields.count > 16 && fields[16] != "-" ? fields[16] : nil
        return S3AccessLogRecord(bucket: fields[1], time: time, operation: fields[6], key: key, status: Int(fields[9]), userAgent: agent)
    }

    /// Splits a line at spaces, keeping `[…]` and `"…"` whole (without their delimiters).
    static func tokens(_ line: Substring) -> [String] {
        var out: [String] = []
        var i = line.startIndex
        while i < line.endIndex {
            if line[i] == " " {
                i = line.index(after: i)
                continue
            }
            let close: Character? = line[i] == "[" ? "]" : line[i] == "\"" ? "\"" : nil
            if let close {
                let start = line.index(after: i)
                let end = line[start...].firstIndex(of: close) ?? line.endIndex
                out.append(String(line[start..<end]))
                i = end < line.endIndex ? line.index(after: end) : end
            } else {
                let end = line[i...].firstIndex(of: " ") ?? line.endIndex
                out.append(String(line[i..<end]))
                i = end
            }
        }
        return out
    }

    /// `06/Feb/2019:00:00:38 +0000`.
    static func time(_ text: String) -> Date? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = text.split(whereSeparator: { $0 == "/" || $0 == ":" || $0 == " " })
        guard parts.count == 7, let day = Int(parts[0]), let month = months.firstIndex(of: String(parts[1])).map({ $0 + 1 }),
            let year = Int(parts[2]), let hour = Int(parts[3]), let minute = Int(parts[4]), let second = Int(parts[5]),
            let zone = Int(parts[6].dropFirst()), parts[6].first == "+" || parts[6].first == "-", parts[6].count == 5
        else { return nil }
        // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let offset = (zone / 100 * 3600 + zone % 100 * 60) * (parts[6].first == "-" ? -1 : 1)
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second - offset))
    }
}
