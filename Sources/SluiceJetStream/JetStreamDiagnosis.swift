import SluiceCore

/// `sluice doctor` for JetStream: the servers answer, the stream and the consumer are there (or
/// the first run creates them), the stream has a leader. It only reads: unlike
/// `validate --connect`, it never creates the stream.
enum JetStreamDiagnosis {
    static func diagnose(_ role: String, options: JetStreamStreamOptions, consumer: String?) async -> [Diagnosis] {
        let status: QueueStatus
        do {
            status = try await options.queueStatus(consumer: consumer)
        } catch {
            return [
                .failed(
                    "\(role).reachable", "cannot reach NATS", error,
                    fix: "check that nats-server runs with JetStream enabled (-js) and the `url` (and credentials)")
            ]
        }
        var found: [Diagnosis] = []
        if let error = status.error {
            let missing = error.contains("does not exist")
            found.append(
                Diagnosis(
                    "jetstream.stream", missing ? .warning : .error,
                    missing ? "\(error): the first run creates it; if it existed before, its messages are gone" : "stream \(status.stream): \(error)",
                    fix: missing ? nil : "check the stream's servers (`nats stream info \(status.stream)`)"))
        } else {
            let numbers = ["messages", "bytes", "replicas"].compactMap { key in status.fields[key].map { "\(key) \($0)" } }.joined(separator: ", ")
            if (status.fields["replicas"].map { "\($0)" } ?? "1") != "1" && status.fields["leader"] == nil {
                found.append(
                    Diagnosis(
                        "jetstream.stream", .error, "stream \(status.stream) has no leader (\(numbers)): the cluster lost its quorum",
                        fix: "bring back the cluster's servers; a majority of the stream's replicas must be up"))
            } else {
                found.append(Diagnosis("jetstream.stream", .ok, "stream \(status.stream): \(numbers)"))
            }
        }
        if let consumer = status.consumer {
            if let error = status.consumerError {
                let missing = error.contains("does not exist")
                found.append(
                    Diagnosis(
                        "jetstream.consumer", missing ? .ok : .error, error,
                        fix: missing ? nil : "check the consumer (`nats consumer info \(status.stream) \(consumer)`)"))
            } else {
                let lag = status.consumerFields["lag"].map { "\($0)" } ?? "?"
                let pending = status.consumerFields["ack_pending"].map { "\($0)" } ?? "?"
                found.append(Diagnosis("jetstream.consumer", .ok, "consumer \(consumer): \(lag) message(s) not yet delivered, \(pending) awaiting ack"))
            }
        }
        return found
    }
}

extension JetStreamSource: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        await JetStreamDiagnosis.diagnose("source", options: options.stream, consumer: consumerName)
    }
}

extension JetStreamSink: Diagnosable {
    public func diagnose(_ context: DiagnosisContext) async -> [Diagnosis] {
        await JetStreamDiagnosis.diagnose("sink", options: options.stream, consumer: nil)
    }
}
