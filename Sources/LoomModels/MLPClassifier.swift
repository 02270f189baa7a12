import LoomTensor

/// A multilayer perceptron classifier trained by minibatch SGD with momentum: the engine's
/// smallest end-to-end use (autodiff over shared parameters, sgemm, softmax cross-entropy),
/// run as the main job until the Keras-style model API lands.
public final class MLPClassifier {
    /// Weights and biases, layer by layer.
    public let parameters: [Parameter]
    private let layerSizes: [Int]

    /// Dense layers `sizes[0] -> sizes[1] -> ... -> classes`, Glorot-uniform kernels and zero
    /// biases (Keras's Dense defaults), drawn from `seed`.
    public init(sizes: [Int], seed: UInt64) {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "MLPClassifier: layer sizes \(sizes)")
        layerSizes = sizes
        let generator = RandomGenerator(seed: seed)
        var params: [Parameter] = []
        for (i, (fanIn, fanOut)) in zip(sizes, sizes.dropFirst()).enumerated() {
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            params.append(Parameter(name: "dense_\(i)/kernel",
                                    value: Tensor.randomUniform([fanIn, fanOut], low: -limit, high: limit,
                                                                generator: generator, stream: UInt64(i))))
            params.append(Parameter(name: "dense_\(i)/bias", value: Tensor.zeros([fanOut])))
        }
        parameters = params
    }

    /// Class logits for a batch [N, features]; hidden layers use ReLU.
    public func logits(_ x: Tensor, tracked: Bool = false) -> Tensor {
        var h = x
        let layers = parameters.count / 2
        for l in 0..<layers {
            let w = tracked ? parameters[2 * l].tracked : parameters[2 * l].value
            let b = tracked ? parameters[2 * l + 1].tracked : parameters[2 * l + 1].value
            h = h.matmul(w) + b
            if l < layers - 1 { h = h.relu() }
        }
        return h
    }

    /// Mean softmax cross-entropy of the logits against integer labels [N].
    public static func crossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
        -(logits.logSoftmax() * labels.oneHot(depth: logits.shape[1])).sum(axes: [1]).mean()
    }

    /// One epoch's summary.
    public struct EpochReport: Sendable {
        public let epoch: Int
        public let meanLoss: Float
        public let seconds: Double
    }

    /// Trains on x [N, features] and labels [N]; samples are reshuffled each epoch from
    /// (seed, epoch), so a run is reproducible. Calls `report` after each epoch.
    public func train(x: Tensor, labels: Tensor, epochs: Int, batchSize: Int, learningRate: Float,
                      momentum: Float = 0.9, seed: UInt64, report: (EpochReport) -> Void) {
        let n = x.shape[0]
        var velocity = parameters.map { Tensor.zeros($0.shape) }
        let generator = RandomGenerator(seed: seed)
        for epoch in 0..<epochs {
            let start = ContinuousClock.now
            let order = permutation(n, generator: generator, stream: UInt64(epoch))
            var totalLoss: Double = 0
            var batches = 0
            for first in stride(from: 0, to: n, by: batchSize) {
                let picks = Tensor(order[first..<min(n, first + batchSize)].map(Float.init))
                let loss = Self.crossEntropy(logits: logits(x.gather(picks), tracked: true), labels: labels.gather(picks))
                let grads = gradients(of: loss, wrt: parameters)
                for (i, p) in parameters.enumerated() {
                    guard let g = grads[p] else { continue }
                    velocity[i] = velocity[i] * momentum - g * learningRate
                    p.assign(p.value + velocity[i])
                }
                totalLoss += Double(loss.scalar)
                batches += 1
            }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            report(EpochReport(epoch: epoch + 1, meanLoss: Float(totalLoss / Double(max(batches, 1))), seconds: seconds))
        }
    }

    /// The fraction of samples whose highest logit is their label.
    public func accuracy(x: Tensor, labels: Tensor, batchSize: Int = 1000) -> Float {
        let n = x.shape[0]
        var correct = 0
        for first in stride(from: 0, to: n, by: batchSize) {
            let rows = Tensor((first..<min(n, first + batchSize)).map(Float.init))
            let predicted = logits(x.gather(rows)).argmax(axis: 1).scalars
            let truth = labels.gather(rows).scalars
            correct += zip(predicted, truth).filter { $0 == $1 }.count
        }
        return Float(correct) / Float(max(n, 1))
    }
}
