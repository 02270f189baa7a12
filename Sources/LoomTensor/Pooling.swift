/// Max and average pooling over 1 to 3 spatial axes, channels last, with their VJPs.
/// Windows are the convolution geometry's receptive fields; padded taps never count (max pooling
/// ignores them, average pooling divides by the taps inside the input, as TensorFlow and Keras do).
extension Tensor {
    /// Max over each window: input [N, spatial..., C] to [N, out..., C]. The gradient goes to
    /// the first maximum of each window.
    public func maxPool(_ g: ConvolutionGeometry) -> Tensor {
        let batch = shape[0], c = g.channels, taps = g.kernel.reduce(1, *)
        let positions = g.output.reduce(1, *)
        var out = Tensor(repeating: -.infinity, shape: [batch] + g.output.suffix(from: 3 - spatialRank(g)) + [c])
        // For each output cell, the input offset its maximum came from.
        let argmax = IndexBuffer(count: batch * positions * c)
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!, a = argmax.base
                let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
                forEachPatchRun(g, batch: batch) { o, i in
                    guard let i else { return }
                    let cell = (o / (taps * c)) * c
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
                        if s[i + k] > d[cell + k] || a[cell + k] < 0 {
                            d[cell + k] = s[i + k]
                            a[cell + k] = Int32(i + k)
                        }
                        k += 1
                    }
                }
            }
        }
        let inputShape = shape
        // Windows that tile the input exactly (strides = pool, no padding) give every input cell
        // one window: its gradient is written once, with no zeroing pass before.
        var tiling = true
        for axis in 0..<3 {
            let covers = g.output[axis] * g.kernel[axis] == g.input[axis]
            tiling = tiling && covers && g.strides[axis] == g.kernel[axis] && g.dilation[axis] == 1 && g.padBefore[axis] == 0
        }
        let tiles = tiling
        return Tensor.record("maxPool", out, [self]) { grad in
            var dx = tiles ? Tensor(uninitializedShape: inputShape) : Tensor.zeros(inputShape)
            grad.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    let gs = gp.baseAddress!, d = dp.baseAddress!, a = argmax.base
                    guard tiles else {
                        for cell in 0..<gp.count where a[cell] >= 0 { d[Int(a[cell])] += gs[cell] }
                        return
                    }
                    let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
                    forEachPatchRun(g, batch: inputShape[0]) { o, i in
                        guard let i else { return }
                        let cell = (o / (taps * c)) * c
                        var k = 0
                        while k + 8 <= c {
                            let winners = UnsafeRawPointer(a + cell + k).loadUnaligned(as: SIMD8<Int32>.self)
                            let here = SIMD8<Int32>(repeating: Int32(i + k)) &+ lanes
                            store(Vec().replacing(with: load(gs + cell + k), where: winners .== here), d + i + k)
                            k += 8
                        }
                        while k < c {
                            d[i + k] = a[cell + k] == Int32(i + k) ? gs[cell + k] : 0
                            k += 1
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

/// A fixed buffer of Int32 indices shared by a pooling op and its pullback (written once,
/// in the forward pass, then only read).
final class IndexBuffer: @unchecked Sendable {
    let base: UnsafeMutablePointer<Int32>
    private let storage: UnsafeMutablePointer<Float>
    private let count: Int
    init(count: Int) {
        // Int32 and Float have one size: the buffer cache serves both.
        self.count = max(count, 1)
        storage = BufferCache.shared.take(self.count)
        base = UnsafeMutableRawPointer(storage).bindMemory(to: Int32.self, capacity: self.count)
        base.initialize(repeating: -1, count: self.count)
    }
    deinit {
        UnsafeMutableRawPointer(storage).bindMemory(to: Float.self, capacity: count)
        BufferCache.shared.give(storage, count)
    }
}
