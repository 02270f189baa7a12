/// Convolution as one op with a hand-written VJP: Winograd F(2x2, 3x3) for 3x3 stride-1 kernels
/// over enough channels (Winograd.swift), otherwise im2col and sgemm over chunks of the batch, so
/// a chunk's patch matrix stays in cache; only a small one is kept whole for the backward pass.
extension Tensor {
    /// Patch-matrix floats per chunk (1 MiB): one MNIST-sized image per chunk for a 3x3x32 kernel.
    static let convolutionChunkFloats = 1 << 18

    /// The most patch-matrix floats a convolution keeps from its forward pass for the kernel
    /// gradient (16 MiB).
    static let keptPatchesBudget = 4 << 20

    /// A 1x1 convolution over at most this many input channels offers to make its output again
    /// (`SavedInput`): at 2·C flops an element, doing it again costs less than keeping 4 bytes
    /// an element through the whole step. On ResNet50 these are the first stage's widening
    /// products, whose outputs are the largest the step keeps.
    static let rebuiltProductChannels = 64

    /// y[N, out..., F] = patches(x) · kernel (+ bias), with x [N, spatial..., C] (channels
    /// last), kernel holding [taps · C, F] values (any shape ending in F, e.g. [kH, kW, C, F])
    /// and bias [F]. With `relu`, max(y, 0) is applied chunk by chunk while the output is in
    /// cache, and the pullback masks the incoming gradient the same way.
    public func convolved(with kernel: Tensor, bias: Tensor? = nil, relu: Bool = false, _ g: ConvolutionGeometry) -> Tensor {
        let batch = shape[0], k = g.patchSize, f = kernel.shape.last ?? 0
        precondition(count == batch * g.input.reduce(1, *) * g.channels,
                     "convolved: input of shape \(shape) does not match the geometry \(g.input) x \(g.channels)")
        precondition(kernel.count == k * f, "convolved: kernel of shape \(kernel.shape) does not hold \(k) x \(f) values")
        precondition(bias.map { $0.shape == [f] } ?? true, "convolved: bias of shape \(bias!.shape) for \(f) filters")
        if let tiling = WinogradTiling(g, filters: f) {
            return winogradConvolved(with: kernel, bias: bias, relu: relu, tiling)
        }
        if g.kernel.allSatisfy({ $0 == 1 }) && g.strides.allSatisfy({ $0 == 1 })
            && g.padBefore.allSatisfy({ $0 == 0 }) && g.padAfter.allSatisfy({ $0 == 0 }) {
            return pointwiseConvolved(with: kernel, bias: bias, relu: relu, g)
        }
        return im2colConvolved(with: kernel, bias: bias, relu: relu, g)
    }

