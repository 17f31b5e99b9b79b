import Foundation
import SluiceCore

extension PostgresSource {
    /// A row refused when read (a value with no form in its column's type: NaN, infinity, too
    /// many digits) is read again by its key: fix the row at the source, then replay.
    public func deadLetterDecoder() -> (any DeadLetterDecoder)? { PostgresDeadLetterReader(options: options) }
}

/// Reads the rows of a PostgreSQL source's decode-stage dead letters again (`sluice dlq
/// replay`), by the key each letter records (`{"column": "value", …}`: the extract's key, which
/// always includes the row's identity), with the source's current configuration. A row whose key
/// no longer matches (deleted, or its cursor moved: then the pipeline read it again anyway) fails
/// again as `row_gone`.
struct PostgresDeadLetterReader: DeadLetterDecoder {
    let options: PostgresSourceOptions

    /// Keys per statement.
    static let chunk = 500

    func decode(_ letters: [StoredDeadLetter]) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let connection = try await PostgresConnection.connect(options.url)
        do {
            let result = try await decode(letters, connection: connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    func decode(
        _ letters: [StoredDeadLetter], connection: PostgresConnection
    ) async throws -> (batches: [(records: RecordBatch, ids: [Int64])], failures: [(id: Int64, letter: DeadLetter)]) {
        let o = options
        var extract = try await connection.run { try PostgresExtractPlan(options: o, session: $0) }
        // The user's `filter` only: a changelog marks refused rows processed like the others.
        extract.filter = options.filter
        let plan = extract
        var batches: [(records: RecordBatch, ids: [Int64])] = []
        var failures: [(id: Int64, letter: DeadLetter)] = []
        func fail(_ l: StoredDeadLetter, _ kind: String, _ message: String) { failures.append((l.id, l.failedAgain(kind: kind, message: message))) }
        // The letter of each key (as the result's key columns render it: text).
        var keyed: [(key: [String], letter: StoredDeadLetter)] = []
        for l in letters {
            guard let object = try? JSONSerialization.jsonObject(with: Data(l.letter.raw)) as? [String: Any],
                let key = Optional(plan.key.compactMap { object[$0.name] as? String }), key.count == plan.key.count
            else {
                fail(
                    l, "unsupported", "the dead letter does not hold this source's key (\(plan.key.map(\.name).joined(separator: ", "))); was the key changed?")
                continue
            }
            keyed.append((key, l))
        }
        for start in stride(from: 0, to: keyed.count, by: Self.chunk) {
            let part = Array(keyed[start..<min(start + Self.chunk, keyed.count)])
            var parameters: [String?] = []
            let tuples = part.map { entry in
                "("
                    + entry.key.enumerated().map { i, value in
                        parameters.append(value)
                        return "$\(parameters.count)::\(plan.key[i].typeName)"
                    }.joined(separator: ", ") + ")"
            }
            let columns = plan.key.map { SQLText.identifier($0.name) }.joined(separator: ", ")
            var conditions = ["(\(columns)) IN (\(tuples.joined(separator: ", ")))"]
            if let filter = plan.filter { conditions.append("(\(filter))") }
            let sql = "SELECT \(plan.selectList) FROM \(plan.relation) WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(plan.order)"
            let partition = options.partition
            let bound = parameters
            let (page, keys) = try await connection.run { session -> (Page, [[String]]) in
                try session.send(sql, bound, binary: true)
                let r = try session.receive(sql: sql)
                let n = plan.mappings.count
                let keys = (0..<r.rows).map { row in (0..<plan.key.count).map { r.string(row, n + $0) ?? "" } }
                return (Page.decode(r, plan: plan, partition: partition), keys)
            }
            // Rows refused again are named by their key in their location; the others are in the batch, in order.
            let refused = Dictionary(page.rejects.map { ($0.location, $0) }, uniquingKeysWith: { a, _ in a })
            var byKey: [[String]: StoredDeadLetter] = [:]
            for entry in part { byKey[entry.key] = entry.letter }
            var ids: [Int64] = []
            var found = Set<[String]>()
            for key in keys {
                found.insert(key)
                guard let l = byKey[key] else { continue }
                if let again = refused["postgres:\(partition)@\(key.joined(separator: ","))"] {
                    fail(l, again.errorKind, again.message)
                } else {
                    ids.append(l.id)
                }
            }
            if ids.count == page.batch.count {
                if !ids.isEmpty { batches.append((page.batch, ids)) }
            } else {
                for entry in part where found.contains(entry.key) && refused["postgres:\(partition)@\(entry.key.joined(separator: ","))"] == nil {
                    fail(entry.letter, "internal_error", "reading again gave \(page.batch.count) rows for \(ids.count) keys")
                }
            }
            for entry in part where !found.contains(entry.key) {
                fail(entry.letter, "row_gone", "no row of \(options.partition) has this key now (deleted, or its cursor moved and the pipeline read it again)")
            }
        }
        return (batches, failures)
    }
}
