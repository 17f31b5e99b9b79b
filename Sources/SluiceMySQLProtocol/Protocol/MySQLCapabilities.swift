/// The capability flags client and server exchange in the connection phase.
public struct MySQLCapabilities: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Also `CLIENT_MYSQL`: MariaDB servers leave it clear and put their own flags elsewhere.
    public static let longPassword = Self(rawValue: 1)
    public static let foundRows = Self(rawValue: 1 << 1)
    public static let longFlag = Self(rawValue: 1 << 2)
    public static let connectWithDatabase = Self(rawValue: 1 << 3)
    public static let protocol41 = Self(rawValue: 1 << 9)
    public static let ssl = Self(rawValue: 1 << 11)
    public static let transactions = Self(rawValue: 1 << 13)
    public static let secureConnection = Self(rawValue: 1 << 15)
    public static let multiResults = Self(rawValue: 1 << 17)
    public static let pluginAuth = Self(rawValue: 1 << 19)
    public static let connectAttributes = Self(rawValue: 1 << 20)
    public static let pluginAuthLengthEncodedData = Self(rawValue: 1 << 21)
    public static let deprecateEOF = Self(rawValue: 1 << 24)

    /// What Sluice asks for (those the server offers): 4.1 protocol, plugin authentication with
    /// length-encoded responses, transactions, and OK packets instead of EOF.
    public static let sluiceWants: Self = [
        .longPassword, .longFlag, .protocol41, .transactions, .secureConnection, .multiResults, .pluginAuth,
        .pluginAuthLengthEncodedData, .deprecateEOF,
    ]
}
