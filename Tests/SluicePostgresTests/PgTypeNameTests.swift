import Foundation
@testable import SluicePostgres
import Testing

/// ``PgTypeName`` names types exactly as the server's `format_type` does, for every built-in
/// type it knows, and refuses names it did not write (they reach DDL).
@Suite struct PgTypeNameTests {
    @Test func namesMatchTheServersFormatType() async throws {
        let db = try await TestDatabase.make("typenames")
        defer { Task { await db.drop() } }
        try await db.execute(
            """
            CREATE TABLE t (a boolean, b bytea, c bigint, d smallint, e integer, f text, g json, h real, i double precision,
              j character(3), k character varying(20), l character varying, m date, n time, o time(3), p timestamp,
              q timestamp(3), r timestamptz, s timestamptz(0), u timetz, v numeric(12,2), w numeric, x uuid, y jsonb,
              z inet, aa cidr, ab macaddr, ac integer[], ad text[], ae numeric(5,1)[], af timestamptz[], ag interval, ah xml, ai oid)
            """)
        let rows = try await db.rows(
            "SELECT attname, atttypid, atttypmod, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY attnum"
        )
        #expect(rows.count == 34)
        for row in rows {
            let name = PgTypeName.format(oid: UInt32(row[1])!, typmod: Int32(row[2])!)
            #expect(name == row[3], "column \(row[0]): \(name ?? "nil") vs the server's \(row[3])")
            #expect(PgTypeName.isKnown(row[3]), "\(row[3])")
        }
    }

    @Test func namesItDidNotWriteAreRefused() {
        for hostile in ["text); DROP TABLE x; --", "text[] , b int", "numeric(1,2,3)", "varchar(10)", "\"char\"", "public.my_enum"] {
            #expect(!PgTypeName.isKnown(hostile), "\(hostile)")
        }
    }
}
