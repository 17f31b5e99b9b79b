import SluiceCore

/// The typed hot loops: values go straight from the column buffers into PLAIN bytes or
/// dictionary indices, with the page statistics gathered on the way. Output is written through
/// local cursors (`writableTail` … `commit`), so the loops touch no class state per value.
extension ParquetColumnWriter {
    /// Calls `body` for each row of `r` that is not null (every row when `valid` is nil).
    @inline(__always)
    func forEachValid(_ r: Range<Int>, _ valid: ValidityBitmap?, _ body: (Int) -> Void) {
        guard let valid else {
            for i in r { body(i) }
            return
        }
        valid.words.withUnsafeBufferPointer { words in
            for i in r where words[i >> 6] & (1 << UInt64(i & 63)) != 0 { body(i) }
        }
    }

    func appendBools(_ values: [Bool], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var sawFalse = false, sawTrue = false
        values.withUnsafeBufferPointer { p in
            forEachValid(r, valid) { i in
                let b = p[i]
                pageBools.append(b ? 1 : 0)
                if b { sawTrue = true } else { sawFalse = true }
            }
        }
        pageStatistics.update(hasFalse: sawFalse, hasTrue: sawTrue)
    }

    func appendInt64s(_ values: [Int64], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        values.withUnsafeBufferPointer { p in appendWords(r, valid, width: 8) { UInt64(bitPattern: p[$0]) } }
    }

    func appendDecimalsAsInt64(_ values: [Int128], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        // Range checked in ParquetWriter.validate before any append.
        values.withUnsafeBufferPointer { p in
            appendWords(r, valid, width: 8) { UInt64(bitPattern: Int64(truncatingIfNeeded: p[$0])) }
        }
    }

    func appendInt32s(_ values: [Int32], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        values.withUnsafeBufferPointer { p in appendWords(r, valid, width: 4) { UInt64(UInt32(bitPattern: p[$0])) } }
    }

    /// Int64/Int32 values (as bit patterns): dictionary indices or PLAIN, with signed min/max.
    @inline(__always)
    private func appendWords(_ r: Range<Int>, _ valid: ValidityBitmap?, width: Int, _ word: (Int) -> UInt64) {
        var lo = Int64.max, hi = Int64.min, n = 0
        @inline(__always) func signed(_ w: UInt64) -> Int64 {
            width == 8 ? Int64(bitPattern: w) : Int64(Int32(truncatingIfNeeded: w))
        }
        if usingDictionary, let dictionary = fixedDictionary {
            let out = pageIndices.writableTail(minimum: r.count)
            forEachValid(r, valid) { i in
                let w = word(i)
                let v = signed(w)
                if v < lo { lo = v }
                if v > hi { hi = v }
                out[n] = dictionary.index(of: w)
                n += 1
            }
            pageIndices.commit(n)
            plainEquivalentBytes += n * width
        } else {
            let out = pageValues.writableTail(minimum: r.count * width)
            forEachValid(r, valid) { i in
                let w = word(i)
                let v = signed(w)
                if v < lo { lo = v }
                if v > hi { hi = v }
                if width == 8 {
                    out.storeBytes(of: w.littleEndian, toByteOffset: n * 8, as: UInt64.self)
                } else {
                    out.storeBytes(of: UInt32(truncatingIfNeeded: w).littleEndian, toByteOffset: n * 4, as: UInt32.self)
                }
                n += 1
            }
            pageValues.commit(n * width)
        }
        if n > 0 { pageStatistics.update(minInt: lo, maxInt: hi) }
    }

    func appendDoubles(_ values: [Double], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var lo = Double.infinity, hi = -Double.infinity, n = 0, nans = 0
        values.withUnsafeBufferPointer { p in
            if usingDictionary, let dictionary = fixedDictionary {
                let out = pageIndices.writableTail(minimum: r.count)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v.isNaN {
                        nans += 1
                    } else {
                        lo = Swift.min(lo, v)
                        hi = Swift.max(hi, v)
                    }
                    out[n] = dictionary.index(of: v.bitPattern)
                    n += 1
                }
                pageIndices.commit(n)
                plainEquivalentBytes += n * 8
            } else {
                let out = pageValues.writableTail(minimum: r.count * 8)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v.isNaN {
                        nans += 1
                    } else {
                        lo = Swift.min(lo, v)
                        hi = Swift.max(hi, v)
                    }
                    out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: n * 8, as: UInt64.self)
                    n += 1
                }
                pageValues.commit(n * 8)
            }
        }
        pageStatistics.update(minDouble: lo, maxDouble: hi, nans: nans, any: n > 0)
    }

    func appendDecimalsFixed(_ values: [Int128], _ width: Int, _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var lo = Int128.max, hi = Int128.min, n = 0
        let out = pageValues.writableTail(minimum: r.count * width + 16)
        values.withUnsafeBufferPointer { p in
            forEachValid(r, valid) { i in
                let v = p[i]
                if v < lo { lo = v }
                if v > hi { hi = v }
                DecimalBytes.store(v, width: width, at: out + n * width)
                n += 1
            }
        }
        pageValues.commit(n * width)
        if n > 0 { pageStatistics.update(minDecimal: lo, maxDecimal: hi) }
    }

    func appendBytes(_ offsets: [Int32], _ data: [UInt8], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        offsets.withUnsafeBufferPointer { off in
            data.withUnsafeBytes { d in
                let base = d.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
                var minStart = -1, minLength = 0, maxStart = -1, maxLength = 0
                @inline(__always) func track(_ s: Int, _ len: Int) {
                    if minStart < 0 {
                        minStart = s; minLength = len; maxStart = s; maxLength = len
                        return
                    }
                    let v = UnsafeRawBufferPointer(start: base + s, count: len)
                    if ColumnStatistics.compare(v, UnsafeRawBufferPointer(start: base + minStart, count: minLength)) < 0 {
                        minStart = s; minLength = len
                    } else if ColumnStatistics.compare(v, UnsafeRawBufferPointer(start: base + maxStart, count: maxLength)) > 0 {
                        maxStart = s; maxLength = len
                    }
                }
                if usingDictionary, let dictionary = bytesDictionary {
                    let out = pageIndices.writableTail(minimum: r.count)
                    var n = 0, plainBytes = 0
                    forEachValid(r, valid) { i in
                        let s = Int(off[i]), len = Int(off[i + 1]) - s
                        track(s, len)
                        out[n] = dictionary.index(of: base + s, count: len)
                        n += 1
                        plainBytes += 4 + len
                    }
                    pageIndices.commit(n)
                    plainEquivalentBytes += plainBytes
                } else {
                    let out = pageValues.writableTail(minimum: Int(off[r.upperBound] - off[r.lowerBound]) + 4 * r.count)
                    var w = 0
                    forEachValid(r, valid) { i in
                        let s = Int(off[i]), len = Int(off[i + 1]) - s
                        track(s, len)
                        out.storeBytes(of: UInt32(len).littleEndian, toByteOffset: w, as: UInt32.self)
                        (out + w + 4).copyMemory(from: base + s, byteCount: len)
                        w += 4 + len
                    }
                    pageValues.commit(w)
                }
                if minStart >= 0 {
                    pageStatistics.update(
                        minBytes: UnsafeRawBufferPointer(start: base + minStart, count: minLength),
                        maxBytes: UnsafeRawBufferPointer(start: base + maxStart, count: maxLength))
                }
            }
        }
    }
}