    /// A 1x1 convolution with stride 1 and no padding: the channels-last input already is the
    /// patch matrix, so it is one sgemm on the input itself (half of ResNet50's convolutions),
    /// with no patches laid out forward or folded back backward.
    func pointwiseConvolved(with kernel: Tensor, bias: Tensor?, relu: Bool, _ g: ConvolutionGeometry) -> Tensor {
        let c = g.channels, f = kernel.shape.last ?? 0
        let rows = count / Swift.max(c, 1)
        var out = Tensor(uninitializedShape: Array(shape.dropLast()) + [f])
        withUnsafeBufferPointer { xs in
            kernel.withUnsafeBufferPointer { ws in
                out.withUnsafeMutableBufferPointer { ys in
                    let y = ys.baseAddress!
                    if let bias {
                        bias.withUnsafeBufferPointer { b in
                            for row in 0..<rows { (y + row * f).update(from: b.baseAddress!, count: f) }
                        }
                    }
                    BLAS.sgemm(transposeA: false, transposeB: false, m: rows, n: f, k: c,
                               a: xs.baseAddress!, b: ws.baseAddress!, c: y, accumulate: bias != nil)
                    if relu { unaryLoop(y, y, rows * f) { vmax($0, Vec()) } }
                }
            }
        }
        // The output is kept only for the ReLU's mask (else it may be freed before the backward pass).
        let w = kernel.detached, y = relu ? out : Tensor.zeros([0])
        let needX = requiresGradient, needW = kernel.requiresGradient, needB = bias?.requiresGradient ?? false
        // The input only for the kernel's gradient.
        let input = needW ? SavedInput(self) : nil, xShape = shape
        let inputs = bias.map { [self, kernel, $0] } ?? [self, kernel]
        // Over few channels the product is cheaper to make again than its output is to keep
        // through the step: a batch normalization after it keeps the means instead. (With a
        // fused ReLU the output is kept for the mask anyway, so a reader shares it.)
        var rebuild: (@Sendable () -> Tensor)? = nil
        if let input, !relu, c <= Tensor.rebuiltProductChannels {
            let b = bias?.detached
            rebuild = { input.value.pointwiseConvolved(with: w, bias: b, relu: false, g) }
        }
        return Tensor.record("convolution", out, inputs, rebuild: rebuild) { grad in
            let dy = relu ? grad.maskedWherePositive(y) : grad
            var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
            dy.withUnsafeBufferPointer { ds in
                /// A [m, n] product into a new tensor of `shape`.
                func product(_ shape: [Int], transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                             _ a: UnsafePointer<Float>, _ b: Tensor) -> Tensor {
                    var t = Tensor(uninitializedShape: shape)
                    t.withUnsafeMutableBufferPointer { d in
                        b.withUnsafeBufferPointer { bs in
                            BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                       a: a, b: bs.baseAddress!, c: d.baseAddress!)
                        }
                    }
                    return t
                }
                // dX = dY · Wᵀ; dW = Xᵀ · dY (through dYᵀ · X transposed: A must be a pointer).
                if needX { dx = product(xShape, transposeA: false, transposeB: true, m: rows, n: c, k: f, ds.baseAddress!, w) }
                if let input {
                    dw = input.value.withUnsafeBufferPointer { xs in
                        product(w.shape, transposeA: true, transposeB: false, m: c, n: f, k: rows, xs.baseAddress!, dy)
                    }
                }
                if needB {
                    var t = Tensor.zeros([f])
                    t.withUnsafeMutableBufferPointer { b in
                        let sums = b.baseAddress!
                        for row in 0..<rows { binaryLoop(sums, 1, ds.baseAddress! + row * f, 1, sums, f) { $0 + $1 } }
                    }
                    db = t
                }
            }
            return bias == nil ? [dx, dw] : [dx, dw, db]
        }
    }

    /// `convolved(with:bias:relu:_:)` for any geometry: im2col and one sgemm per chunk of images,
    /// accumulated onto the bias written first.
    func im2colConvolved(with kernel: Tensor, bias: Tensor?, relu: Bool, _ g: ConvolutionGeometry) -> Tensor {
        let batch = shape[0], k = g.patchSize, f = kernel.shape.last ?? 0
        let positions = g.output.reduce(1, *), imageSize = g.input.reduce(1, *) * g.channels
        let chunk = Swift.max(1, Swift.min(batch, Tensor.convolutionChunkFloats / Swift.max(1, positions * k)))
        let outSpatial = Array(g.output.suffix(rank - 2))
        var out = Tensor(uninitializedShape: [batch] + outSpatial + [f])
        // When the kernel's gradient will be needed and the whole batch's patches are small
        // enough to stay in cache, they are kept for the backward pass instead of being laid out
        // twice (for large ones, re-laying them out in cache beats reading them back from memory).
        let keep = kernel.requiresGradient && batch * positions * k <= Tensor.keptPatchesBudget
        // Workspaces come from the buffer cache: the same sizes recur every step.
        var patches = Tensor(uninitializedShape: [keep ? batch * positions * k : chunk * positions * k])
        let workspace = patches.withUnsafeMutableBufferPointer { $0.baseAddress! }
        defer { withExtendedLifetime(patches) {} }
        withUnsafeBufferPointer { xs in
            kernel.withUnsafeBufferPointer { ws in
                out.withUnsafeMutableBufferPointer { ys in
                    if let bias {
                        bias.withUnsafeBufferPointer { b in
                            for row in 0..<(batch * positions) { (ys.baseAddress! + row * f).update(from: b.baseAddress!, count: f) }
                        }
                    }
                    for start in stride(from: 0, to: batch, by: chunk) {
                        let n = Swift.min(chunk, batch - start)
                        let rows = workspace + (keep ? start * positions * k : 0)
                        im2colRaw(g, batch: n, xs.baseAddress! + start * imageSize, rows)
                        let y = ys.baseAddress! + start * positions * f
                        BLAS.sgemm(transposeA: false, transposeB: false, m: n * positions, n: f, k: k,
                                   a: rows, b: ws.baseAddress!, c: y, accumulate: bias != nil)
                        if relu { unaryLoop(y, y, n * positions * f) { vmax($0, Vec()) } }
                    }
                }
            }
        }
        let w = kernel.detached, y = relu ? out : Tensor.zeros([0]), kept = keep ? patches : nil
        let needX = requiresGradient, needW = kernel.requiresGradient, needB = bias?.requiresGradient ?? false
        // The input only for the kernel's gradient, when its patches were not kept.
        let input = needW && !keep ? SavedInput(self) : nil, xShape = shape
        let inputs = bias.map { [self, kernel, $0] } ?? [self, kernel]
        return Tensor.record("convolution", out, inputs) { grad in
            // dW = Σ patchesᵀ · dY ; dX = col2im(dY · Wᵀ), chunk by chunk.
            let x = input?.value ?? Tensor.zeros([0])
            var dx: Tensor? = needX ? Tensor.zeros(xShape) : nil
            var dw: Tensor? = needW ? Tensor.zeros(w.shape) : nil
            var scratchTensor = Tensor(uninitializedShape: [chunk * positions * k])
            let scratch = scratchTensor.withUnsafeMutableBufferPointer { $0.baseAddress! }
            defer { withExtendedLifetime(scratchTensor) {} }
            // The patch gradients of a chunk accumulate onto zeros that col2im restores as it
            // consumes them, so the product needs no zeroing pass (BLAS's beta = 0 sweep).
            var patchGradientTensor = Tensor.zeros([needX ? chunk * positions * k : 1])
            let patchGradients = patchGradientTensor.withUnsafeMutableBufferPointer { $0.baseAddress! }
            defer { withExtendedLifetime(patchGradientTensor) {} }
            // Through the ReLU the gradient passes where the output is positive: masked chunk by
            // chunk into a cache-sized buffer, as are the bias sums.
            var maskedTensor = Tensor(uninitializedShape: [relu ? chunk * positions * f : 1])
            let masked = maskedTensor.withUnsafeMutableBufferPointer { $0.baseAddress! }
            defer { withExtendedLifetime(maskedTensor) {} }
            var biasGradient: Tensor? = needB ? Tensor.zeros([f]) : nil
            x.withUnsafeBufferPointer { xs in
                w.withUnsafeBufferPointer { ws in
                    grad.withUnsafeBufferPointer { gs in
                        for start in stride(from: 0, to: batch, by: chunk) {
                            let n = Swift.min(chunk, batch - start)
                            let count = n * positions * f
                            var dy = UnsafePointer(gs.baseAddress! + start * positions * f)
                            if relu {
                                binaryLoop(dy, 1, y.storage.base + start * positions * f, 1, masked, count) { gv, yv in
                                    gv.replacing(with: 0, where: yv .<= 0)
                                }
                                dy = UnsafePointer(masked)
                            }
                            if biasGradient != nil {
                                biasGradient!.withUnsafeMutableBufferPointer { b in
                                    let sums = b.baseAddress!
                                    for row in 0..<(n * positions) { binaryLoop(sums, 1, dy + row * f, 1, sums, f) { $0 + $1 } }
                                }
                            }
                            if needW {
                                let rows: UnsafePointer<Float>
                                if let kept {
                                    rows = UnsafePointer(kept.storage.base + start * positions * k)
                                } else {
                                    im2colRaw(g, batch: n, xs.baseAddress! + start * imageSize, scratch)
                                    rows = UnsafePointer(scratch)
                                }
                                dw!.withUnsafeMutableBufferPointer { d in
                                    BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: f, k: n * positions,
                                               a: rows, b: dy, c: d.baseAddress!, accumulate: true)
                                }
                            }
                            if needX {
                                BLAS.sgemm(transposeA: false, transposeB: true, m: n * positions, n: k, k: f,
                                           a: dy, b: ws.baseAddress!, c: patchGradients, accumulate: true)
                                dx!.withUnsafeMutableBufferPointer { d in
                                    col2imClearingRaw(g, batch: n, patchGradients, d.baseAddress! + start * imageSize)
                                }
                            }
                        }
                    }
                }
            }
            // dBias = Σ over every output position of dY (summed above, chunk by chunk).
            return bias == nil ? [dx, dw] : [dx, dw, biasGradient]
        }
    }
}
