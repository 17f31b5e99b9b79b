import SluiceCore
import Testing

/// Drift is logged as a summary: every change when there are few, counts and the first ones
/// when there are many, so a log line stays short whatever a batch brings.
@Suite struct SchemaDiffSummaryTests {
    @Test func aSmallDiffIsListedWhole() {
        let diff = SchemaDiff(from: Schema([Field("a", .int64)]), to: Schema([Field("a", .float64), Field("b", .string)]))
        #expect(diff.summary() == diff.description)
        #expect(diff.summary() == "+ b: string, ~ a: int64 -> float64")
    }

    @Test func aLargeDiffIsCountedWithItsFirstChanges() {
        let old = Schema((0..<3).map { Field("gone\($0)", .string) })
        let new = Schema((0..<9_900).map { Field("field_\($0)", .int64) })
        let diff = SchemaDiff(from: old, to: new)
        let summary = diff.summary()
        #expect(summary.hasPrefix("9903 changes (+9900 added, -3 removed); first 10: + field_0: int64, + field_1: int64,"), "\(summary)")
        #expect(summary.contains("+ field_9: int64; …") && !summary.contains("field_10"))
        #expect(summary.utf8.count < 400)
        #expect(diff.description.utf8.count > 150_000)
    }

    @Test func longNamesAreCut() {
        let diff = SchemaDiff(from: Schema([]), to: Schema((0..<20).map { Field(String(repeating: "n", count: 5_000) + "\($0)", .string) }))
        #expect(diff.summary().utf8.count < 10 * 90 + 100)
    }
}
