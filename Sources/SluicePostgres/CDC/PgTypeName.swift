/// PostgreSQL type names from a column's type OID and modifier, as `format_type(oid, typmod)`
/// writes them, for the built-in types change events can carry. A change event names the
/// source's exact column types (`column_types`), so `mode: apply` creates current-state tables
/// with them instead of types guessed from JSON.
enum PgTypeName {
    /// The type name, or nil for a type this table does not know (an enum, a domain, an
    /// extension's type): the sink then infers it from the values.
    static func format(oid: UInt32, typmod: Int32) -> String? {
        if let element = arrayElements[oid] { return format(oid: element, typmod: typmod).map { $0 + "[]" } }
        let precision = typmod >= 0 ? "(\(typmod))" : ""
        switch oid {
        case 16: return "boolean"
        case 17: return "bytea"
        case 20: return "bigint"
        case 21: return "smallint"
        case 23: return "integer"
        case 25: return "text"
        case 26: return "oid"
        case 114: return "json"
        case 142: return "xml"
        case 650: return "cidr"
        case 700: return "real"
        case 701: return "double precision"
        case 829: return "macaddr"
        case 869: return "inet"
        case 1042: return typmod >= 4 ? "character(\(typmod - 4))" : "character"
        case 1043: return typmod >= 4 ? "character varying(\(typmod - 4))" : "character varying"
        case 1082: return "date"
        case 1083: return "time\(precision) without time zone"
        case 1114: return "timestamp\(precision) without time zone"
        case 1184: return "timestamp\(precision) with time zone"
        case 1186: return typmod >= 0 ? nil : "interval"  // interval field restrictions: left to inference
        case 1266: return "time\(precision) with time zone"
        case 1700:
            guard typmod >= 4 else { return "numeric" }
            return "numeric(\(((typmod - 4) >> 16) & 0xFFFF),\((typmod - 4) & 0xFFFF))"
        case 2950: return "uuid"
        case 3802: return "jsonb"
        default: return nil
        }
    }

    /// Array type OIDs and their element types.
    static let arrayElements: [UInt32: UInt32] = [
        1000: 16, 1001: 17, 1005: 21, 1007: 23, 1009: 25, 1016: 20, 1014: 1042, 1015: 1043, 1021: 700, 1022: 701,
        1182: 1082, 1183: 1083, 1115: 1114, 1185: 1184, 1231: 1700, 2951: 2950, 3807: 3802, 199: 114,
    ]

    /// Whether `name` is one this table writes: a type name from change events is checked
    /// against it before it goes into DDL (events may come from anywhere, e.g. a queue).
    static func isKnown(_ name: String) -> Bool {
        name.range(of: pattern, options: .regularExpression) != nil
    }

    private static let pattern =
        #"^(boolean|bytea|bigint|smallint|integer|text|oid|json|xml|cidr|real|double precision|macaddr|inet|"#
        + #"character( varying)?(\([0-9]{1,5}\))?|date|interval|uuid|jsonb|numeric(\([0-9]{1,4},[0-9]{1,4}\))?|"#
        + #"time(\([0-6]\))? with(out)? time zone|timestamp(\([0-6]\))? with(out)? time zone)(\[\])?$"#
}
