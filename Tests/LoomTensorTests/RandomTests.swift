import Dispatch
import Testing
@testable import LoomTensor
import LoomTestSupport

@Suite struct RandomTests {
    @Test func philoxKnownAnswers() {
        // Random123's published test vectors for Philox4x32-10.
        let zero = RandomGenerator(seed: 0).block(stream: 0, counter: 0)
        #expect(zero == SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
        let ones = RandomGenerator(seed: UInt64.max).block(stream: UInt64.max, counter: UInt64.max)
        #expect(ones == SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd))
        let pi = RandomGenerator(seed: 0x299f_31d0_a409_3822).block(stream: 0x0370_7344_1319_8a2e,
                                                                     counter: 0x85a3_08d3_243f_6a88)
        #expect(pi == SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1))
    }

    @Test func uniformDrawsAreTheirBlocksWords() {
        // fillUniform computes eight blocks at a time; element i must still be word i mod 4 of
        // block i / 4 (whose words the known answers check), at any offset and length, and
        // across a counter whose low 32 bits wrap.
        let generator = RandomGenerator(seed: 99)
        for first: UInt64 in [0, 1, 2, 3, 5, (1 << 34) - 37] {
            for n in [0, 1, 31, 32, 33, 100, 1000] {
                var out = [Float](repeating: .nan, count: n)
                out.withUnsafeMutableBufferPointer { generator.fillUniform($0, stream: 5, first: first, low: -2, high: 6) }
                let expected = (0..<n).map { i -> Float in
                    let e = first + UInt64(i)
                    return Float(generator.block(stream: 5, counter: e >> 2)[Int(e & 3)] >> 8) * (8 / 16_777_216) - 2
                }
                #expect(out == expected, "first \(first), n \(n)")
            }
        }
    }

    static func moments(_ t: Tensor) -> (mean: Double, variance: Double) {
        let v = t.scalars.map(Double.init)
        let m = v.reduce(0, +) / Double(v.count)
        return (m, v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count))
    }

    @Test func distributionsHaveTheirMoments() {
        let n = 1_000_000
        let generator = RandomGenerator(seed: 2024)
        // With n = 1e6 the standard error of a mean is sigma / 1000: bounds are 5 standard errors.
        let u = Tensor.randomUniform([n], low: -1, high: 3, generator: generator)
        let (um, uv) = Self.moments(u)
        #expect(abs(um - 1) < 5 * (16.0 / 12).squareRoot() / 1000)
        #expect(abs(uv - 16.0 / 12) < 0.01)
        #expect(u.scalars.allSatisfy { $0 >= -1 && $0 < 3 })

        let z = Tensor.randomNormal([n], mean: 2, stddev: 0.5, generator: generator, stream: 1)
        let (zm, zv) = Self.moments(z)
        #expect(abs(zm - 2) < 5 * 0.5 / 1000)
        #expect(abs(zv - 0.25) < 0.0025)
        let within1 = Double(z.scalars.filter { abs($0 - 2) < 0.5 }.count) / Double(n)
        #expect(abs(within1 - 0.682689) < 0.003)

        // Truncated at two standard deviations: variance 1 - 2·2φ(2) / (2Φ(2) - 1) = 0.773741.
        let t = Tensor.truncatedNormal([n], mean: 0, stddev: 3, generator: generator, stream: 2)
        let (tm, tv) = Self.moments(t)
        #expect(t.scalars.allSatisfy { abs($0) <= 6 })
        #expect(abs(tm) < 5 * 3 * 0.88 / 1000)
        #expect(abs(tv / 9 - 0.773741) < 0.005)
    }

    @Test func streamsDoNotDependOnHowDrawsAreSplit() {
        let generator = RandomGenerator(seed: 7)
        let n = 100_003
        let whole = Tensor.randomNormal([n], generator: generator, stream: 3).scalars
        let wholeTruncated = Tensor.truncatedNormal([n], generator: generator, stream: 3).scalars
        let wholeUniform = Tensor.randomUniform([n], low: -1, high: 3, generator: generator, stream: 3).scalars
        for parts in [2, 3, 7] {
            let pieces = SplitBuffers(count: n)
            let size = (n + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let first = p * size, last = Swift.min(n, first + size)
                guard first < last else { return }
                generator.fillNormal(pieces.slice(first, last, 0), stream: 3, first: UInt64(first))
                generator.fillTruncatedNormal(pieces.slice(first, last, 1), stream: 3, first: UInt64(first))
                generator.fillUniform(pieces.slice(first, last, 2), stream: 3, first: UInt64(first), low: -1, high: 3)
            }
            #expect(pieces.values(0) == whole, "normal split in \(parts)")
            #expect(pieces.values(1) == wholeTruncated, "truncated split in \(parts)")
            #expect(pieces.values(2) == wholeUniform, "uniform split in \(parts)")
        }
        #expect(Tensor.randomNormal([8], generator: RandomGenerator(seed: 8)).scalars != Array(whole[0..<8]))
        #expect(Tensor.randomNormal([8], generator: generator, stream: 4).scalars != Array(whole[0..<8]))
    }
}

/// Three output buffers that threads fill in disjoint ranges.
final class SplitBuffers: @unchecked Sendable {
    private let storage: [UnsafeMutableBufferPointer<Float>]
    init(count: Int) { storage = (0..<3).map { _ in .allocate(capacity: count) } }
    deinit { storage.forEach { $0.deallocate() } }
    func slice(_ first: Int, _ last: Int, _ k: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: storage[k][first..<last])
    }
    func values(_ k: Int) -> [Float] { Array(storage[k]) }
}
