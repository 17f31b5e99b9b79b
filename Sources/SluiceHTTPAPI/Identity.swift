import SluiceCore

extension HTTPAPISource {
    /// The URL without its query (parameters and cursors vary between requests).
    public var readIdentities: [String] { [String(options.url.split(separator: "?", maxSplits: 1).first ?? "")] }
}
