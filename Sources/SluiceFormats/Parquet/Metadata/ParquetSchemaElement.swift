/// One node of the flattened Parquet schema (`SchemaElement`).
struct ParquetSchemaElement: Sendable, Hashable {
    var type: ParquetPhysicalType?
    var typeLength: Int32?
    var repetition: ParquetRepetition?
    var name: String
    var numChildren: Int32?
    var convertedType: ParquetConvertedType?
    var scale: Int32?
    var precision: Int32?
    var fieldId: Int32?
    var logicalType: ParquetLogicalType?

    init(name: String) { self.name = name }

    func encode(_ w: inout ThriftCompactWriter) {
        if let type { w.field(1, i32: type.rawValue) }
        if let typeLength { w.field(2, i32: typeLength) }
        if let repetition { w.field(3, i32: repetition.rawValue) }
        w.field(4, string: name)
        if let numChildren { w.field(5, i32: numChildren) }
        if let convertedType { w.field(6, i32: convertedType.rawValue) }
        if let scale { w.field(7, i32: scale) }
        if let precision { w.field(8, i32: precision) }
        if let fieldId { w.field(9, i32: fieldId) }
        if let logicalType { w.structField(10) { logicalType.encode(&$0) } }
    }

    static func decode(_ r: inout ThriftCompactReader) throws -> ParquetSchemaElement {
        var e = ParquetSchemaElement(name: "")
        var sawName = false
        try r.readStruct { r, id, type in
            switch id {
            case 1:
                try r.expect(type, .i32, "SchemaElement.type")
                let raw = try r.readI32()
                guard let t = ParquetPhysicalType(rawValue: raw) else {
                    throw ParquetFormatError("unknown physical type \(raw)")
                }
                e.type = t
            case 2: try r.expect(type, .i32, "SchemaElement.type_length"); e.typeLength = try r.readI32()
            case 3:
                try r.expect(type, .i32, "SchemaElement.repetition_type")
                let raw = try r.readI32()
                guard let rep = ParquetRepetition(rawValue: raw) else {
                    throw ParquetFormatError("unsupported repetition type \(raw)", unsupported: true)
                }
                e.repetition = rep
            case 4: try r.expect(type, .binary, "SchemaElement.name"); e.name = try r.readString(); sawName = true
            case 5: try r.expect(type, .i32, "SchemaElement.num_children"); e.numChildren = try r.readI32()
            case 6: try r.expect(type, .i32, "SchemaElement.converted_type"); e.convertedType = .init(rawValue: try r.readI32())
            case 7: try r.expect(type, .i32, "SchemaElement.scale"); e.scale = try r.readI32()
            case 8: try r.expect(type, .i32, "SchemaElement.precision"); e.precision = try r.readI32()
            case 9: try r.expect(type, .i32, "SchemaElement.field_id"); e.fieldId = try r.readI32()
            case 10: try r.expect(type, .structure, "SchemaElement.logicalType"); e.logicalType = try ParquetLogicalType.decode(&r)
            default: return false
            }
            return true
        }
        guard sawName else { throw ParquetFormatError("schema element without a name") }
        return e
    }
}
