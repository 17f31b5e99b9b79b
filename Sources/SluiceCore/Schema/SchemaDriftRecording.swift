import Logging
import Metrics

extension SchemaRegistry {
    /// How many of a subject's latest drift events are compared with a new one.
    static let recentDriftEvents = 20

    /// Records a drift event, counts it (`sluice_schema_drift_total` by kind, and `onDrift`) and
    /// logs it with `summary` (the diff summarised: counts and the first changes).
    ///
    /// An event that does not register a version (`conformed`, `dead_lettered`, `refused`…) is
    /// recorded once: when the subject's recent events already hold the same change, from the
    /// same version, with the same action (an earlier run met it), it is neither recorded nor
    /// logged again, so a restart does not repeat it.
    func recordDrift(_ event: SchemaDriftEvent, summary: String, logger: Logger, onDrift: () -> Void) async throws {
        if event.action != "registered",
            try await store.driftEvents(subject: event.subject, limit: Self.recentDriftEvents).contains(where: {
                $0.action == event.action && $0.fromVersion == event.fromVersion && $0.toVersion == event.toVersion && $0.diff == event.diff
            })
        {
            logger.debug("schema drift already recorded", metadata: ["subject": "\(event.subject)", "action": "\(event.action)"])
            return
        }
        try await store.recordDrift(event)
        onDrift()
        for kind in event.kinds {
            Counter(label: "sluice_schema_drift_total", dimensions: [("pipeline", event.pipeline), ("kind", kind)]).increment()
        }
        logger.notice("schema drift", metadata: ["subject": "\(event.subject)", "diff": "\(summary)", "action": "\(event.action)"])
    }
}
