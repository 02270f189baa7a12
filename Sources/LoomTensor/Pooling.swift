/// Max and average pooling over 1 to 3 spatial axes, channels last, with their VJPs.
/// Windows are the convolution geometry's receptive fields; padded taps never count (max pooling
/// ignores them, average pooling divides by the taps inside the input, as TensorFlow and Keras do).
extension Tensor {
    /// Max over each window: input [N, spatial..., C] to [N, out..., C]. The gradient goes to
    /// the first maximum of each window. With `paddingIsZero`, padded taps count as zeros (a
    /// ZeroPadding layer before a valid pooling, run as one op), and a window whose maximum is
    /// such a zero passes no gradient back.
    public func maxPool(_ g: ConvolutionGeometry, paddingIsZero: Bool = false) -> Tensor {
        let batch = shape[0], c = g.channels, taps = g.kernel.reduce(1, *)
        let positions = g.output.reduce(1, *)
        let windows = DisjointWindows(g)
        let outShape = [batch] + g.output.suffix(from: 3 - spatialRank(g)) + [c]
        var out = windows != nil ? Tensor(uninitializedShape: outShape) : Tensor(repeating: -.infinity, shape: outShape)
        // For each output cell, the input offset its maximum came from: `none` before its first
        // tap, `padWon` when a padded zero is the maximum.
        let argmax = IndexBuffer(count: batch * positions * c)
        let none: Int32 = -1, padWon: Int32 = -2
        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!, a = argmax.base
                if let windows {
                    // Each window's maximum and its position kept in registers over the taps.
                    windows.forEachWindow(batch: batch) { cell, first, tapOffsets in
                        let o = cell * c
                        var k = 0
                        while k + 8 <= c {
                            var best = Vec(repeating: -.infinity), at = SIMD8<Int32>(repeating: -1)
                            for tap in tapOffsets {
                                let i = first + tap + k, v = load(s + i)
                                let wins = v .> best
                                best = best.replacing(with: v, where: wins)
                                at = at.replacing(with: SIMD8<Int32>(repeating: Int32(i)) &+ lanes, where: wins)
                            }
                            store(best, d + o + k)
                            UnsafeMutableRawPointer(a + o + k).storeBytes(of: at, as: SIMD8<Int32>.self)
                            k += 8
                        }
                        while k < c {
                            var best: Float = 0, at: Int32 = -1
                            for tap in tapOffsets {
                                let i = first + tap + k
                                if at < 0 || s[i] > best { best = s[i]; at = Int32(i) }
                            }
                            d[o + k] = best
                            a[o + k] = at
                            k += 1
                        }
                    }
                    return
                }
                forEachPatchRun(g, batch: batch) { o, i in
                    let cell = (o / (taps * c)) * c
                    guard let i else {
                        guard paddingIsZero else { return }
                        // A zero in tap order, won from no input cell (`padWon`).
                        for k in 0..<c where 0 > d[cell + k] || a[cell + k] == none {
                            d[cell + k] = 0
                            a[cell + k] = padWon
                        }
                        return
                    }
                    var k = 0
                    // Eight channels at a time: keep the larger value and where it came from.
                    while k + 8 <= c {
                        let v = load(s + i + k), current = load(d + cell + k)
                        let wins = v .> current
                        store(current.replacing(with: v, where: wins), d + cell + k)
                        let indices = UnsafeMutableRawPointer(a + cell + k)
                        let old = indices.loadUnaligned(as: SIMD8<Int32>.self)
                        let fresh = SIMD8<Int32>(repeating: Int32(i + k)) &+ lanes
                        indices.storeBytes(of: old.replacing(with: fresh, where: wins), as: SIMD8<Int32>.self)
                        k += 8
                    }
                    while k < c {
                        if s[i + k] > d[cell + k] || a[cell + k] == none {
                            d[cell + k] = s[i + k]
                            a[cell + k] = Int32(i + k)
                        }
                        k += 1
                    }
                }
            }
        }
        let inputShape = shape
        // Disjoint windows that cover the input exactly give every input cell one window: its
        // gradient is written once, with no zeroing pass before.
        let tiles = windows.map { _ in (0..<3).allSatisfy { g.output[$0] * g.kernel[$0] == g.input[$0] } } ?? false
        return Tensor.record("maxPool", out, [self]) { grad in
            var dx = tiles ? Tensor(uninitializedShape: inputShape) : Tensor.zeros(inputShape)
            grad.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    let gs = gp.baseAddress!, d = dp.baseAddress!, a = argmax.base
                    guard tiles, let windows else {
                        for cell in 0..<gp.count where a[cell] >= 0 { d[Int(a[cell])] += gs[cell] }
                        return
                    }
                    windows.forEachWindow(batch: inputShape[0]) { cell, first, tapOffsets in
                        let o = cell * c
                        for tap in tapOffsets {
                            let i = first + tap
                            var k = 0
                            while k + 8 <= c {
                                let winners = UnsafeRawPointer(a + o + k).loadUnaligned(as: SIMD8<Int32>.self)
                                let here = SIMD8<Int32>(repeating: Int32(i + k)) &+ lanes
                                store(Vec().replacing(with: load(gs + o + k), where: winners .== here), d + i + k)
                                k += 8
                            }
                            while k < c {
                                d[i + k] = a[o + k] == Int32(i + k) ? gs[o + k] : 0
                                k += 1
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// Mean over each window's taps that fall inside the input.
    public func averagePool(_ g: ConvolutionGeometry) -> Tensor {
        let batch = shape[0], c = g.channels, taps = g.kernel.reduce(1, *)
        let positions = g.output.reduce(1, *)
        var out = Tensor.zeros([batch] + g.output.suffix(from: 3 - spatialRank(g)) + [c])
        var counts = [Float](repeating: 0, count: batch * positions)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                forEachPatchRun(g, batch: batch) { o, i in
                    guard let i else { return }
                    let position = o / (taps * c)
                    counts[position] += 1
                    binaryLoop(d + position * c, 1, s + i, 1, d + position * c, c) { $0 + $1 }
                }
                for p in 0..<(batch * positions) where counts[p] > 0 {
                    let scale = Vec(repeating: 1 / counts[p])
                    unaryLoop(d + p * c, d + p * c, c) { $0 * scale }
                }
            }
        }
        let inputShape = shape
        let windowCounts = counts
        return Tensor.record("averagePool", out, [self]) { grad in
            var dx = Tensor.zeros(inputShape)
            grad.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    let gs = gp.baseAddress!, d = dp.baseAddress!
                    forEachPatchRun(g, batch: inputShape[0]) { o, i in
                        guard let i else { return }
                        let position = o / (taps * c)
                        let scale = Vec(repeating: 1 / windowCounts[position])
                        binaryLoop(d + i, 1, gs + position * c, 1, d + i, c) { $0 + $1 * scale }
                    }
                }
            }
            return [dx]
        }
    }

    /// The number of spatial axes of this input under `g` (1 to 3).
    private func spatialRank(_ g: ConvolutionGeometry) -> Int { rank - 2 }
}

