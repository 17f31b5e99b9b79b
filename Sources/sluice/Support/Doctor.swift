import Foundation
import SluiceConnectors
import SluiceCore

/// The checks behind `sluice doctor`, in the order they are printed: the config, the state
/// store, then each pipeline (its source, sink and dead-letter sink, its last commit and its
/// dead letters). Nothing here creates, migrates or writes anything but probe files.
struct Doctor {
    var files: [String]
    var limits: DiagnosisLimits
    /// The state location when no file is given (`--state`, else the default).
    var defaultState: String

    func findings() async -> [Diagnosis] {
        var found: [Diagnosis] = []
        var state = defaultState
        var plans: [PipelinePlan] = []
        if !files.isEmpty {
            do {
                (state, plans) = try ConfigLoading.load(files)
                found.append(Diagnosis("config.valid", subject: "config", .ok, "\(files.joined(separator: ", ")): \(plans.count) pipeline(s)"))
            } catch let failure as ConfigFailure {
                return failure.errors.map {
                    Diagnosis("config.valid", subject: "config", .error, "\($0)", fix: "fix the file (`sluice validate` checks it without moving data)")
                }
            } catch {
                return [.failed("config.valid", subject: "config", "the config cannot be loaded", error)]
            }
        }
        let stateChecks = await stateFindings(state)
        found += stateChecks
        // Opening a store creates or migrates what it lacks: only a store whose schema is this
        // binary's is opened (its pipelines' commits and dead letters are otherwise not checked,
        // which each pipeline's findings then say).
        let schema = stateChecks.compactMap(\.stateSchema).first ?? .other
        // A damaged store is not opened either.
        let current = schema == .current && !stateChecks.contains { $0.check == "state.integrity" && $0.status == .error }
        // No state yet (no run has created it): nothing committed, nothing to open.
        let fresh = schema == .absent
        var store: (any StateStore)?
        var skipped: String?
        if fresh {
            skipped = nil
        } else if !current {
            skipped = "the state store was not opened (its schema is missing, older or newer than this binary's, or it could not be read)"
        } else {
            do {
                store = try await BuiltinComponents.openState(state)
            } catch {
                skipped = "the state store could not be opened: \((error as? SluiceError)?.message ?? "\(error)")"
            }
        }
        let unopened = skipped, opened = store
        let perPipeline = await withTaskGroup(of: (Int, [Diagnosis]).self) { group in
            for (index, plan) in plans.enumerated() {
                group.addTask { (index, await pipelineFindings(plan, store: opened, unopened: unopened)) }
            }
            var results = [[Diagnosis]](repeating: [], count: plans.count)
            for await (index, findings) in group { results[index] = findings }
            return results
        }
        found += perPipeline.flatMap { $0 }
        return found
    }

    func stateFindings(_ state: String) async -> [Diagnosis] {
        guard let backend = BuiltinComponents.registry.stateBackend(for: state) else {
            return [
                Diagnosis(
                    "state.kind", subject: "state", .error, "no state store kind handles '\(Redaction.url(state))'",
                    fix: "set `state:` to a path or a postgres:// URL")
            ]
        }
        return await backend.diagnose(state, limits).map { finding in
            var f = finding
            f.subject = "state"
            return f
        }
    }

    func pipelineFindings(_ plan: PipelinePlan, store: (any StateStore)?, unopened: String?) async -> [Diagnosis] {
        var checkpoint: Checkpoint?
        if let store {
            checkpoint = try? await store.checkpoint(pipeline: plan.name)
        } else if unopened == nil {
            checkpoint = Checkpoint()  // no state yet: nothing was ever committed
        }
        let context = DiagnosisContext(limits: limits, checkpoint: checkpoint ?? Checkpoint(), checkpointKnown: checkpoint != nil)
        async let source = Self.component(plan.source, role: "source", context: context)
        async let sink = Self.component(plan.sink, role: "sink", context: context)
        var found = await source + sink
        if let deadLetterSink = plan.deadLetterSink {
            found += await Self.component(deadLetterSink, role: "dead_letter_sink", context: context)
        }
        if let store {
            found += await stateOf(plan.name, store: store)
        } else if let unopened {
            found.append(Diagnosis("pipeline.state", .warning, "last commit and dead letters not checked: \(unopened)"))
        } else {
            found.append(Diagnosis("pipeline.last_commit", .ok, "no commit yet (no state yet)"))
        }
        return found.map { finding in
            var f = finding
            f.subject = plan.name
            return f
        }
    }

    /// A component's own checks, or whether it is reachable when it has none.
    static func component(_ component: Any, role: String, context: DiagnosisContext) async -> [Diagnosis] {
        if let diagnosable = component as? any Diagnosable { return await diagnosable.diagnose(context) }
        let kind = String(describing: type(of: component))
        do {
            if let source = component as? any Source {
                try await source.checkReachable()
            } else if let sink = component as? any Sink {
                try await sink.checkReachable()
            }
            return [Diagnosis("\(role).reachable", .ok, "\(kind) is reachable")]
        } catch {
            return [.failed("\(role).reachable", "\(kind) is not reachable", error)]
        }
    }

    /// The pipeline's last commit and its dead letters, from the state store.
    func stateOf(_ pipeline: String, store: any StateStore) async -> [Diagnosis] {
        var found: [Diagnosis] = []
        let now = Date()
        do {
            if let last = try await store.checkpointHistory(pipeline: pipeline, limit: 1).first {
                let age = now.timeIntervalSince(last.committedAt)
                if age > limits.staleAfter {
                    found.append(
                        Diagnosis(
                            "pipeline.last_commit", .warning, "last commit \(Self.age(age)) ago (\(Self.timestamp(last.committedAt)))",
                            fix: "is it running? `sluice status` shows what it waits for; a pipeline scheduled less often: raise --stale-after"))
                } else {
                    found.append(Diagnosis("pipeline.last_commit", .ok, "last commit \(Self.age(age)) ago"))
                }
            } else {
                found.append(Diagnosis("pipeline.last_commit", .ok, "no commit yet"))
            }
            let (count, oldest) = try await store.deadLetterSummary(pipeline: pipeline)
            if count > 0, let oldest, now.timeIntervalSince(oldest) > limits.deadLetterAge {
                found.append(
                    Diagnosis(
                        "pipeline.dead_letters", .warning, "\(count) dead letter(s), the oldest \(Self.age(now.timeIntervalSince(oldest))) old",
                        fix: "`sluice dlq list --pipeline \(pipeline)` shows why; fix the cause, then `sluice dlq replay --pipeline \(pipeline) -c FILE`"))
            } else {
                found.append(
                    Diagnosis(
                        "pipeline.dead_letters", .ok,
                        count == 0 ? "no dead letters" : "\(count) dead letter(s), the oldest \(Self.age(now.timeIntervalSince(oldest ?? now))) old"))
            }
        } catch {
            found.append(.failed("pipeline.state", "cannot read the pipeline's state", error))
        }
        return found
    }

    static func age(_ seconds: TimeInterval) -> String {
        switch seconds {
        case ..<120: return "\(Int(seconds)) s"
        case ..<7200: return "\(Int(seconds / 60)) min"
        case ..<172_800: return "\(Int(seconds / 3600)) h"
        default: return "\(Int(seconds / 86_400)) d"
        }
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
