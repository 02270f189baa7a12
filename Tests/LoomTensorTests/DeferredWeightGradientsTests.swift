import Testing
@testable import LoomTensor

@Suite struct DeferredWeightGradientsTests {
    /// Σ xᵀ·g over the factors, in Double: the closed form `sumRows` is checked against.
    static func expected(_ factors: [DeferredWeightGradients.Factors], inputs: Int, outputs: Int) -> [Double] {
        var c = [Double](repeating: 0, count: inputs * outputs)
        for f in factors {
            let x = f.input.scalars, g = f.outputGradient.scalars
            for r in 0..<f.input.shape[0] {
                for i in 0..<inputs {
                    for o in 0..<outputs { c[i * outputs + o] += Double(x[r * inputs + i]) * Double(g[r * outputs + o]) }
                }
            }
        }
        return c
    }

    @Test func sumRowsIsTheSumOfTransposedProductsInAnyRowSplit() {
        let (inputs, outputs) = (37, 19)
        let factors = [5, 0, 4, 6].enumerated().map { k, rows in
            DeferredWeightGradients.Factors(
                input: Tensor.randomNormal([rows, inputs], generator: RandomGenerator(seed: 300 + UInt64(k))),
                outputGradient: Tensor.randomNormal([rows, outputs], generator: RandomGenerator(seed: 400 + UInt64(k))))
        }
        let want = Self.expected(factors, inputs: inputs, outputs: outputs)
        for cuts in [[0, 37], [0, 10, 37], [0, 1, 36, 37], [0, 12, 12, 25, 37]] {
            var gradient = [Float](repeating: .nan, count: inputs * outputs)
            gradient.withUnsafeMutableBufferPointer { buffer in
                for (lower, upper) in zip(cuts, cuts.dropFirst()) {
                    DeferredWeightGradients.sumRows(lower..<upper, of: factors, into: buffer.baseAddress!)
                }
            }
            for (got, w) in zip(gradient, want) { #expect(abs(Double(got) - w) <= 1e-5 * (1 + abs(w)), "cuts \(cuts)") }
        }
    }

    /// tanh(x·w1 + b1)·w2 against one-hot labels, mean cross-entropy, the kernels' products
    /// deferred to `deferred` when given.
    static func loss(_ x: Tensor, _ labels: Tensor, _ net: TinyNetwork, _ deferred: DeferredWeightGradients?) -> Tensor {
        let h = (x.matmul(net.w1, deferringTo: deferred) + net.b1.tracked).tanh()
        let logits = h.matmul(net.w2, deferringTo: deferred)
        return -(logits.logSoftmax() * labels.oneHot(depth: 3)).sum(axes: [logits.rank - 1]).mean()
    }

    @Test func deferredKernelGradientsOverShardsEqualTheWholeBatchGradient() {
        let net = TinyNetwork()
        let x = Tensor.randomNormal([16, 6], generator: RandomGenerator(seed: 310))
        let labels = Tensor((0..<16).map { Float($0 % 3) })
        let whole = gradients(of: Self.loss(x, labels, net, nil), wrt: net.parameters)

        // Two shards of 9 and 7 samples, each loss weighted by its share, as the trainer does.
        var records: [DeferredWeightGradients] = []
        var biasGradient = [Float](repeating: 0, count: 8)
        for (lower, upper) in [(0, 9), (9, 16)] {
            let deferred = DeferredWeightGradients(for: [net.w1, net.w2])
            let shardLoss = Self.loss(x.slice(lower: [lower, 0], upper: [upper, 6]),
                                      labels.slice(lower: [lower], upper: [upper]), net, deferred)
            let g = gradients(of: shardLoss * Tensor(Float(upper - lower) / 16), wrt: net.parameters)
            #expect(g[net.w1] == nil && g[net.w2] == nil)
            for (k, v) in g[net.b1]!.scalars.enumerated() { biasGradient[k] += v }
            #expect(deferred.products.map(\.parameter) == [net.w2, net.w1])
            records.append(deferred)
        }
        for (k, v) in biasGradient.enumerated() { #expect(abs(v - whole[net.b1]!.scalars[k]) <= 1e-6) }
        for p in [net.w1, net.w2] {
            let factors = records.flatMap { $0.products.filter { $0.parameter == p }.map(\.factors) }
            var gradient = [Float](repeating: .nan, count: p.value.count)
            gradient.withUnsafeMutableBufferPointer { buffer in
                let rows = p.shape[0]
                DeferredWeightGradients.sumRows(0..<(rows / 2), of: factors, into: buffer.baseAddress!)
                DeferredWeightGradients.sumRows((rows / 2)..<rows, of: factors, into: buffer.baseAddress!)
            }
            for (got, w) in zip(gradient, whole[p]!.scalars) { #expect(abs(got - w) <= 1e-6, "\(p.name)") }
        }
    }

    @Test func aKernelOverLeadingAxesRecordsFlattenedFactors() {
        let net = TinyNetwork()
        let x = Tensor.randomNormal([2, 8, 6], generator: RandomGenerator(seed: 320))
        let labels = Tensor(shape: [2, 8], scalars: (0..<16).map { Float($0 % 3) })
        let whole = gradients(of: Self.loss(x, labels, net, nil), wrt: net.parameters)
        let deferred = DeferredWeightGradients(for: [net.w1])  // w2 is differentiated as usual
        let g = gradients(of: Self.loss(x, labels, net, deferred), wrt: net.parameters)
        #expect(g[net.w1] == nil)
        for (got, w) in zip(g[net.w2]!.scalars, whole[net.w2]!.scalars) { #expect(abs(got - w) <= 1e-6) }
        let factors = deferred.products.map(\.factors)
        #expect(factors.map(\.input.shape) == [[16, 6]] && factors.map(\.outputGradient.shape) == [[16, 8]])
        var gradient = [Float](repeating: .nan, count: 48)
        gradient.withUnsafeMutableBufferPointer { DeferredWeightGradients.sumRows(0..<6, of: factors, into: $0.baseAddress!) }
        for (got, w) in zip(gradient, whole[net.w1]!.scalars) { #expect(abs(got - w) <= 1e-6) }
    }
}
