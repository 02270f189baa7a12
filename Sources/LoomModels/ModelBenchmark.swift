import Dispatch
import LoomLayers
import LoomTensor

/// End-to-end training-step throughput behind `loom bench cnn`: the classic Keras MNIST CNN,
/// forward and backward (gradients of every weight) on random 28x28 images.
public enum ModelBenchmark {
    public struct Result: Sendable {
        public let batch: Int
        public let secondsPerStep: Double
        public var samplesPerSecond: Double { Double(batch) / secondsPerStep }
        /// Convolution FLOPs per step (forward, and backward for the gradients the step needs).
        public let convolutionFLOPs: Double
        public var convolutionGFLOPS: Double { convolutionFLOPs / secondsPerStep / 1e9 }
    }

    /// Times training steps (forward, cross-entropy, gradients of all weights) at `batch`,
    /// best of repeated steps over at least `minimumSeconds`.
    public static func mnistCNNStep(batch: Int, minimumSeconds: Double) throws -> Result {
        let layers = try ExampleModels.mnistCNN().layers
        let generator = RandomGenerator(seed: 3)
        let x = Tensor.randomUniform([batch, 28, 28, 1], generator: generator, stream: 1)
        let labels = Tensor((0..<batch).map { Float($0 % 10) }).oneHot(depth: 10)
        var step: UInt64 = 0
        func trainStep() throws {
            let context = ForwardContext(training: true, seed: 1, step: step)
            step += 1
            var h = x
            for layer in layers { h = try layer(h, context: context) }
            let loss = -(h.clipped(min: 1e-7, max: 1 - 1e-7).log() * labels).sum(axes: [1]).mean()
            let parameters = layers.flatMap(\.trainableWeights)
            let g = gradients(of: loss, wrt: parameters)
            precondition(g.values.count == parameters.count, "every weight gets a gradient")
        }
        try trainStep() // builds the layers
        var failure: (any Error)?
        let seconds = KernelBenchmark.time(minimumSeconds: minimumSeconds) {
            do { try trainStep() } catch { failure = error }
        }
        if let failure { throw failure }
        // conv1: 26x26x32 outputs of 9 taps; conv2: 24x24x64 outputs of 288 taps. The step needs
        // conv1's forward and kernel gradient, and conv2's forward, kernel and input gradients.
        let conv1 = 2.0 * Double(batch * 26 * 26 * 32 * 9), conv2 = 2.0 * Double(batch * 24 * 24 * 64 * 288)
        return Result(batch: batch, secondsPerStep: seconds, convolutionFLOPs: 2 * conv1 + 3 * conv2)
    }
}
