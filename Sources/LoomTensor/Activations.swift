/// The math of every Keras 3 activation (keras.activations.*), with Keras's defaults and
/// formulas (the JAX backend's where they differ), each differentiable.
extension Tensor {
    /// This gradient where `output` (of a ReLU) is positive, zero elsewhere: the gradient
    /// flowing back through the ReLU that made `output`.
    func maskedWherePositive(_ output: Tensor) -> Tensor {
        var out = Tensor(uninitializedShape: shape)
        out.withUnsafeMutableBufferPointer { d in
            withUnsafeBufferPointer { gs in
                binaryLoop(gs.baseAddress!, 1, output.storage.base, 1, d.baseAddress!, gs.count) { gv, yv in
                    gv.replacing(with: 0, where: yv .<= 0)
                }
            }
        }
        return out
    }

    /// Keras's relu: x above `threshold` (0 at or below it), clipped to [0, maxValue] when a
    /// maximum is given, minus negativeSlope · max(threshold - x, 0).
    public func relu(negativeSlope: Float = 0, maxValue: Float? = nil, threshold: Float = 0) -> Tensor {
        if negativeSlope == 0 && maxValue == nil && threshold == 0 {
            // max(x, 0) needs only its output for the backward pass (x > 0 exactly where y > 0).
            return unary("relu", { $0.replacing(with: 0, where: $0 .<= 0) }, keeping: .output) { _, y in
                Vec().replacing(with: 1, where: y .> 0)
            }
        }
        let t = Vec(repeating: threshold), slope = Vec(repeating: negativeSlope)
        let cap = Vec(repeating: maxValue ?? .infinity), clips = maxValue != nil
        return unary("relu", { x in
            var y = x.replacing(with: 0, where: x .<= t)
            if clips { y = y.vclamped(Vec(), cap) }
            return y - slope * vmax(t - x, Vec())
        }, keeping: .input) { x, _ in
            x.mapElements { v in
                var d = Vec().replacing(with: 1, where: v .> t)
                if clips { d = d.replacing(with: 0, where: (v .< 0) .| (v .> cap)) }
                return d + Vec().replacing(with: slope, where: v .< t)
            }
        }
    }

    /// min(max(x, 0), 6).
    public func relu6() -> Tensor { relu(maxValue: 6) }

    /// x for x >= 0, negativeSlope · x below.
    public func leakyRelu(negativeSlope: Float = 0.2) -> Tensor {
        let s = Vec(repeating: negativeSlope)
        return unary("leaky_relu", { vselect($0 .>= 0, $0, $0 * s) }, keeping: .input) { x, _ in
            x.mapElements { vselect($0 .>= 0, Vec(repeating: 1), s) }
        }
    }

    /// x for x > 0, alpha · (e^x - 1) below.
    public func elu(alpha: Float = 1) -> Tensor {
        let a = Vec(repeating: alpha)
        return unary("elu", { vselect($0 .> 0, $0, a * vexpm1($0)) }, keeping: .input) { x, _ in
            x.mapElements { vselect($0 .> 0, Vec(repeating: 1), a * vexp($0)) }
        }
    }

    /// scale · elu(x, alpha) with the self-normalizing constants.
    public func selu() -> Tensor {
        let alpha: Float = 1.6732632423543772848170429916717, scale: Float = 1.0507009873554804934193349852946
        return elu(alpha: alpha) * scale
    }

    /// log(1 + e^x).
    public func softplus() -> Tensor { unary("softplus", vsoftplus, keeping: .input) { x, _ in x.mapElements(vsigmoid) } }

    /// x / (|x| + 1).
    public func softsign() -> Tensor {
        unary("softsign", { $0 / (vabs($0) + 1) }, keeping: .input) { x, _ in
            x.mapElements { let d = vabs($0) + 1; return 1 / (d * d) }
        }
    }

    /// x - threshold above it, x + threshold below -threshold, 0 between.
    public func softShrink(threshold: Float = 0.5) -> Tensor {
        let t = Vec(repeating: threshold)
        return unary("soft_shrink", { x in vselect(x .> t, x - t, vselect(x .< -t, x + t, Vec())) }, keeping: .input) { x, _ in
            x.mapElements { Vec().replacing(with: 1, where: ($0 .> t) .| ($0 .< -t)) }
        }
    }

    /// x where |x| > threshold, 0 elsewhere.
    public func hardShrink(threshold: Float = 0.5) -> Tensor {
        let t = Vec(repeating: threshold)
        return unary("hard_shrink", { x in x.replacing(with: 0, where: vabs(x) .<= t) }, keeping: .input) { x, _ in
            x.mapElements { Vec().replacing(with: 1, where: vabs($0) .> t) }
        }
    }

