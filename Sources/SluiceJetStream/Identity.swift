import SluiceCore

extension JetStreamSource {
    public var readIdentities: [String] { ["jetstream:\(options.stream.url) \(options.stream.stream)"] }
}

extension JetStreamSink {
    public var outputIdentity: String? { "jetstream:\(options.stream.url) \(options.stream.stream)" }
}
