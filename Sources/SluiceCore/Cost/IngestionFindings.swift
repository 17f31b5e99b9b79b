import Foundation

/// Something `sluice cost` found worth a look: ingestion that costs without need.
public struct IngestionFinding: Sendable, Hashable {
    /// `redundant_source`, `overlapping_output`, `unread_output` or `null_columns`.
    public var kind: String
    public var pipelines: [String]
    public var message: String

    public init(kind: String, pipelines: [String], message: String) {
        self.kind = kind
        self.pipelines = pipelines
        self.message = message
    }
}

/// Redundant and unused ingestion: pipelines reading the same data, pipelines writing over each
/// other, and outputs nobody reads.
public enum IngestionFindings {
    /// Pipelines that read one source identity, and outputs that are one or nested (pure).
    public static func redundancy(_ plans: [PipelinePlan]) -> [IngestionFinding] {
        var findings: [IngestionFinding] = []
        var readers: [String: [String]] = [:]
        var order: [String] = []
        for plan in plans {
            for identity in Set(plan.source.readIdentities) {
                if readers[identity] == nil { order.append(identity) }
                readers[identity, default: []].append(plan.name)
            }
        }
        for identity in order where readers[identity]!.count > 1 {
            let names = readers[identity]!
            findings.append(
                IngestionFinding(
                    kind: "redundant_source", pipelines: names,
                    message:
                        "\(names.joined(separator: " and ")) \(names.count == 2 ? "both" : "all") read \(identity): the same data is extracted \(names.count) times; one pipeline (or one extract into a queue that feeds the others) could serve them"
                ))
        }
        let outputs = plans.compactMap { p in p.sink.outputIdentity.map { (p.name, $0) } }
        for i in outputs.indices {
            for j in outputs.indices where j > i {
                let (a, x) = outputs[i], (b, y) = outputs[j]
                if x == y {
                    findings.append(
                        IngestionFinding(kind: "overlapping_output", pipelines: [a, b], message: "\(a) and \(b) both write \(x)"))
                } else if let nested = nested(x, y) {
                    findings.append(
                        IngestionFinding(
                            kind: "overlapping_output", pipelines: [a, b],
                            message: "\(a) writes \(x) and \(b) writes \(y): \(nested) is inside the other, so readers of the outer one read both"))
                }
            }
        }
        return findings
    }

    /// The inner of two `dir:` outputs when one is inside the other.
    static func nested(_ x: String, _ y: String) -> String? {
        guard x.hasPrefix("dir:"), y.hasPrefix("dir:") else { return nil }
        let a = String(x.dropFirst(4)).trimmingSuffix("/") + "/", b = String(y.dropFirst(4)).trimmingSuffix("/") + "/"
        if b.hasPrefix(a) { return y }
        if a.hasPrefix(b) { return x }
        return nil
    }

    /// Outputs nobody reads, by what each sink can tell (``Sink/readEvidence()``). A read count
    /// is compared with the one the last report saw, kept in the state store (the checkpoint of
    /// `<pipeline>~reads`): the first report records it, the next ones tell. A sink that cannot
    /// be asked (unreachable) is skipped, said in `skipped`.
    public static func unread(
        _ plans: [PipelinePlan], store: any StateStore, now: Date = Date(), staleAfter: TimeInterval = 30 * 86_400
    ) async -> (findings: [IngestionFinding], notes: [String]) {
        var findings: [IngestionFinding] = []
        var notes: [String] = []
        for plan in plans {
            guard let output = plan.sink.outputIdentity else { continue }
            let evidence: ReadEvidence?
            do {
                evidence = try await plan.sink.readEvidence()
            } catch {
                notes.append("\(plan.name): could not tell whether \(output) is read (\(error))")
                continue
            }
            // After the read evidence: the footers read here must not count as a read.
            if let empty = try? await plan.sink.alwaysNullColumns(), !empty.isEmpty {
                findings.append(
                    IngestionFinding(
                        kind: "null_columns", pipelines: [plan.name],
                        message:
                            "\(output) (\(plan.name)) has columns that hold no value at all, candidates to stop ingesting: \(empty.joined(separator: ", "))"))
            }
            switch evidence {
            case nil:
                continue
            case let .lastRead(last)?:
                if let last {
                    if now.timeIntervalSince(last) > staleAfter {
                        findings.append(
                            IngestionFinding(
                                kind: "unread_output", pipelines: [plan.name],
                                message:
                                    "\(output) (\(plan.name)) was last read \(Int(now.timeIntervalSince(last) / 86_400)) days ago (file access times, or the bucket's access logs)"
                            ))
                    }
                } else {
                    findings.append(
                        IngestionFinding(
                            kind: "unread_output", pipelines: [plan.name],
                            message:
                                "no file of \(output) (\(plan.name)) was read since it was written (file access times, where a file system mounted noatime never tells; or the bucket's access logs, since they were turned on)"
                        ))
                }
            case let .readCount(count)?:
                let name = plan.name + "~reads"
                let stored = (try? await store.checkpoint(pipeline: name).partitions) ?? [:]
                if let before = stored["reads"].flatMap(Int.init), let since = stored["since"].flatMap(Double.init), before == count {
                    findings.append(
                        IngestionFinding(
                            kind: "unread_output", pipelines: [plan.name],
                            message:
                                "nobody read \(output) (\(plan.name)) since \(Self.format(Date(timeIntervalSince1970: since))): its scan count has not moved"))
                } else {
                    var commit = StateCommit(pipeline: name, now: now)
                    commit.checkpoint = ["reads": String(count), "since": String(now.timeIntervalSince1970)]
                    do {
                        try await store.commit(commit)
                        if stored["reads"] == nil {
                            notes.append("\(plan.name): reads of \(output) counted from now; the next `sluice cost` tells whether anyone read it")
                        }
                    } catch {
                        notes.append("\(plan.name): could not keep the read count of \(output) (\(error))")
                    }
                }
            }
        }
        return (findings, notes)
    }

    static func format(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        var s = self
        while s.hasSuffix(suffix), s.count > suffix.count { s.removeLast(suffix.count) }
        return s
    }
}