    /// x - tanh(x).
    public func tanhShrink() -> Tensor {
        unary("tanh_shrink", { $0 - vtanh($0) }, keeping: .input) { x, _ in
            x.mapElements { let t = vtanh($0); return t * t }
        }
    }

    /// x where x > threshold, defaultValue elsewhere.
    public func threshold(_ threshold: Float, defaultValue: Float) -> Tensor {
        let t = Vec(repeating: threshold), d = Vec(repeating: defaultValue)
        return unary("threshold", { vselect($0 .> t, $0, d) }, keeping: .input) { x, _ in
            x.mapElements { Vec().replacing(with: 1, where: $0 .> t) }
        }
    }

    /// 1 / (1 + e^-x).
    public func sigmoid() -> Tensor { unary("sigmoid", vsigmoid, keeping: .output) { _, y in y * (1 - y) }.withLogits(.sigmoid, self) }

    /// tanh(x).
    public func tanh() -> Tensor { unary("tanh", vtanh, keeping: .output) { _, y in 1 - y * y } }

    /// Keras 3's hard sigmoid: relu6(x + 3) / 6.
    public func hardSigmoid() -> Tensor {
        unary("hard_sigmoid", { (($0 + 3).vclamped(Vec(), Vec(repeating: 6))) / 6 }, keeping: .input) { x, _ in
            x.mapElements { Vec().replacing(with: 1.0 / 6, where: ($0 .> -3) .& ($0 .< 3)) }
        }
    }

    /// x · hard_sigmoid(x).
    public func hardSilu() -> Tensor {
        unary("hard_silu", { $0 * (($0 + 3).vclamped(Vec(), Vec(repeating: 6))) / 6 }, keeping: .input) { x, _ in
            x.mapElements { v in
                let mid = (2 * v + 3) / 6
                return vselect(v .< -3, Vec(), vselect(v .> 3, Vec(repeating: 1), mid))
            }
        }
    }

    /// x · sigmoid(x) (swish).
    public func silu() -> Tensor {
        unary("silu", { $0 * vsigmoid($0) }, keeping: .input) { x, _ in
            x.mapElements { v in let s = vsigmoid(v); return s * (1 + v * (1 - s)) }
        }
    }

    /// Gaussian error linear unit: x · Φ(x), or its tanh approximation.
    public func gelu(approximate: Bool = false) -> Tensor {
        if approximate {
            let c: Float = 0.7978845608028654 // sqrt(2 / pi)
            let k: Float = 0.044715
            return unary("gelu", { x in
                let cube: Vec = x * x * x
                let t = vtanh(c * (x + k * cube))
                return 0.5 * x * (1 + t)
            }, keeping: .input) { x, _ in
                x.mapElements { v in
                    let cube: Vec = v * v * v
                    let t = vtanh(c * (v + k * cube))
                    let slope: Vec = c * (1 + 3 * k * v * v)
                    return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * slope
                }
            }
        }
        let invSqrt2: Float = 0.7071067811865476, invSqrt2Pi: Float = 0.3989422804014327
        return unary("gelu", { x in 0.5 * x * (1 + verf(x * invSqrt2)) }, keeping: .input) { x, _ in
            x.mapElements { v in 0.5 * (1 + verf(v * invSqrt2)) + v * invSqrt2Pi * vexp(-0.5 * v * v) }
        }
    }

    /// e^x.
    public func exponential() -> Tensor { exp() }

    /// x · tanh(softplus(x)).
    public func mish() -> Tensor {
        unary("mish", { $0 * vtanh(vsoftplus($0)) }, keeping: .input) { x, _ in
            x.mapElements { v in
                let t = vtanh(vsoftplus(v))
                return t + v * (1 - t * t) * vsigmoid(v)
            }
        }
    }

    /// log(sigmoid(x)) = -softplus(-x).
    public func logSigmoid() -> Tensor {
        unary("log_sigmoid", { -vsoftplus(-$0) }, keeping: .input) { x, _ in x.mapElements { vsigmoid(-$0) } }
    }

    /// 0 below -1, 1 above 1, (x + 1) / 2 between.
    public func sparseSigmoid() -> Tensor {
        unary("sparse_sigmoid", { (($0 + 1) * 0.5).vclamped(Vec(), Vec(repeating: 1)) }, keeping: .input) { x, _ in
            x.mapElements { Vec().replacing(with: 0.5, where: ($0 .> -1) .& ($0 .< 1)) }
        }
    }

    /// 0 below -1, x above 1, (x + 1)² / 4 between.
    public func sparsePlus() -> Tensor {
        unary("sparse_plus", { x in vselect(x .<= -1, Vec(), vselect(x .>= 1, x, (x + 1) * (x + 1) * 0.25)) }, keeping: .input) { x, _ in
            x.mapElements { v in vselect(v .<= -1, Vec(), vselect(v .>= 1, Vec(repeating: 1), (v + 1) * 0.5)) }
        }
    }

