/// Encodes Thrift structs with the compact protocol (only what Parquet metadata needs).
///
/// Usage: `field…` calls write one field of the current struct; `structField`/`beginStruct`
/// open a nested struct whose field ids restart at zero; `stop()` ends the current struct.
struct ThriftCompactWriter {
    var bytes: [UInt8] = []
    private var lastFieldId: Int16 = 0
    private var fieldIdStack: [Int16] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        lastFieldId = 0
        fieldIdStack.removeAll(keepingCapacity: true)
    }

    // MARK: Primitive encodings

    /// Unsigned LEB128.
    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func zigzag(_ v: Int32) -> UInt32 { UInt32(bitPattern: (v << 1) ^ (v >> 31)) }

    mutating func writeI32(_ v: Int32) { writeVarint(UInt64(Self.zigzag(v))) }
    mutating func writeI64(_ v: Int64) { writeVarint(Self.zigzag(v)) }

    mutating func writeBinary(_ v: [UInt8]) {
        writeVarint(UInt64(v.count))
        bytes.append(contentsOf: v)
    }

    mutating func writeString(_ v: String) { writeBinary(Array(v.utf8)) }

    mutating func writeDouble(_ v: Double) {
        let bits = v.bitPattern
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
    }

    // MARK: Struct framing

    /// Writes a field header: the short form when the id delta is 1…15, else the long form.
    mutating func fieldHeader(_ id: Int16, _ type: ThriftCompactType) {
        let delta = Int(id) - Int(lastFieldId)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            writeI32(Int32(id))  // i16 as a zigzag varint
        }
        lastFieldId = id
    }

    /// Ends the current struct (stop field) and returns to the enclosing one, if any.
    mutating func stop() {
        bytes.append(ThriftCompactType.stop.rawValue)
        lastFieldId = fieldIdStack.popLast() ?? 0
    }

    /// Starts a struct that is a list element (no field header). End it with ``stop()``.
    mutating func beginStruct() {
        fieldIdStack.append(lastFieldId)
        lastFieldId = 0
    }

    // MARK: Fields

    mutating func field(_ id: Int16, bool v: Bool) { fieldHeader(id, v ? .boolTrue : .boolFalse) }
    mutating func field(_ id: Int16, i8 v: Int8) {
        fieldHeader(id, .i8)
        bytes.append(UInt8(bitPattern: v))
    }
    mutating func field(_ id: Int16, i16 v: Int16) {
        fieldHeader(id, .i16)
        writeI32(Int32(v))
    }
    mutating func field(_ id: Int16, i32 v: Int32) {
        fieldHeader(id, .i32)
        writeI32(v)
    }
    mutating func field(_ id: Int16, i64 v: Int64) {
        fieldHeader(id, .i64)
        writeI64(v)
    }
    mutating func field(_ id: Int16, binary v: [UInt8]) {
        fieldHeader(id, .binary)
        writeBinary(v)
    }
    mutating func field(_ id: Int16, string v: String) {
        fieldHeader(id, .binary)
        writeString(v)
    }
    mutating func field(_ id: Int16, double v: Double) {
        fieldHeader(id, .double)
        writeDouble(v)
    }

    /// Writes a nested struct field; `body` writes its fields, the stop field is added after.
    mutating func structField(_ id: Int16, _ body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .structure)
        beginStruct()
        body(&self)
        stop()
    }

    /// Writes a list header (field header first when `id` is given); the caller writes the elements.
    mutating func listHeader(_ elementType: ThriftCompactType, count: Int) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | elementType.rawValue)
        } else {
            bytes.append(0xF0 | elementType.rawValue)
            writeVarint(UInt64(count))
        }
    }

    mutating func listField(_ id: Int16, _ elementType: ThriftCompactType, count: Int) {
        fieldHeader(id, .list)
        listHeader(elementType, count: count)
    }

    mutating func field(_ id: Int16, i32List values: [Int32]) {
        listField(id, .i32, count: values.count)
        for v in values { writeI32(v) }
    }

    mutating func field(_ id: Int16, stringList values: [String]) {
        listField(id, .binary, count: values.count)
        for v in values { writeString(v) }
    }

    /// Writes a list of structs; `body` writes the fields of element `i`.
    mutating func field(_ id: Int16, structList count: Int, _ body: (inout ThriftCompactWriter, Int) -> Void) {
        listField(id, .structure, count: count)
        for i in 0..<count {
            beginStruct()
            body(&self, i)
            stop()
        }
    }
}
