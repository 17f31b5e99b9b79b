import Foundation
import Testing
import SluiceTesting

/// `sluice inspect` on real files: Sluice's own and pyarrow's.
@Suite(.offCooperativePool) struct InspectTests {
    /// The min and max of the column chunk `column` in the first row group, as printed.
    static func statistics(_ output: String, column: String) -> String? {
        let line = output.split(separator: "\n").first { $0.hasPrefix("  \(column) ") }
        return line.flatMap { $0.range(of: " min=") }.map { String(line![$0.lowerBound...].dropFirst()) }
    }

    /// Every decimal shows its statistics as a decimal number, whatever its physical type:
    /// Sluice stores decimal(18,2) as INT64 and decimal(38,9) as FIXED_LEN_BYTE_ARRAY; pyarrow
    /// stores decimal(9,2) as INT32 (with `store_decimal_as_integer`) and decimal(18,2) as an
    /// 8-byte FIXED_LEN_BYTE_ARRAY.
    @Test func decimalStatisticsAreDecimalNumbersForEveryPhysicalType() async throws {
        let dir = try makeWorkDirectory("inspect-decimal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(
            """
            id,big,small
            1,12345678901234567890.123456789,1234567890123456.78
            2,-0.000000001,-1.5
            3,0.5,0
            """, to: "\(dir)/data/x.csv")
        try write(
            """
            pipelines:
              t:
                source: { file: { path: data/x.csv, columns: { big: "decimal(38,9)", small: "decimal(18,2)" } } }
                sink: { parquet: { path: lake } }
            """, to: "\(dir)/p.yaml")
        let run = try await SluiceProcess.runWithoutBlocking(["run", "p.yaml", "--no-progress"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/lake").filter { $0.hasSuffix(".parquet") && !$0.hasPrefix(".") }
        try #require(files.count == 1)
        let sluice = try await SluiceProcess.runWithoutBlocking(["inspect", "lake/\(files[0])"], in: dir)
        #expect(sluice.status == 0, "\(sluice.stderr)")
        #expect(sluice.stdout.contains("big: decimal(38,9)") && sluice.stdout.contains("FIXED_LEN_BYTE_ARRAY"), "\(sluice.stdout)")
        #expect(Self.statistics(sluice.stdout, column: "big") == "min=-0.000000001 max=12345678901234567890.123456789", "\(sluice.stdout)")
        #expect(Self.statistics(sluice.stdout, column: "small") == "min=-1.50 max=1234567890123456.78", "\(sluice.stdout)")

        _ = try await offPool {
            try python(
                """
                import decimal, pyarrow as pa, pyarrow.parquet as pq
                D = decimal.Decimal
                t = pa.table({
                    'd9': pa.array([D('1234567.89'), D('-0.05'), None], pa.decimal128(9, 2)),
                    'd18': pa.array([D('-9999999999999999.99'), D('0.01'), D('42.00')], pa.decimal128(18, 2)),
                })
                pq.write_table(t, 'int32.parquet', store_decimal_as_integer=True)
                pq.write_table(t, 'fixed.parquet')
                """, in: dir)
        }
        let int32 = try await SluiceProcess.runWithoutBlocking(["inspect", "int32.parquet"], in: dir)
        #expect(int32.status == 0, "\(int32.stderr)")
        #expect(int32.stdout.contains("  d9               INT32 "), "\(int32.stdout)")
        #expect(Self.statistics(int32.stdout, column: "d9") == "min=-0.05 max=1234567.89", "\(int32.stdout)")
        let fixed = try await SluiceProcess.runWithoutBlocking(["inspect", "fixed.parquet"], in: dir)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.stdout.contains("  d18              FIXED_LEN_BYTE_ARRAY "), "\(fixed.stdout)")
        #expect(Self.statistics(fixed.stdout, column: "d9") == "min=-0.05 max=1234567.89", "\(fixed.stdout)")
        #expect(Self.statistics(fixed.stdout, column: "d18") == "min=-9999999999999999.99 max=42.00", "\(fixed.stdout)")
    }
}
