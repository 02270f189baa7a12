/// Batch normalization over the last axis as single ops with hand-written VJPs.
///
/// Composed from elementwise ops, a training-mode batch normalization made and kept five
/// tensors the size of its input (x - mean, its square, the normalized x, times gamma, plus
/// beta); on ResNet50 that was most of the memory of a step. Here the forward pass reads its
/// input three times and writes the output once, and keeps only the input and two per-channel
/// vectors for the backward pass.
extension Tensor {
    /// y = x · scale + shift per channel (the last axis), then max(y, 0) with `relu`: batch
    /// normalization with fixed statistics, folded. `scale` and `shift` are [C] and must not
    /// require gradients; the gradient flows to `x` only.
    public func channelAffine(scale: Tensor, shift: Tensor, relu: Bool = false) -> Tensor {
        let c = shape.last ?? 1
        precondition(scale.shape == [c] && shift.shape == [c],
                     "channelAffine: scale \(scale.shape) and shift \(shift.shape) for \(c) channels")
        precondition(!scale.requiresGradient && !shift.requiresGradient, "channelAffine: scale and shift are constants")
        let rows = c == 0 ? 0 : count / c
        let out = affined(scale: scale, shift: shift, relu: relu)
        // The ReLU's mask is made again from the input, which is kept in its place only when the
        // mask needs it; a reader of the output may make it again too.
        let x = relu ? detached : Tensor.zeros([0])
        let rebuild: (@Sendable () -> Tensor)? = relu ? { @Sendable in x.affined(scale: scale, shift: shift, relu: true) } : nil
        return Tensor.record("channel_affine", out, [self], rebuild: rebuild) { grad in
            let g = relu ? grad.maskedWherePositive(affineOf: x, scale: scale, shift: shift) : grad
            var dx = Tensor(uninitializedShape: grad.shape)
            g.withUnsafeBufferPointer { gs in
                scale.withUnsafeBufferPointer { a in
                    dx.withUnsafeMutableBufferPointer { ds in
                        for r in 0..<rows {
                            binaryLoop(gs.baseAddress! + r * c, 1, a.baseAddress!, 1, ds.baseAddress! + r * c, c) { $0 * $1 }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// x · scale + shift per channel of the last axis (then max(·, 0) with `relu`), recording
    /// nothing: the forward pass both normalizations share.
    private func affined(scale: Tensor, shift: Tensor, relu: Bool) -> Tensor {
        let c = shape.last ?? 1
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { xs in
            scale.withUnsafeBufferPointer { a in
                shift.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { ys in
                        affineRows(xs.baseAddress!, ys.baseAddress!, rows: c == 0 ? 0 : count / c, channels: c,
                                   a.baseAddress!, b.baseAddress!, relu: relu)
                    }
                }
            }
        }
        return out
    }

    /// Batch normalization with the batch's own statistics over every axis but the last:
    /// y = (x - mean) / sqrt(variance + epsilon) · gamma + beta, then max(y, 0) with `relu`.
    /// Returns y with the mean and (biased) variance, each [C]. With `group`, the statistics
    /// are those of the whole batch split across its workers, and so is the backward pass's.
    /// Gradients flow to x, gamma and beta.
    public func batchNormalized(gamma: Tensor?, beta: Tensor?, epsilon: Float, relu: Bool = false,
                                group: ShardGroup? = nil, worker: Int = 0) throws -> (y: Tensor, mean: Tensor, variance: Tensor) {
        let c = shape.last ?? 1
        precondition(gamma.map { $0.shape == [c] } ?? true && beta.map { $0.shape == [c] } ?? true,
                     "batchNormalized: gamma and beta must be [\(c)]")
        let rows = c == 0 ? 0 : count / c
        @Sendable func allSum(_ t: Tensor) throws -> Tensor {
            guard let group, group.workers > 1 else { return t }
            return try group.sum(t, worker: worker)
        }
        let x = detached
        // The mean: the channel sums with the row count in one all-reduce.
        var local = Tensor(uninitializedShape: [c + 1])
        local.withUnsafeMutableBufferPointer { s in
            x.withUnsafeBufferPointer { xs in channelSums(xs.baseAddress!, rows: rows, channels: c, into: s.baseAddress!) { v, _ in v } }
            s[c] = Float(rows)
        }
        let totals = try allSum(local)
        let n = totals.storage.base[c]
        let mean = Tensor(shape: [c], scalars: (0..<c).map { totals.storage.base[$0] / Swift.max(n, 1) })
        // The variance from a second pass about the mean (one pass of squares loses precision).
        var squares = Tensor(uninitializedShape: [c])
        squares.withUnsafeMutableBufferPointer { s in
            x.withUnsafeBufferPointer { xs in
                mean.withUnsafeBufferPointer { m in
                    let mp = m.baseAddress!
                    channelSums(xs.baseAddress!, rows: rows, channels: c, into: s.baseAddress!) { v, j in
                        let d = v - loadLanes(mp + j, Swift.min(8, c - j)); return d * d
                    }
                }
            }
        }
        let variance = try allSum(squares) / Swift.max(n, 1)
        let inverse = (variance + epsilon).rsqrt()
        let g = gamma?.detached, scale = g.map { inverse * $0 } ?? inverse
        let shift = (beta?.detached ?? Tensor.zeros([c])) - mean * scale
        let out = x.affined(scale: scale, shift: shift, relu: relu)
        let needGamma = gamma?.requiresGradient ?? false, needBeta = beta?.requiresGradient ?? false
        var inputs = [self]
        if let gamma { inputs.append(gamma) }
        if let beta { inputs.append(beta) }
        // The output is not kept: the ReLU's mask is made again from the input, and so is the
        // output itself for a reader that needs it in its backward pass (the next convolution).
        // The input as the backward pass will read it (made again, when what made it can).
        let hasGamma = gamma != nil, hasBeta = beta != nil, saved = SavedInput(self)
        let y = Tensor.record("batch_normalization", out, inputs, rebuild: { saved.value.affined(scale: scale, shift: shift, relu: relu) }) { grad in
            let x = saved.value
            // Through the ReLU, then per channel: Σ dy and Σ dy · x̂ (x̂ = (x - mean) · inverse).
            let masked = relu ? grad.maskedWherePositive(affineOf: x, scale: scale, shift: shift) : grad
            var sums = Tensor(uninitializedShape: [2 * c])
            sums.withUnsafeMutableBufferPointer { s in
                masked.withUnsafeBufferPointer { gs in
                    x.withUnsafeBufferPointer { xs in
                        mean.withUnsafeBufferPointer { m in
                            inverse.withUnsafeBufferPointer { inv in
                                channelSumsOfProducts(gs.baseAddress!, xs.baseAddress!, rows: rows, channels: c,
                                                      mean: m.baseAddress!, inverse: inv.baseAddress!,
                                                      sums: s.baseAddress!, products: s.baseAddress! + c)
                            }
                        }
                    }
                }
            }
            // Gamma's and beta's gradients are this worker's share (the trainer adds them up);
            // x's needs the whole batch's sums.
            let dBeta = needBeta ? sums.slice(lower: [0], upper: [c]) : nil
            let dGamma = needGamma ? sums.slice(lower: [c], upper: [2 * c]) : nil
            let whole = (try? allSum(sums)) ?? sums
            // dx = scale · (dy - Σdy / n - x̂ · Σ(dy · x̂) / n)
            var dx = Tensor(uninitializedShape: x.shape)
            let invN = 1 / Swift.max(n, 1)
            dx.withUnsafeMutableBufferPointer { ds in
                masked.withUnsafeBufferPointer { gs in
                    x.withUnsafeBufferPointer { xs in
                        mean.withUnsafeBufferPointer { m in
                            inverse.withUnsafeBufferPointer { inv in
                                scale.withUnsafeBufferPointer { a in
                                    whole.withUnsafeBufferPointer { w in
                                        normalizationInputGradient(gs.baseAddress!, xs.baseAddress!, ds.baseAddress!, rows: rows,
                                                                   channels: c, mean: m.baseAddress!, inverse: inv.baseAddress!,
                                                                   scale: a.baseAddress!, sums: w.baseAddress!,
                                                                   products: w.baseAddress! + c, invN: invN)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var result: [Tensor?] = [dx]
            if hasGamma { result.append(dGamma) }
            if hasBeta { result.append(dBeta) }
            return result
        }
        return (y, mean, variance)
    }
}

extension Tensor {
    /// This gradient where x · scale + shift (per channel) is positive, 0 elsewhere: the
    /// gradient through a ReLU applied to that affine map, from its input.
    func maskedWherePositive(affineOf x: Tensor, scale: Tensor, shift: Tensor) -> Tensor {
        let c = shape.last ?? 1, rows = c == 0 ? 0 : count / c
        var out = Tensor(uninitializedShape: shape)
        withUnsafeBufferPointer { gs in
            out.withUnsafeMutableBufferPointer { ds in
                let g = gs.baseAddress!, d = ds.baseAddress!, xs = x.storage.base, a = scale.storage.base, b = shift.storage.base
                for r in 0..<rows {
                    var j = 0
                    while j < c {
                        let lanes = Swift.min(8, c - j), at = r * c + j
                        let v = affineLanes(xs + at, a + j, b + j, lanes)
                        storeLanes(loadLanes(g + at, lanes).replacing(with: 0, where: v .<= 0), d + at, lanes)
                        j += 8
                    }
                }
            }
        }
        return out
    }
}

/// x · a + b over `lanes` lanes: the one expression the forward pass and the masks made again
/// from its input both use, so they agree to the bit.
@inline(__always)
private func affineLanes(_ x: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ lanes: Int) -> Vec {
    loadLanes(x, lanes) * loadLanes(a, lanes) + loadLanes(b, lanes)
}

/// y[r, j] = x[r, j] · a[j] + b[j] over `rows` rows of `channels`, then max(y, 0) with `relu`.
private func affineRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, channels c: Int,
                        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, relu: Bool) {
    for r in 0..<rows {
        let xr = x + r * c, yr = y + r * c
        var j = 0
        while j < c {
            let lanes = Swift.min(8, c - j)
            var v = affineLanes(xr + j, a + j, b + j, lanes)
            if relu { v = vmax(v, Vec()) }
            storeLanes(v, yr + j, lanes)
            j += 8
        }
    }
}

/// s[j] = Σ over rows of f(x[r, j..<j+8], j), lane by lane. Rows are read in order (each
/// once), summed into a partial per block of rows so a long sum loses little precision.
@inline(__always)
private func channelSums(_ x: UnsafePointer<Float>, rows: Int, channels c: Int, into s: UnsafeMutablePointer<Float>,
                         _ f: (Vec, Int) -> Vec) {
    s.initialize(repeating: 0, count: c)
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: c)
    defer { partial.deallocate() }
    var start = 0
    while start < rows {
        partial.initialize(repeating: 0, count: c)
        for r in start..<Swift.min(rows, start + rowBlock) {
            var j = 0
            while j < c {
                let lanes = Swift.min(8, c - j)
                storeLanes(loadLanes(partial + j, lanes) + f(loadLanes(x + r * c + j, lanes), j), partial + j, lanes)
                j += 8
            }
        }
        binaryLoop(s, 1, partial, 1, s, c) { $0 + $1 }
        start += rowBlock
    }
}

/// Rows summed into one partial before it is added to the total.
private let rowBlock = 64

/// Per channel: sums[j] = Σ g, products[j] = Σ g · (x - mean) · inverse.
private func channelSumsOfProducts(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, channels c: Int,
                                   mean: UnsafePointer<Float>, inverse: UnsafePointer<Float>,
                                   sums: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>) {
    sums.initialize(repeating: 0, count: c)
    products.initialize(repeating: 0, count: c)
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c)
    defer { partial.deallocate() }
    var start = 0
    while start < rows {
        partial.initialize(repeating: 0, count: 2 * c)
        for r in start..<Swift.min(rows, start + rowBlock) {
            var j = 0
            while j < c {
                let lanes = Swift.min(8, c - j)
                let gv = loadLanes(g + r * c + j, lanes)
                let xhat = (loadLanes(x + r * c + j, lanes) - loadLanes(mean + j, lanes)) * loadLanes(inverse + j, lanes)
                storeLanes(loadLanes(partial + j, lanes) + gv, partial + j, lanes)
                storeLanes(loadLanes(partial + c + j, lanes) + gv * xhat, partial + c + j, lanes)
                j += 8
            }
        }
        binaryLoop(sums, 1, partial, 1, sums, c) { $0 + $1 }
        binaryLoop(products, 1, partial + c, 1, products, c) { $0 + $1 }
        start += rowBlock
    }
}

/// dx = scale · (g - sums / n - x̂ · products / n), with x̂ = (x - mean) · inverse.
private func normalizationInputGradient(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                                        rows: Int, channels c: Int, mean: UnsafePointer<Float>, inverse: UnsafePointer<Float>,
                                        scale: UnsafePointer<Float>, sums: UnsafePointer<Float>, products: UnsafePointer<Float>,
                                        invN: Float) {
    for r in 0..<rows {
        var j = 0
        while j < c {
            let lanes = Swift.min(8, c - j)
            let xhat = (loadLanes(x + r * c + j, lanes) - loadLanes(mean + j, lanes)) * loadLanes(inverse + j, lanes)
            let v = loadLanes(scale + j, lanes) * (loadLanes(g + r * c + j, lanes) - loadLanes(sums + j, lanes) * invN
                                                      - xhat * (loadLanes(products + j, lanes) * invN))
            storeLanes(v, dx + r * c + j, lanes)
            j += 8
        }
    }
}
