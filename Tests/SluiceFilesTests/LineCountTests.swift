import Testing

@testable import SluiceFiles

/// The vectorized LF count that positions and dead-letter lines rest on equals a plain count,
/// at every length and alignment, with bytes one bit away from LF (0x0B, 0x8A, 0x0E…) around.
@Suite struct LineCountTests {
    @Test func countsEveryLineFeedAndNothingElse() {
        var state: UInt64 = 99
        let alphabet: [UInt8] = [0x0A, 0x0A, 0x8A, 0x0B, 0x0E, 0x1A, 0x2A, 0x4A, 0x0A, 0x00, 0xFF, 0x41]
        for length in 0..<300 {
            var bytes: [UInt8] = []
            for _ in 0..<(length + 7) {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            for offset in 0..<8 {
                // A slice of the same storage, so the words start at every alignment.
                let counted = bytes.withUnsafeBytes { FileSourceReader.countLines(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + length)])) }
                #expect(counted == bytes[offset..<(offset + length)].filter { $0 == 0x0A }.count, "length \(length), offset \(offset)")
            }
        }
    }

    /// Every byte an LF, past the 255 blocks of 32 bytes a byte-wide counter may take.
    @Test func countsRunsLongerThanACounterHolds() {
        for length in [8_159, 8_160, 8_161, 8_192, 16_320, 16_353, 100_000] {
            let bytes = [UInt8](repeating: 0x0A, count: length)
            #expect(bytes.withUnsafeBytes { FileSourceReader.countLines($0) } == length)
        }
    }
}