    /// (x + sqrt(x² + b)) / 2.
    public func squareplus(b: Float = 4) -> Tensor {
        let bv = Vec(repeating: b)
        return unary("squareplus", { x in (x + (x * x + bv).squareRoot()) * 0.5 }, keeping: .input) { x, _ in
            x.mapElements { v in 0.5 * (1 + v / (v * v + bv).squareRoot()) }
        }
    }

    /// max(0, x) + alpha · min(0, e^(x / alpha) - 1).
    public func celu(alpha: Float = 1) -> Tensor {
        let a = Vec(repeating: alpha)
        return unary("celu", { x in vselect(x .> 0, x, a * vexpm1(x / a)) }, keeping: .input) { x, _ in
            x.mapElements { v in vselect(v .> 0, Vec(repeating: 1), vexp(v / a)) }
        }
    }

    /// clip(x, -1, 1).
    public func hardTanh() -> Tensor { clipped(min: -1, max: 1) }

    /// Softmax along `axis`: e^(x - max) / sum(e^(x - max)).
    public func softmax(axis: Int = -1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        let shifted = detached - reduceRaw(.max, [a])
        let e = shifted.exp()
        let y = e / e.reduceRaw(.sum, [a])
        return Tensor.record("softmax", y, [self]) { g in
            // dx = y · (g - sum(g · y))
            [y * (g - (g * y).reduceRaw(.sum, [a]))]
        }.withLogits(.softmax(axis: a), self)
    }

    /// This tensor marked as `function` of `logits`.
    func withLogits(_ function: Logits.Function, _ logits: Tensor) -> Tensor {
        Tensor(storage: storage, shape: shape, node: node, logits: Logits(function, logits))
    }

    /// log(softmax(x)) along `axis`, computed as x - logsumexp(x).
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        let shifted = detached - reduceRaw(.max, [a])
        let y = shifted - shifted.exp().reduceRaw(.sum, [a]).log()
        return Tensor.record("log_softmax", y, [self]) { g in
            [g - y.exp() * g.reduceRaw(.sum, [a])]
        }
    }

    /// Gated linear unit: the first half along `axis` times the sigmoid of the second half.
    public func glu(axis: Int = -1) -> Tensor {
        let halves = split(parts: 2, axis: axis)
        return halves[0] * halves[1].sigmoid()
    }

    /// Sparsemax along `axis` as Keras 3 computes it (every backend alike): with z sorted in
    /// descending order, c its cumulative sums and k the size of the support
    /// {j : z_j - (c_j - 1) / j > 0}, tau = (sum_{j <= k} c_j - 1) / k and the output is
    /// max(x - tau, 0). (Martins and Astudillo's projection uses c_k in place of the sum, so
    /// the two agree when k = 1; Loom follows Keras so that models give the same numbers.)
    public func sparsemax(axis: Int = -1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank)
        // Work on [rows, n] with the axis last.
        var perm = Array(0..<rank)
        perm.remove(at: a)
        perm.append(a)
        let moved = detached.transposed(perm)
        let n = shape[a], rows = count / Swift.max(n, 1)
        var out = Tensor(uninitializedShape: moved.shape)
        // d tau / d x_m: (k - rank(m) + 1) / k inside the support, 0 outside.
        var tauWeights = Tensor.zeros(moved.shape)
        moved.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                tauWeights.withUnsafeMutableBufferPointer { weights in
                    var order = [Int](repeating: 0, count: n)
                    for r in 0..<rows {
                        let row = src.baseAddress! + r * n
                        for j in 0..<n { order[j] = j }
                        order.sort { row[$0] > row[$1] }
                        var cumulative: Float = 0, cumulativeSum: Float = 0, k = 0
                        for (j, index) in order.enumerated() {
                            cumulative += row[index]
                            if row[index] - (cumulative - 1) / Float(j + 1) > 0 {
                                k += 1
                                cumulativeSum += cumulative
                            }
                        }
                        let tau = (cumulativeSum - 1) / Float(k)
                        for j in 0..<n { dst[r * n + j] = Swift.max(row[j] - tau, 0) }
                        for (j, index) in order.prefix(k).enumerated() { weights[r * n + index] = Float(k - j) / Float(k) }
                    }
                }
            }
        }
        let inverse = inversePermutation(perm)
        let y = out.transposed(inverse), w = tauWeights.transposed(inverse)
        return Tensor.record("sparsemax", y, [self]) { g in
            // dx_m = g_m [y_m > 0] - w_m · sum_{j: y_j > 0} g_j
            let positive = y.greater(Tensor(0))
            let gp = g * positive
            return [gp - w * gp.reduceRaw(.sum, [a])]
        }
    }
}
