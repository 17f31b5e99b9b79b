import SluiceCore

extension SQLiteSource {
    public var readIdentities: [String] { ["sqlite:\(path) \(options.table)"] }
}
