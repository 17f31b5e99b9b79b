import SluiceCore

/// The typed hot loops: values go straight from the column buffers into PLAIN bytes or
/// dictionary indices, with the page statistics gathered on the way.
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
        values.withUnsafeBufferPointer { p in appendInt64Values(r, valid) { p[$0] } }
    }

    func appendDecimalsAsInt64(_ values: [Int128], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        // Range checked in ParquetWriter.validate before any append.
        values.withUnsafeBufferPointer { p in appendInt64Values(r, valid) { Int64(truncatingIfNeeded: p[$0]) } }
    }

    @inline(__always)
    private func appendInt64Values(_ r: Range<Int>, _ valid: ValidityBitmap?, _ value: (Int) -> Int64) {
        var lo = Int64.max, hi = Int64.min, n = 0
        if usingDictionary, let dictionary = fixedDictionary {
            pageIndices.reserveCapacity(pageIndices.count + r.count)
            forEachValid(r, valid) { i in
                let v = value(i)
                if v < lo { lo = v }
                if v > hi { hi = v }
                pageIndices.append(dictionary.index(of: UInt64(bitPattern: v)))
                n += 1
            }
            plainEquivalentBytes += n * 8
        } else {
            pageValues.reserve(r.count * 8)
            forEachValid(r, valid) { i in
                let v = value(i)
                if v < lo { lo = v }
                if v > hi { hi = v }
                pageValues.unsafeAppendLE(v)
                n += 1
            }
        }
        if n > 0 { pageStatistics.update(minInt: lo, maxInt: hi) }
    }

    func appendInt32s(_ values: [Int32], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var lo = Int32.max, hi = Int32.min, n = 0
        values.withUnsafeBufferPointer { p in
            if usingDictionary, let dictionary = fixedDictionary {
                pageIndices.reserveCapacity(pageIndices.count + r.count)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v < lo { lo = v }
                    if v > hi { hi = v }
                    pageIndices.append(dictionary.index(of: UInt64(UInt32(bitPattern: v))))
                    n += 1
                }
                plainEquivalentBytes += n * 4
            } else {
                pageValues.reserve(r.count * 4)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v < lo { lo = v }
                    if v > hi { hi = v }
                    pageValues.unsafeAppendLE(v)
                    n += 1
                }
            }
        }
        if n > 0 { pageStatistics.update(minInt: Int64(lo), maxInt: Int64(hi)) }
    }

    func appendDoubles(_ values: [Double], _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var lo = Double.infinity, hi = -Double.infinity, n = 0, nans = 0
        values.withUnsafeBufferPointer { p in
            if usingDictionary, let dictionary = fixedDictionary {
                pageIndices.reserveCapacity(pageIndices.count + r.count)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v.isNaN { nans += 1 } else {
                        if v < lo { lo = v }
                        if v > hi { hi = v }
                    }
                    pageIndices.append(dictionary.index(of: v.bitPattern))
                    n += 1
                }
                plainEquivalentBytes += n * 8
            } else {
                pageValues.reserve(r.count * 8)
                forEachValid(r, valid) { i in
                    let v = p[i]
                    if v.isNaN { nans += 1 } else {
                        if v < lo { lo = v }
                        if v > hi { hi = v }
                    }
                    pageValues.unsafeAppendLE(v.bitPattern)
                    n += 1
                }
            }
        }
        pageStatistics.update(minDouble: lo, maxDouble: hi, nans: nans, any: n > 0)
    }

    func appendDecimalsFixed(_ values: [Int128], _ width: Int, _ r: Range<Int>, _ valid: ValidityBitmap?) {
        var lo = Int128.max, hi = Int128.min, n = 0
        pageValues.reserve(r.count * width + 16)
        values.withUnsafeBufferPointer { p in
            forEachValid(r, valid) { i in
                let v = p[i]
                if v < lo { lo = v }
                if v > hi { hi = v }
                DecimalBytes.store(v, width: width, at: pageValues.writableTail(minimum: width))
                pageValues.commit(width)
                n += 1
            }
        }
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
                    pageIndices.reserveCapacity(pageIndices.count + r.count)
                    var plainBytes = 0
                    forEachValid(r, valid) { i in
                        let s = Int(off[i]), len = Int(off[i + 1]) - s
                        track(s, len)
                        pageIndices.append(dictionary.index(of: base + s, count: len))
                        plainBytes += 4 + len
                    }
                    plainEquivalentBytes += plainBytes
                } else {
                    pageValues.reserve(Int(off[r.upperBound] - off[r.lowerBound]) + 4 * r.count)
                    forEachValid(r, valid) { i in
                        let s = Int(off[i]), len = Int(off[i + 1]) - s
                        track(s, len)
                        pageValues.unsafeAppendLE(UInt32(len))
                        pageValues.unsafeAppend(base + s, count: len)
                    }
                }
                if minStart >= 0 {
                    pageStatistics.update(minBytes: UnsafeRawBufferPointer(start: base + minStart, count: minLength),
                                          maxBytes: UnsafeRawBufferPointer(start: base + maxStart, count: maxLength))
                }
            }
        }
    }
}
