/// Fast conversions between civil dates/times and their ISO 8601 text, without Foundation.
///
/// Uses Howard Hinnant's days-from-civil algorithm (proleptic Gregorian calendar).
public enum TemporalText {
    /// Days since 1970-01-01 of a civil date.
    @inlinable public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number.
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    public static func formatDate(days: Int32) -> String {
        var out: [UInt8] = []
        appendDate(days: Int(days), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func formatTimestamp(micros: Int64) -> String {
        var out: [UInt8] = []
        appendTimestamp(micros: micros, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `YYYY-MM-DD`.
    public static func appendDate(days: Int, to out: inout [UInt8]) {
        let (y, m, d) = civilFromDays(days)
        if y < 0 { out.append(UInt8(ascii: "-")) }
        appendPadded(abs(y), width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(m, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendPadded(d, width: 2, to: &out)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; the fraction is written only when non-zero.
    public static func appendTimestamp(micros: Int64, to out: inout [UInt8]) {
        var days = micros / 86_400_000_000
        var rem = micros % 86_400_000_000
        if rem < 0 { rem += 86_400_000_000; days -= 1 }
        appendDate(days: Int(days), to: &out)
        let secs = Int(rem / 1_000_000), frac = Int(rem % 1_000_000)
        out.append(UInt8(ascii: "T"))
        appendPadded(secs / 3600, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(secs / 60 % 60, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendPadded(secs % 60, width: 2, to: &out)
        if frac != 0 {
            out.append(UInt8(ascii: "."))
            appendPadded(frac, width: 6, to: &out)
        }
        out.append(UInt8(ascii: "Z"))
    }

    @inlinable static func appendPadded(_ v: Int, width: Int, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = v, len = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            repeat {
                buf[len] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
                len += 1
            } while n > 0 && len < 10
            for _ in len..<max(width, len) { out.append(UInt8(ascii: "0")) }
            for i in stride(from: len - 1, through: 0, by: -1) { out.append(buf[i]) }
        }
    }

    /// Parses an ISO 8601 date `YYYY-MM-DD` into days since the epoch.
    public static func parseDate(_ p: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard p.count == 10, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"),
            let y = digits(p, 0, 4), let m = digits(p, 5, 2), let d = digits(p, 8, 2),
            (1...12).contains(m), (1...daysInMonth(y, m)).contains(d)
        else { return nil }
        return Int32(daysFromCivil(year: y, month: m, day: d))
    }

    /// Parses an ISO 8601 / RFC 3339 timestamp into microseconds since the epoch (UTC).
    ///
    /// Accepts `YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]][Z|±HH[:MM]]`; a timestamp without an
    /// offset is taken as UTC. A fraction finer than microseconds must end in zeros: a
    /// nanosecond instant (`.123456789`) is refused (nil), never truncated.
    public static func parseTimestamp(_ p: UnsafeBufferPointer<UInt8>) -> Int64? {
        let n = p.count
        guard n >= 16, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"),
            p[10] == UInt8(ascii: "T") || p[10] == UInt8(ascii: " ") || p[10] == UInt8(ascii: "t"),
            p[13] == UInt8(ascii: ":"),
            let y = digits(p, 0, 4), let mo = digits(p, 5, 2), let d = digits(p, 8, 2),
            let h = digits(p, 11, 2), let mi = digits(p, 14, 2),
            (1...12).contains(mo), (1...daysInMonth(y, mo)).contains(d), h < 24, mi < 60
        else { return nil }
        var i = 16
        var s = 0, micros = 0
        if i < n, p[i] == UInt8(ascii: ":") {
            guard i + 3 <= n, let sec = digits(p, i + 1, 2), sec < 61 else { return nil }
            s = min(sec, 59)
            i += 3
            if i < n, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: ",") {
                i += 1
                var scale = 100_000, any = false
                while i < n, p[i] &- 48 < 10 {
                    guard scale > 0 || p[i] == UInt8(ascii: "0") else { return nil }
                    micros += Int(p[i] &- 48) * scale
                    scale /= 10
                    i += 1
                    any = true
                }
                guard any else { return nil }
            }
        }
        var offsetSeconds = 0
        if i < n {
            let c = p[i]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                i += 1
            } else if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                guard i + 3 <= n, let oh = digits(p, i + 1, 2) else { return nil }
                var om = 0
                var j = i + 3
                if j < n, p[j] == UInt8(ascii: ":") { j += 1 }
                if j + 2 <= n { guard let m = digits(p, j, 2) else { return nil }; om = m; j += 2 }
                offsetSeconds = (oh * 3600 + om * 60) * (c == UInt8(ascii: "-") ? -1 : 1)
                i = j
            } else {
                return nil
            }
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year: y, month: mo, day: d)
        let seconds = days * 86_400 + h * 3600 + mi * 60 + s - offsetSeconds
        return Int64(seconds) * 1_000_000 + Int64(micros)
    }

    @inlinable static func digits(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
        guard start + count <= p.count else { return nil }
        var v = 0
        for i in start..<(start + count) {
            let d = p[i] &- 48
            guard d < 10 else { return nil }
            v = v * 10 + Int(d)
        }
        return v
    }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
