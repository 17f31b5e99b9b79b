/// The keys of a JSON object's top level, read without building the object (pure; byte-tested).
///
/// `mode: apply` asks, for every batch, whether the changes carry a column the current-state
/// table lacks. Reading the keys here, in the client, spares the server parsing every row's
/// JSON for it. Nil when the text is not an object this scanner reads plainly: not an object,
/// malformed, or a key with a backslash escape (the caller then asks the server).
enum JSONTopLevelKeys {
    static func keys(_ bytes: UnsafeBufferPointer<UInt8>, into found: inout Set<String>) -> Bool {
        var i = 0
        let n = bytes.count
        func skipSpace() { while i < n, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 } }
        /// Skips a string whose opening quote is at `i`; false when it never closes.
        func skipString() -> Bool {
            i += 1
            while i < n {
                switch bytes[i] {
                case UInt8(ascii: "\\"): i += 2
                case UInt8(ascii: "\""):
                    i += 1
                    return true
                default: i += 1
                }
            }
            return false
        }
        /// Skips one value starting at `i` (strings, nested objects and arrays, literals).
        func skipValue() -> Bool {
            skipSpace()
            guard i < n else { return false }
            switch bytes[i] {
            case UInt8(ascii: "\""): return skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while i < n {
                    switch bytes[i] {
                    case UInt8(ascii: "\""):
                        if !skipString() { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            i += 1
                            return true
                        }
                    default: break
                    }
                    i += 1
                }
                return false
            default:
                let start = i
                while i < n, bytes[i] != UInt8(ascii: ","), bytes[i] != UInt8(ascii: "}"), bytes[i] != 0x20, bytes[i] != 0x0A,
                    bytes[i] != 0x0D, bytes[i] != 0x09
                {
                    i += 1
                }
                return i > start
            }
        }
        skipSpace()
        guard i < n, bytes[i] == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace()
        if i < n, bytes[i] == UInt8(ascii: "}") { return true }
        while i < n {
            skipSpace()
            guard i < n, bytes[i] == UInt8(ascii: "\"") else { return false }
            let start = i + 1
            guard skipString() else { return false }
            let key = UnsafeBufferPointer(rebasing: bytes[start..<(i - 1)])
            if key.contains(UInt8(ascii: "\\")) { return false }
            found.insert(String(decoding: key, as: UTF8.self))
            skipSpace()
            guard i < n, bytes[i] == UInt8(ascii: ":") else { return false }
            i += 1
            guard skipValue() else { return false }
            skipSpace()
            guard i < n else { return false }
            if bytes[i] == UInt8(ascii: "}") { return true }
            guard bytes[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
        return false
    }
}
