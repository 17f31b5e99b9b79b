import Testing
@testable import SluicePostgres

@Suite struct PostgresURLTests {
    @Test func redactsPasswords() throws {
        let url = try PostgresURL("postgres://app:s3cr%40t@db.example:5432/prod?sslmode=require")
        #expect(url.description == "postgres://app:***@db.example:5432/prod?sslmode=require")
        #expect(!url.redacted.contains("s3cr"))
        #expect(url.conninfo.contains("application_name=sluice"))
        #expect(PostgresURL.redact("postgres://h/db?user=a&password=x&sslmode=disable") == "postgres://h/db?user=a&password=***&sslmode=disable")
    }

    @Test func parsesTableNames() {
        #expect(QualifiedName(parsing: "public.Orders") == QualifiedName(schema: "public", name: "orders"))
        #expect(QualifiedName(parsing: "\"My Schema\".\"Odd \"\"T\"\"\"") == QualifiedName(schema: "My Schema", name: "Odd \"T\""))
        #expect(QualifiedName(parsing: "a;drop table x") == nil)
        #expect(SQLText.qualified(QualifiedName(schema: "s", name: "a\"b")) == "\"s\".\"a\"\"b\"")
    }
}
