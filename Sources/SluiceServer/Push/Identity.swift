import SluiceCore

extension HTTPSource {
    public var readIdentities: [String] { ["http stream \(options.stream)"] }
}
