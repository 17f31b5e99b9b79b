import Foundation

/// When a pull runs again: `every 5m`, a cron expression (`0 * * * *`, UTC), or adaptive polling
/// (again soon while polls return data, backing off to a maximum while idle).
public enum ExtractSchedule: Sendable, Hashable, CustomStringConvertible {
    case every(Duration)
    case cron(CronExpression)
    case adaptive(min: Duration, max: Duration)

    /// Parses `every 5m` / `every 30s` or a five-field cron expression.
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.lowercased().hasPrefix("every ") {
            guard let d = ConfigDuration.parse(String(t.dropFirst(6)).trimmingCharacters(in: .whitespaces)), d > .zero else {
                throw SluiceError(.configuration, "'\(text)': write `every <duration>` such as `every 5m`, `every 30s`, `every 1h`")
            }
            self = .every(d)
        } else {
            self = .cron(try CronExpression(parsing: t))
        }
    }

    /// Slotted schedules name each run by its due time, so that workers sharing state can
    /// claim a run once; adaptive polling has no slots.
    public var isSlotted: Bool {
        if case .adaptive = self { return false }
        return true
    }

    /// The first due time strictly after `date` (slotted schedules).
    public func next(after date: Date) -> Date {
        switch self {
        case let .every(d):
            let step = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            return Date(timeIntervalSince1970: (date.timeIntervalSince1970 / step).rounded(.down) * step + step)
        case let .cron(c):
            return c.next(after: date)
        case let .adaptive(min, _):
            return date.addingTimeInterval(Double(min.components.seconds))
        }
    }

    public var description: String {
        switch self {
        case let .every(d): "every \(d)"
        case let .cron(c): c.text
        case let .adaptive(min, max): "adaptive polling \(min)…\(max)"
        }
    }
}

/// A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC.
/// Fields take `*`, numbers, lists (`1,15`), ranges (`1-5`) and steps (`*/15`, `0-30/10`).
/// As in cron, when both day fields are restricted a day matching either one is due.
public struct CronExpression: Sendable, Hashable {
    public let text: String
    let minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>
    let daysRestricted: Bool, weekdaysRestricted: Bool

    public init(parsing text: String) throws {
        self.text = text
        let fields = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw SluiceError(
                .configuration,
                "'\(text)' is neither `every <duration>` nor a cron expression of five fields (minute hour day month weekday), e.g. \"0 * * * *\"")
        }
        func parse(_ field: String, _ range: ClosedRange<Int>, _ name: String) throws -> Set<Int> {
            var values = Set<Int>()
            for part in field.split(separator: ",") {
                let pieces = part.split(separator: "/", maxSplits: 1).map(String.init)
                let step = pieces.count == 2 ? Int(pieces[1]) : 1
                guard let step, step > 0 else { throw SluiceError(.configuration, "cron '\(text)': bad step in \(name) field '\(part)'") }
                var lower = range.lowerBound, upper = range.upperBound
                if pieces[0] != "*" {
                    let bounds = pieces[0].split(separator: "-", maxSplits: 1).map { Int($0) }
                    guard let first = bounds.first ?? nil, bounds.allSatisfy({ $0 != nil }) else {
                        throw SluiceError(.configuration, "cron '\(text)': '\(part)' in the \(name) field is not a number, range or */step")
                    }
                    lower = first
                    upper = bounds.count == 2 ? bounds[1]! : (pieces.count == 2 ? range.upperBound : first)
                }
                let allowed = name == "weekday" ? 0...7 : range
                guard allowed.contains(lower), allowed.contains(upper), lower <= upper else {
                    throw SluiceError(.configuration, "cron '\(text)': \(name) values must be within \(range.lowerBound)-\(range.upperBound)")
                }
                for v in stride(from: lower, through: upper, by: step) { values.insert(name == "weekday" ? v % 7 : v) }
            }
            return values
        }
        minutes = try parse(fields[0], 0...59, "minute")
        hours = try parse(fields[1], 0...23, "hour")
        days = try parse(fields[2], 1...31, "day")
        months = try parse(fields[3], 1...12, "month")
        weekdays = try parse(fields[4], 0...6, "weekday")
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
        if next(after: Date()) == .distantFuture {
            throw SluiceError(.configuration, "cron '\(text)' never matches (e.g. the 31st of a 30-day month); check the day and month fields")
        }
    }

    /// The first matching minute strictly after `date` (searching up to eight years ahead).
    public func next(after date: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var t = (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
        let limit = t + 8 * 366 * 86_400
        while t < limit {
            let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: Date(timeIntervalSince1970: t))
            guard months.contains(c.month!) else {
                // Jump to the first minute of the next month.
                var next = calendar.dateComponents([.year, .month], from: Date(timeIntervalSince1970: t))
                next.month! += 1
                t = calendar.date(from: next)!.timeIntervalSince1970
                continue
            }
            let dayOK: Bool
            switch (daysRestricted, weekdaysRestricted) {
            case (true, true): dayOK = days.contains(c.day!) || weekdays.contains(c.weekday! - 1)
            case (true, false): dayOK = days.contains(c.day!)
            case (false, true): dayOK = weekdays.contains(c.weekday! - 1)
            case (false, false): dayOK = true
            }
            guard dayOK else { t = (t / 86_400).rounded(.down) * 86_400 + 86_400; continue }
            guard hours.contains(c.hour!) else { t = (t / 3600).rounded(.down) * 3600 + 3600; continue }
            if minutes.contains(c.minute!) { return Date(timeIntervalSince1970: t) }
            t += 60
        }
        return Date.distantFuture
    }
}

extension ExtractSchedule {
    /// Adaptive polling bounds as written in a source's options: `poll: {min: 1s, max: 1m}`.
    struct PollBounds: Decodable {
        var min: ConfigDuration
        var max: ConfigDuration
    }

    /// Decodes a pull source's `schedule` ("every 5m" or cron) or `poll` ({min, max}) option;
    /// nil when neither is given. `allowPoll` is false for full extracts.
    public static func decode<K: CodingKey>(from c: KeyedDecodingContainer<K>, schedule: K, poll: K, allowPoll: Bool) throws -> ExtractSchedule? {
        if c.contains(schedule) && c.contains(poll) {
            throw try c.superDecoder(forKey: poll).configError("use either `schedule` (fixed times) or `poll` (adaptive), not both")
        }
        if let text = try c.decodeIfPresent(String.self, forKey: schedule) {
            do {
                return try ExtractSchedule(parsing: text)
            } catch let e as SluiceError {
                throw try c.superDecoder(forKey: schedule).configError(e.message)
            }
        }
        if let p = try c.decodeIfPresent(PollBounds.self, forKey: poll) {
            guard allowPoll else {
                throw try c.superDecoder(forKey: poll).configError("adaptive polling is for incremental and changelog pulls; a full extract takes `schedule`")
            }
            guard p.min.duration > .zero, p.min.duration <= p.max.duration else {
                throw try c.superDecoder(forKey: poll).configError("`min` must be positive and at most `max`")
            }
            return .adaptive(min: p.min.duration, max: p.max.duration)
        }
        return nil
    }
}
