import Foundation

/// Parses RFC 8288 `Link` header values: `<https://api.example.com/items?page=2>; rel="next", <…>; rel="last"`.
public enum LinkHeader {
    /// The target of the first link whose `rel` includes `relation` (relation types are
    /// case-insensitive and a `rel` may list several, space-separated), across all given values.
    public static func target(relation: String, in values: [String]) -> String? {
        for value in values {
            for link in links(value) where link.relations.contains(relation.lowercased()) { return link.target }
        }
        return nil
    }

    /// Every link of one header value, in order.
    public static func links(_ value: String) -> [(target: String, relations: [String])] {
        var out: [(String, [String])] = []
        var rest = Substring(value)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let target = String(rest[rest.index(after: open)..<close])
            rest = rest[rest.index(after: close)...]
            // Parameters run to the next comma outside a quoted string.
            var params = ""
            var quoted = false
            var end = rest.endIndex
            for i in rest.indices {
                let ch = rest[i]
                if ch == "\"" { quoted.toggle() }
                if ch == "," && !quoted {
                    end = i
                    break
                }
                params.append(ch)
            }
            rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
            var relations: [String] = []
            for param in params.split(separator: ";") {
                let parts = param.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "rel" else { continue }
                let raw = parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                relations = raw.lowercased().split(separator: " ").map(String.init)
            }
            out.append((target, relations))
        }
        return out
    }
}
