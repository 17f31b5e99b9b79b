import Logging
import SluiceCore
import SluiceNATS

extension JetStreamStreamOptions {
    /// The stream's state and, with `consumer`, that consumer's (for `sluice queue status`).
    func queueStatus(consumer: String?) async throws -> QueueStatus {
        var status = QueueStatus(stream: stream)
        var logger = Logger(label: "sluice.queue")
        logger.logLevel = .error
        let connection = try await connect(logger: logger, name: "sluice queue status")
        let js = JetStream(connection)
        do {
            if let info = try await js.streamInfo(stream) {
                status.fields = [
                    "messages": .number(info.messages), "bytes": .number(info.bytes),
                    "first_seq": .number(Int64(info.firstSequence)), "last_seq": .number(Int64(info.lastSequence)),
                    "replicas": .number(Int64(info.replicas)),
                ]
                if let leader = info.leader { status.fields["leader"] = .text(leader) }
            } else {
                status.error = "stream \(stream) does not exist (yet)"
            }
            if let consumer {
                status.consumer = consumer
                if let c = try await js.consumerInfo(stream: stream, consumer: consumer) {
                    status.consumerFields = [
                        "lag": .number(c.pending), "ack_pending": .number(c.ackPending), "redelivered": .number(c.redelivered),
                        "waiting_pulls": .number(c.waiting), "deliveries": .number(Int64(c.deliveries)),
                        "ack_floor_seq": .number(Int64(c.ackFloorStreamSequence)),
                    ]
                } else {
                    status.consumerError = "consumer \(consumer) does not exist (yet): the first worker creates it"
                }
            }
        } catch {
            status.error = "\(error)"
        }
        await connection.close()
        return status
    }
}

extension JetStreamSource: QueueInspectable {
    public func queueStatus() async throws -> QueueStatus { try await options.stream.queueStatus(consumer: consumerName) }
}

extension JetStreamSink: QueueInspectable {
    public func queueStatus() async throws -> QueueStatus { try await options.stream.queueStatus(consumer: nil) }
}
