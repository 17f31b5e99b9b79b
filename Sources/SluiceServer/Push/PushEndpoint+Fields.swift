import SluiceCore
import SluiceFormats

extension PushEndpoint {
    /// How many names a problem or a log line lists, at most.
    static let listedFieldNames = 10

    /// The 422 answer to a request that would add too many fields: the limit, its value, how
    /// many new fields the request brings and the first of them.
    static func fieldsProblem(_ r: StreamFieldCatalog.Refusal) -> Problem {
        let first = r.newNames.prefix(listedFieldNames).map { "'\(Problem.excerpt($0))'" }.joined(separator: ", ")
        let more = r.newNames.count > listedFieldNames ? ", …" : ""
        var p: Problem
        switch r.limit {
        case .newFieldsPerRequest:
            p = Problem(
                .unprocessableContent, "too-many-new-fields", "Too many new fields",
                detail:
                    "the records bring \(r.newNames.count) fields the stream does not have yet (\(first)\(more)); one request may add at most "
                    + "\(r.allowed) (`max_new_fields`); nothing was ingested. Fields whose names vary by record belong inside one object "
                    + "(declare it as a json column), or raise `max_new_fields`")
        case .columns:
            p = Problem(
                .unprocessableContent, "too-many-columns", "Too many columns",
                detail:
                    "the stream has \(r.known) fields and the records bring \(r.newNames.count) more (\(first)\(more)); it may have at most "
                    + "\(r.allowed) (`max_columns`); nothing was ingested. Fields whose names vary by record belong inside one object "
                    + "(declare it as a json column)")
        }
        p.extensions = [
            "limit": r.limit.rawValue, "limit_value": r.allowed, "new_field_count": r.newNames.count,
            "new_fields": r.newNames.prefix(listedFieldNames).map(Problem.excerpt),
        ]
        return p
    }

    /// Teaches each stream's catalog the fields of the records still queued (accepted before the
    /// server started): the stream's reader will decode them, so they count towards its columns.
    func learnQueuedFields() async throws {
        for (name, catalog) in fieldCatalogs {
            let splitter = JSONRecordSplitter(
                limits: JSONRecordLimits(maxRecords: .max, maxDepth: 512, maxFields: .max), collectFieldNames: true)
            var after: Int64 = 0
            while true {
                let requests = try await store.queued(stream: name, after: after, limit: 1024, maxBytes: 8 << 20)
                guard let last = requests.last else { break }
                for r in requests {
                    let split = r.payload.withUnsafeBytes { splitter.split($0, format: .ndjson) }
                    catalog.learn(split.fieldNames)
                }
                after = last.sequence
            }
            logger.debug("stream fields known at start", metadata: ["stream": "\(name)", "fields": "\(catalog.count)"])
        }
    }
}
