/// Standard base64 (RFC 4648, with padding) for binary values in JSON text.
enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends the base64 text of `p[0..<n]` to `out`.
    static func encode(_ p: UnsafePointer<UInt8>, _ n: Int, into out: inout [UInt8]) {
        alphabet.withUnsafeBufferPointer { a in
            var i = 0
            while i + 3 <= n {
                let v = UInt32(p[i]) << 16 | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2])
                out.append(a[Int(v >> 18)])
                out.append(a[Int(v >> 12 & 63)])
                out.append(a[Int(v >> 6 & 63)])
                out.append(a[Int(v & 63)])
                i += 3
            }
            let rest = n - i
            if rest == 1 {
                let v = UInt32(p[i]) << 16
                out.append(a[Int(v >> 18)])
                out.append(a[Int(v >> 12 & 63)])
                out.append(UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            } else if rest == 2 {
                let v = UInt32(p[i]) << 16 | UInt32(p[i + 1]) << 8
                out.append(a[Int(v >> 18)])
                out.append(a[Int(v >> 12 & 63)])
                out.append(a[Int(v >> 6 & 63)])
                out.append(UInt8(ascii: "="))
            }
        }
    }

    @inline(__always)
    static func value(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+"), UInt8(ascii: "-"): 62
        case UInt8(ascii: "/"), UInt8(ascii: "_"): 63
        default: nil
        }
    }

    /// Decodes base64 text (standard or URL-safe alphabet, padding optional) into `out`, which
    /// must have room for `n * 3 / 4 + 3` bytes. Returns the decoded length, or nil when invalid.
    static func decode(_ p: UnsafePointer<UInt8>, _ n: Int, into out: UnsafeMutablePointer<UInt8>) -> Int? {
        var len = n
        while len > 0 && p[len - 1] == UInt8(ascii: "=") && n - len < 2 { len -= 1 }
        if len % 4 == 1 { return nil }
        if len != n && n % 4 != 0 { return nil }
        var o = 0, i = 0
        while i + 4 <= len {
            guard let a = value(p[i]), let b = value(p[i + 1]), let c = value(p[i + 2]), let d = value(p[i + 3]) else { return nil }
            let v = a << 18 | b << 12 | c << 6 | d
            out[o] = UInt8(v >> 16)
            out[o + 1] = UInt8(v >> 8 & 0xFF)
            out[o + 2] = UInt8(v & 0xFF)
            o += 3
            i += 4
        }
        let rest = len - i
        if rest >= 2 {
            guard let a = value(p[i]), let b = value(p[i + 1]) else { return nil }
            var v = a << 18 | b << 12
            out[o] = UInt8(v >> 16)
            o += 1
            if rest == 3 {
                guard let c = value(p[i + 2]) else { return nil }
                v |= c << 6
                out[o] = UInt8(v >> 8 & 0xFF)
                o += 1
            }
        }
        return o
    }
}