/// Pooling windows that neither overlap nor reach into padding (strides equal to the pool size,
/// no padding, no dilation: Keras's default pooling), walked window by window with plain
/// integers instead of tap by tap through `forEachPatchRun`.
struct DisjointWindows {
    let g: ConvolutionGeometry
    /// Each tap's input offset from its window's first, in `forEachPatchRun`'s order.
    let tapOffsets: [Int]

    init?(_ g: ConvolutionGeometry) {
        guard g.strides == g.kernel, g.dilation == [1, 1, 1], g.padBefore == [0, 0, 0], g.padAfter == [0, 0, 0] else { return nil }
        self.g = g
        var offsets: [Int] = []
        for kd in 0..<g.kernel[0] {
            for kh in 0..<g.kernel[1] {
                for kw in 0..<g.kernel[2] { offsets.append(((kd * g.input[1] + kh) * g.input[2] + kw) * g.channels) }
            }
        }
        tapOffsets = offsets
    }

    /// Calls `body(cell, first, tapOffsets)` for each output cell in order, with the input offset
    /// of its window's first tap.
    @inline(__always)
    func forEachWindow(batch: Int, _ body: (Int, Int, UnsafeBufferPointer<Int>) -> Void) {
        let (outD, outH, outW) = (g.output[0], g.output[1], g.output[2])
        let (inD, inH, inW) = (g.input[0], g.input[1], g.input[2])
        let (kD, kH, kW) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let c = g.channels
        tapOffsets.withUnsafeBufferPointer { taps in
            var cell = 0
            for n in 0..<batch {
                for od in 0..<outD {
                    for oh in 0..<outH {
                        for ow in 0..<outW {
                            body(cell, (((n * inD + od * kD) * inH + oh * kH) * inW + ow * kW) * c, taps)
                            cell += 1
                        }
                    }
                }
            }
        }
    }
}

/// A fixed buffer of Int32 indices shared by a pooling op and its pullback (written once,
/// in the forward pass, then only read).
final class IndexBuffer: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int32>
    private let storage: UnsafeMutablePointer<Float>
    private let capacity: Int
    init(count: Int) {
        // Int32 and Float have one size: the buffer cache serves both.
        let count = max(count, 1)
        (storage, capacity) = BufferCache.shared.take(count)
        base = UnsafeMutableRawPointer(storage).bindMemory(to: Int32.self, capacity: count)
        base.initialize(repeating: -1, count: count)
    }
    deinit {
        UnsafeMutableRawPointer(storage).bindMemory(to: Float.self, capacity: capacity)
        BufferCache.shared.give(storage, capacity: capacity)
    }
}
