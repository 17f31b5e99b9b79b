/// One named, typed column of a ``Schema``.
public struct Field: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var type: DataType
    public var nullable: Bool

    public init(_ name: String, _ type: DataType, nullable: Bool = true) {
        self.name = name
        self.type = type
        self.nullable = nullable
    }

    public var description: String { "\(name): \(type)\(nullable ? "" : " not null")" }
}

/// The ordered fields of a ``RecordBatch``.
public struct Schema: Sendable, Hashable, CustomStringConvertible {
    public var fields: [Field]

    public init(_ fields: [Field]) { self.fields = fields }

    public var count: Int { fields.count }

    /// The position of the field called `name`, if any.
    public func index(of name: String) -> Int? { fields.firstIndex { $0.name == name } }

    public var description: String { "(" + fields.map(\.description).joined(separator: ", ") + ")" }
}
