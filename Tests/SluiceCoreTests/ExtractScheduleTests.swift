import Foundation
@testable import SluiceCore
import Testing

@Suite struct ExtractScheduleTests {
    func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func everyIsAlignedToTheClock() throws {
        let s = try ExtractSchedule(parsing: "every 5m")
        #expect(s.next(after: date("2026-01-01T10:07:30Z")) == date("2026-01-01T10:10:00Z"))
        #expect(s.next(after: date("2026-01-01T10:10:00Z")) == date("2026-01-01T10:15:00Z"))
    }

    @Test func cronExpressions() throws {
        #expect(try ExtractSchedule(parsing: "0 * * * *").next(after: date("2026-01-01T10:07:00Z")) == date("2026-01-01T11:00:00Z"))
        #expect(
            try ExtractSchedule(parsing: "*/15 9-17 * * 1-5").next(after: date("2026-01-02T17:50:00Z")) == date("2026-01-05T09:00:00Z"),
            "Friday 17:50 → Monday 09:00")
        #expect(try ExtractSchedule(parsing: "30 2 1 * *").next(after: date("2026-01-15T00:00:00Z")) == date("2026-02-01T02:30:00Z"))
        #expect(try ExtractSchedule(parsing: "0 0 29 2 *").next(after: date("2026-03-01T00:00:00Z")) == date("2028-02-29T00:00:00Z"))
        #expect(try ExtractSchedule(parsing: "0 12 * * 0,7").next(after: date("2026-01-01T00:00:00Z")) == date("2026-01-04T12:00:00Z"), "Sunday as 0 or 7")
    }

    @Test func badSchedulesSayWhatIsExpected() {
        for bad in ["every", "every -5m", "0 * * *", "61 * * * *", "a * * * *", "*/0 * * * *"] {
            #expect(throws: SluiceError.self, "\(bad)") { _ = try ExtractSchedule(parsing: bad) }
        }
    }
}
