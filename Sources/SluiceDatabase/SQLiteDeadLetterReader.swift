import Foundation
import GRDB
import SluiceCore

extension SQLiteSource {
    /// A row refused when read (a value that does not fit its column's type) is read again by its
    /// key, with the current `columns:`: fix the declared type or the row, then replay.
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { SQLiteDeadLetterReader(source: self) }
}

/// Reads the rows of a SQLite source's decode-stage dead letters again (`sluice dlq replay`) by
/// the exact key in each letter's location (`sqlite:<table>@{"after": …}`), with the source's
/// current configuration. A row whose key no longer matches fails again as `row_gone`.
struct SQLiteDeadLetterReader: DeadLetterDecoder {
    let source: SQLiteSource

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let db = try source.openDatabase()
        let table = source.options.table
        let options = source.options
        let plan = try await db.read { try ExtractPlan(db: $0, options: options) }
        var failures: [(id: Int64, letter: DeadLetter)] = []
        func fail(_ l: StoredDeadLetter, _ kind: String, _ message: String) { failures.append((l.id, l.failedAgain(kind: kind, message: message))) }
        var keyed: [(key: [DatabaseValue], letter: StoredDeadLetter)] = []
        let prefix = "sqlite:\(table)@"
        for l in letters {
            guard l.letter.location.hasPrefix(prefix), let key = ExtractPosition.decode(String(l.letter.location.dropFirst(prefix.count)))?.after,
                key.count == plan.key.count
            else {
                fail(
                    l, "unsupported",
                    "the dead letter's location does not hold this source's key (\(plan.key.joined(separator: ", "))); was the table or key changed?")
                continue
            }
            keyed.append((key, l))
        }
        let columns = (plan.fields.map { ExtractPlan.quote($0.name) } + plan.key.map(ExtractPlan.quote)).joined(separator: ", ")
        let condition =
            "(\(plan.key.map(ExtractPlan.quote).joined(separator: ", "))) = (\(Array(repeating: "?", count: plan.key.count).joined(separator: ", ")))"
        let sql = "SELECT \(columns) FROM \(ExtractPlan.quote(table)) WHERE \(condition)"
        let keys = keyed.map(\.key)
        let found: [[Row]] = try await db.read { db in try keys.map { try Row.fetchAll(db, sql: sql, arguments: StatementArguments($0)) } }
        var rows: [Row] = []
        var ids: [Int64] = []
        for (entry, match) in zip(keyed, found) {
            guard let row = match.first else {
                fail(entry.letter, "row_gone", "no row of \(table) has this key now (deleted, or its cursor moved and the pipeline read it again)")
                continue
            }
            let (_, refused) = SQLiteSourceReader.decode([row], plan: plan, table: table)
            if let again = refused.first {
                fail(entry.letter, again.errorKind, again.message)
            } else {
                rows.append(row)
                ids.append(entry.letter.id)
            }
        }
        guard !rows.isEmpty else { return ([], failures) }
        let (batch, _) = SQLiteSourceReader.decode(rows, plan: plan, table: table)
        return ([(batch, ids)], failures)
    }
}
