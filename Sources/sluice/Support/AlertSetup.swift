import Logging
import SluiceCore
import SluiceServer

/// The alert engine of a process's pipelines, from their `alerts:` settings.
enum AlertSetup {
    /// Nil when no pipeline has a rule left enabled.
    static func engine(for runners: [PipelineRunner], store: any StateStore, logger: Logger) -> AlertEngine? {
        var webhooks: [AlertsConfig.Webhook] = []
        var pipelines: [AlertEngine.Pipeline] = []
        for runner in runners {
            let config = runner.plan.settings.alerts
            let rules = AlertRule.rules(pipeline: runner.plan.name, config: config)
            var indices: [Int] = []
            for hook in config.webhooks ?? [] {
                if let i = webhooks.firstIndex(of: hook) {
                    indices.append(i)
                } else {
                    webhooks.append(hook)
                    indices.append(webhooks.count - 1)
                }
            }
            pipelines.append(AlertEngine.Pipeline(status: runner.status, rules: rules, notifiers: indices, pricing: runner.plan.settings.pricing))
        }
        guard pipelines.contains(where: { !$0.rules.isEmpty }) else { return nil }
        // `evaluate_every` and `history` are top-level keys: every pipeline has the file's.
        let settings = runners.first?.plan.settings.alerts ?? AlertsConfig()
        return AlertEngine(
            pipelines: pipelines, notifiers: webhooks.map { AlertWebhook($0) }, store: store, interval: settings.evaluationInterval,
            historyTTL: settings.historyTTL, logger: logger)
    }
}
