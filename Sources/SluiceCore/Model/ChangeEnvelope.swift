/// Conventions of the change-event envelope (`op`, `table`, `key`, `before`, `after`, `source`)
/// that the CDC sources write and `mode: apply` reads.
public enum ChangeEnvelope {
    /// What `source` says of a change whose `after` lacks columns the database did not send
    /// (an unchanged TOASTed value; a MySQL row image of MINIMAL or NOBLOB): those columns kept
    /// their values, which the event does not hold, so `after` is not a whole row.
    public static let partialMarker = "\"partial\":true"

    /// `source` (a JSON object) with ``partialMarker`` added.
    public static func markedPartial(_ source: [UInt8]) -> [UInt8] {
        guard source.last == UInt8(ascii: "}") else { return source }
        let empty = source.count <= 2
        return Array(source.dropLast()) + Array(((empty ? "" : ",") + partialMarker + "}").utf8)
    }
}
