import Foundation
import NIOCore
import PostgresNIO
import Testing
@testable import Inventory

/// `SQLRow.ints`/`texts` read PostgreSQL's binary arrays in place; these check them against the
/// wire format itself and that anything else falls back to the generic decoder.
struct BinaryArray {
    var buffer = ByteBuffer()

    /// A one-dimensional array of `elements` (nil: NULL) of element type `oid`.
    init(oid: UInt32, _ elements: [[UInt8]?], dimensions: Int32 = 1) {
        buffer.writeInteger(dimensions)
        buffer.writeInteger(Int32(elements.contains { $0 == nil } ? 1 : 0))
        buffer.writeInteger(oid)
        if dimensions > 0 {
            buffer.writeInteger(Int32(elements.count))
            buffer.writeInteger(Int32(1))
        }
        for e in elements {
            if let e {
                buffer.writeInteger(Int32(e.count))
                buffer.writeBytes(e)
            } else {
                buffer.writeInteger(Int32(-1))
            }
        }
    }

    func cell(_ type: PostgresDataType) -> PostgresCell {
        PostgresCell(bytes: buffer, dataType: type, format: .binary, columnName: "a", columnIndex: 0)
    }
}

func int8Bytes(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian, Array.init) }

@Test func binaryArraysAreReadInPlace() {
    let ints: [Int64] = [1, -2, 1 << 40, .max, .min]
    let cell = BinaryArray(oid: 20, ints.map(int8Bytes)).cell(.int8Array)
    #expect(PostgresBackend.arrayElements(cell) { $0.count == 8 ? Int64(bigEndian: $0.loadUnaligned(as: Int64.self)) : nil } == ints)
    // What the generic decoder reads from the same bytes.
    #expect((try? cell.decode([Int64].self)) == ints)

    let texts = ["bench", "", "äpp:latest", "a\u{0}b"]
    let textCell = BinaryArray(oid: 25, texts.map { Array($0.utf8) }).cell(.textArray)
    #expect(PostgresBackend.arrayElements(textCell) { String(decoding: $0, as: UTF8.self) } == texts)
    #expect((try? textCell.decode([String].self)) == texts)

    // Empty (no dimensions), as PostgreSQL sends '{}'.
    #expect(PostgresBackend.arrayElements(BinaryArray(oid: 20, [], dimensions: 0).cell(.int8Array)) { _ in 0 } == [])
}

@Test func binaryArraysTheReaderDoesNotTakeFallBack() {
    let read: (UnsafeRawBufferPointer) -> Int64? = { $0.count == 8 ? Int64(bigEndian: $0.loadUnaligned(as: Int64.self)) : nil }
    // A NULL element, two dimensions, a short element, bytes cut off, text format, no bytes.
    #expect(PostgresBackend.arrayElements(BinaryArray(oid: 20, [int8Bytes(1), nil]).cell(.int8Array), read) == nil)
    #expect(PostgresBackend.arrayElements(BinaryArray(oid: 20, [int8Bytes(1)], dimensions: 2).cell(.int8Array), read) == nil)
    #expect(PostgresBackend.arrayElements(BinaryArray(oid: 23, [[0, 0, 0, 1]]).cell(.int4Array), read) == nil)
    var cut = BinaryArray(oid: 20, [int8Bytes(1), int8Bytes(2)])
    cut.buffer.moveWriterIndex(to: cut.buffer.writerIndex - 3)
    #expect(PostgresBackend.arrayElements(cut.cell(.int8Array), read) == nil)
    let textFormat = PostgresCell(bytes: ByteBuffer(string: "{1,2}"), dataType: .int8Array, format: .text, columnName: "a", columnIndex: 0)
    #expect(PostgresBackend.arrayElements(textFormat, read) == nil)
    let null = PostgresCell(bytes: nil, dataType: .int8Array, format: .binary, columnName: "a", columnIndex: 0)
    #expect(PostgresBackend.arrayElements(null, read) == nil)
}
