import SluiceCore

extension ValueParsing {
    /// ``TemporalText/parseTimestamp(_:)`` with a fast path for the usual layout
    /// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM]`; anything else goes to TemporalText, so the
    /// accepted forms and results are exactly TemporalText's.
    @inline(__always)
    static func parseTimestamp(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        if let v = fastTimestamp(p, n) { return v }
        return TemporalText.parseTimestamp(UnsafeBufferPointer(start: p, count: n))
    }

    @inline(__always)
    static func twoDigits(_ p: UnsafePointer<UInt8>, _ i: Int) -> Int? {
        let a = p[i] &- 48, b = p[i + 1] &- 48
        guard a < 10, b < 10 else { return nil }
        return Int(a) * 10 + Int(b)
    }

    static func fastTimestamp(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n >= 19, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"), p[13] == UInt8(ascii: ":"),
            p[16] == UInt8(ascii: ":"),
            p[10] == UInt8(ascii: "T") || p[10] == UInt8(ascii: " ") || p[10] == UInt8(ascii: "t"),
            let y1 = twoDigits(p, 0), let y2 = twoDigits(p, 2), let mo = twoDigits(p, 5), let d = twoDigits(p, 8),
            let h = twoDigits(p, 11), let mi = twoDigits(p, 14), let sec = twoDigits(p, 17),
            mo >= 1 && mo <= 12, h < 24, mi < 60, sec < 61
        else { return nil }
        let y = y1 * 100 + y2
        guard d >= 1 && d <= daysInMonth(y, mo) else { return nil }
        var i = 19
        var micros = 0
        if i < n, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: ",") {
            i += 1
            let start = i
            var scale = 100_000
            while i < n {
                let digit = p[i] &- 48
                guard digit < 10 else { break }
                // Beyond microseconds only zeros: a finer instant is refused, not truncated.
                guard scale > 0 || digit == 0 else { return nil }
                micros += Int(digit) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offsetSeconds = 0
        if i < n {
            let c = p[i]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                i += 1
            } else if (c == UInt8(ascii: "+") || c == UInt8(ascii: "-")) && n - i == 6 && p[i + 3] == UInt8(ascii: ":"),
                let oh = twoDigits(p, i + 1), let om = twoDigits(p, i + 4)
            {
                offsetSeconds = (oh * 3600 + om * 60) * (c == UInt8(ascii: "-") ? -1 : 1)
                i += 6
            } else {
                return nil
            }
        }
        guard i == n else { return nil }
        let days = TemporalText.daysFromCivil(year: y, month: mo, day: d)
        let seconds = days * 86_400 + h * 3600 + mi * 60 + min(sec, 59) - offsetSeconds
        return Int64(seconds) * 1_000_000 + Int64(micros)
    }

    @inline(__always)
    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
