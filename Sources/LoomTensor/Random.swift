import CLoomSIMD
#if canImport(Glibc)
import Glibc
#endif

/// A counter-based random generator (Philox4x32-10, Salmon et al. 2011): each block of four
/// 32-bit values is a pure function of (key, counter). Element i of a draw always comes from
/// counter i of the draw's stream, so a tensor's values never depend on which thread draws
/// which part, or in what order.
public struct RandomGenerator: Sendable, Hashable {
    /// The seed, used as the Philox key.
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The four 32-bit words for `counter` in `stream`.
    @inline(__always)
    public func block(stream: UInt64, counter: UInt64) -> SIMD4<UInt32> {
        var c0 = UInt32(truncatingIfNeeded: counter), c1 = UInt32(truncatingIfNeeded: counter >> 32)
        var c2 = UInt32(truncatingIfNeeded: stream), c3 = UInt32(truncatingIfNeeded: stream >> 32)
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0
            let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1
            c1 = UInt32(truncatingIfNeeded: p1)
            c3 = UInt32(truncatingIfNeeded: p0)
            c0 = n0
            c2 = n2
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return SIMD4(c0, c1, c2, c3)
    }

    /// Uniform values in [low, high) for elements first..<first+n of `stream`, written to `out`.
    /// Element i is word (i mod 4) of block i / 4, so each block serves four elements.
    public func fillUniform(_ out: UnsafeMutableBufferPointer<Float>, stream: UInt64 = 0, first: UInt64 = 0,
                            low: Float = 0, high: Float = 1) {
        guard let base = out.baseAddress else { return }
        // A word w maps to Float(w >> 8) · ((high - low) / 2^24) + low.
        let unitScale = (high - low) / 16_777_216.0
        let n = out.count
        // Elements up to the first that starts a block, and after the last run of eight
        // whole blocks, one block at a time.
        func fillByBlock(_ range: Range<Int>) {
            var i = range.lowerBound
            while i < range.upperBound {
                let index = first + UInt64(i)
                let words = block(stream: stream, counter: index >> 2)
                var lane = Int(index & 3)
                while lane < 4 && i < range.upperBound {
                    base[i] = Float(words[lane] >> 8) * unitScale + low
                    lane += 1
                    i += 1
                }
            }
        }
        let head = Swift.min(n, Int((4 - (first & 3)) & 3))
        fillByBlock(0..<head)
        var i = head
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 32) { words in
            let w = words.baseAddress!
            while i + 32 <= n {
                loom_philox8(seed, stream, (first + UInt64(i)) >> 2, w)
                let o = base + i
                for j in 0..<32 { o[j] = Float(Int32(truncatingIfNeeded: w[j] >> 8)) * unitScale + low }
                i += 32
            }
        }
        fillByBlock(i..<n)
    }

    /// Standard normal values (Box-Muller on the block's first two words) for elements
    /// first..<first+n of `stream`, scaled to mean and stddev.
    public func fillNormal(_ out: UnsafeMutableBufferPointer<Float>, stream: UInt64 = 0, first: UInt64 = 0,
                           mean: Float = 0, stddev: Float = 1) {
        for i in 0..<out.count {
            out[i] = mean + stddev * normal(stream: stream, counter: first + UInt64(i), attempt: 0)
        }
    }

    /// Normal values redrawn until within two standard deviations of the mean (Keras's and
    /// TensorFlow's truncated normal). Redraws use further attempts of the same element's
    /// counter, so they stay a function of (seed, element).
    public func fillTruncatedNormal(_ out: UnsafeMutableBufferPointer<Float>, stream: UInt64 = 0, first: UInt64 = 0,
                                    mean: Float = 0, stddev: Float = 1) {
        for i in 0..<out.count {
            var attempt: UInt64 = 0
            var z = normal(stream: stream, counter: first + UInt64(i), attempt: attempt)
            while Swift.abs(z) > 2 {
                attempt += 1
                z = normal(stream: stream, counter: first + UInt64(i), attempt: attempt)
            }
            out[i] = mean + stddev * z
        }
    }

    /// One standard normal for an element: attempts are spread over the high bits of the counter.
    @inline(__always)
    func normal(stream: UInt64, counter: UInt64, attempt: UInt64) -> Float {
        let b = block(stream: stream, counter: counter | (attempt << 48))
        // u1 in (0, 1] so the logarithm is finite.
        let u1 = (Double(b[0]) + 1) / 4_294_967_296.0
        let u2 = Double(b[1]) / 4_294_967_296.0
        return Float((-2 * Glibc.log(u1)).squareRoot() * Glibc.cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Uniform values in [low, high) from `generator`'s `stream`.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     generator: RandomGenerator, stream: UInt64 = 0) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { generator.fillUniform($0, stream: stream, low: low, high: high) }
        return t
    }

    /// Normal values from `generator`'s `stream`.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, stddev: Float = 1,
                                    generator: RandomGenerator, stream: UInt64 = 0) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { generator.fillNormal($0, stream: stream, mean: mean, stddev: stddev) }
        return t
    }

    /// Normal values truncated to two standard deviations from `generator`'s `stream`.
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, stddev: Float = 1,
                                       generator: RandomGenerator, stream: UInt64 = 0) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        t.withUnsafeMutableBufferPointer { generator.fillTruncatedNormal($0, stream: stream, mean: mean, stddev: stddev) }
        return t
    }
}
