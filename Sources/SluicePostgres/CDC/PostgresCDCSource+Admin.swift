import SluiceCore

/// `sluice cdc setup|teardown|resnapshot` for a `postgres_cdc` source (see ``CDCAdmin``).
extension PostgresCDCSource: CDCAdministrable {
    public func missingServerSettings() async throws -> [String] {
        try await PostgresConnection.connect(options.url).run { try CDCAdmin.missingSettings($0) }
    }

    public func setUp() async throws -> [String] {
        let options = self.options
        return try await PostgresConnection.connect(options.url).run { try CDCAdmin.setup(options, session: $0) }
    }

    public func tearDown(keepPublication: Bool) async throws -> [String] {
        let options = self.options
        return try await PostgresConnection.connect(options.url).run { try CDCAdmin.teardown(options, keepPublication: keepPublication, session: $0) }
    }

    public func objectsDropped(keepPublication: Bool) -> String {
        "slot \(options.slot)" + (keepPublication ? "" : " and publication \(options.publication)")
    }
}
