/// Reads the small, flat XML documents S3 answers with (listings, upload ids, errors).
///
/// Not a general XML parser: S3's responses are elements with text or child elements, no
/// attributes that matter, no CDATA, no mixed content. It finds elements by name and decodes the
/// five predefined entities and numeric character references.
public struct S3XML: Sendable {
    let text: String

    public init(_ bytes: [UInt8]) { text = String(decoding: bytes, as: UTF8.self) }
    public init(_ text: String) { self.text = text }

    /// The inner XML of every `<name>…</name>` at any depth, in document order (not nested in
    /// one another: S3 never nests an element in one of the same name).
    public func elements(_ name: String) -> [S3XML] {
        var found: [S3XML] = []
        var rest = text[...]
        let open = "<\(name)>", openWithAttributes = "<\(name) ", empty = "<\(name)/>", close = "</\(name)>"
        while true {
            let candidates = [rest.range(of: open), rest.range(of: openWithAttributes), rest.range(of: empty)]
            guard let start = candidates.compactMap({ $0 }).min(by: { $0.lowerBound < $1.lowerBound }) else { break }
            guard let tagEnd = rest[start.lowerBound...].firstIndex(of: ">") else { break }
            if rest[rest.index(before: tagEnd)] == "/" {  // <Name/>: empty
                found.append(S3XML(""))
                rest = rest[rest.index(after: tagEnd)...]
                continue
            }
            let contentStart = rest.index(after: tagEnd)
            guard let end = rest[contentStart...].range(of: close) else { break }
            found.append(S3XML(String(rest[contentStart..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return found
    }

    /// The decoded text of the first `<name>` element, nil when there is none.
    public func value(_ name: String) -> String? { elements(name).first.map { Self.unescape($0.text) } }

    /// The decoded text of this element.
    public var string: String { Self.unescape(text) }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            guard c == "&", let semi = s[i...].firstIndex(of: ";"), s.distance(from: i, to: semi) <= 10 else {
                out.append(c)
                i = s.index(after: i)
                continue
            }
            let entity = s[s.index(after: i)..<semi]
            switch entity {
            case "amp": out.append("&")
            case "lt": out.append("<")
            case "gt": out.append(">")
            case "quot": out.append("\"")
            case "apos": out.append("'")
            default:
                let number: UInt32? =
                    entity.hasPrefix("#x")
                    ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst(1)) : nil
                if let number, let scalar = Unicode.Scalar(number) {
                    out.unicodeScalars.append(scalar)
                } else {
                    out += "&\(entity);"
                }
            }
            i = s.index(after: semi)
        }
        return out
    }

    /// `text` with `&`, `<`, `>`, `"` and `'` escaped, for request bodies.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}
