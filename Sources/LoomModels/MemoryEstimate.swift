import LoomLayers
import LoomTensor

/// What a built model needs in memory, at least, to run or to train on batches of one size:
/// its weights (with the optimizer's slots and a gradient when training), one batch's
/// activations (Loom keeps every intermediate of a pass until the pass is done; training also
/// their pre-activation values and gradients) and, for predict, the outputs it returns. A lower bound, so a
/// refusal is never wrong: what passes may still need more (im2col buffers, the data).
public struct MemoryEstimate: Sendable {
    /// One layer's share: its weights with their copies and its output for one batch.
    public struct Share: Sendable {
        public var layer: String
        public var bytes: Int
        /// "kernel [13, 100000000], output [32, 100000000]".
        public var detail: String
    }

    /// What the estimate is for ("predict at batch 32").
    public let work: String
    /// One copy of every weight, and the copies kept of the trainable ones.
    public let weightBytes: Int
    public let trainableCopies: Int
    public let copiesExplained: String
    /// One batch's activations (with their gradients when training).
    public let activationBytes: Int
    /// The outputs predict returns for every sample (twice: the batches' parts, then joined).
    public let outputBytes: Int
    /// The layers by their share, largest first.
    public let shares: [Share]

    /// Everything counted.
    public var totalBytes: Int { weightBytes + (trainableCopies - 1) * trainableBytes + activationBytes + outputBytes }
    private let trainableBytes: Int

    /// What the model is asked to do.
    public enum Work: Sendable {
        /// Predict or evaluate, returning the outputs of `outputSamples` samples (0: none kept).
        case inference(outputSamples: Int)
        /// Training with an optimizer of `slots` slot variables per weight.
        case training(slots: Int, optimizer: String)

        /// Training with `optimizer`.
        public static func training(_ optimizer: Optimizer) -> Work {
            .training(slots: optimizer.slotsPerWeight, optimizer: type(of: optimizer).kerasClassName)
        }

        /// The float copies kept of each trainable weight, and what they are.
        var copies: (count: Int, explained: String) {
            switch self {
            case .inference: return (1, "")
            case let .training(slots, name):
                return (2 + slots, slots == 0 ? "the value and a gradient" : "the value, \(slots) \(name) slot\(slots == 1 ? "" : "s") and a gradient")
            }
        }
    }

    /// The budget weights are checked against while a model is built for `work`.
    public static func budget(limit: MemoryLimit, for work: Work) -> MemoryBudget {
        let (copies, explained) = work.copies
        return MemoryBudget(limit: limit, trainableCopies: copies, copiesExplained: explained)
    }

    /// The estimate for `model` doing `work` on batches of `batchSize`.
    public init(_ model: Model, batchSize: Int, work: Work) {
        let (copies, explained) = work.copies
        var outputSamples = 0, training = true
        if case let .inference(n) = work { (outputSamples, training) = (n, false) }
        // Training keeps each layer's output, the value before its activation (for the
        // backward pass) and the output's gradient; inference only the outputs.
        let activationFactor = training ? 3 : 1
        var shares: [Share] = []
        var weightBytes = 0, trainableBytes = 0, activationBytes = 0
        var counted = Set<ObjectIdentifier>()
        // Per layer: the weights it owns and the values its calls make, nested models opened.
        func visit(_ m: Model) {
            for (layer, shapes) in m.layerCalls {
                if let inner = layer as? Model {
                    visit(inner)
                    continue
                }
                var bytes = 0
                var parts: [String] = []
                // A layer called twice (shared) has its weights once.
                let firstCall = counted.insert(ObjectIdentifier(layer)).inserted
                for w in layer.weights where firstCall {
                    let one = w.value.count * 4
                    let trainable = layer.trainable && w.trainable
                    weightBytes += one
                    if trainable { trainableBytes += one }
                    bytes += one * (trainable ? copies : 1)
                    if layer.weights.count <= 3 { parts.append("\(w.name.split(separator: "/").last ?? "") \(w.shape)") }
                }
                for shape in shapes {
                    let batchShape = [batchSize] + shape.dropFirst().map { $0 ?? 1 }
                    let elements = batchShape.reduce(1.0) { $0 * Double($1) }
                    let one = Int(Swift.min(elements * 4 * Double(activationFactor), 0x1p62))
                    activationBytes += one
                    bytes += one
                    parts.append("output \(batchShape)")
                }
                shares.append(Share(layer: layer.name, bytes: bytes, detail: parts.joined(separator: ", ")))
            }
        }
        visit(model)
        var outputBytes = 0
        if outputSamples > 0 {
            for shape in model.outputShapes {
                let elements = shape.dropFirst().reduce(Double(outputSamples)) { $0 * Double($1 ?? 1) }
                outputBytes += Int(Swift.min(elements * 8, 0x1p62))
            }
        }
        self.work = training ? "training at batch \(batchSize)" : "running the model at batch \(batchSize)"
        (self.weightBytes, self.trainableBytes, self.trainableCopies, self.copiesExplained) = (weightBytes, trainableBytes, copies, explained)
        (self.activationBytes, self.outputBytes) = (activationBytes, outputBytes)
        self.shares = shares.sorted { $0.bytes > $1.bytes }
    }

    /// Refuses work that needs more than `limit`, naming the figures and the layer that takes
    /// the most.
    public func check(against limit: MemoryLimit, model: String) throws(ConfigError) {
        guard totalBytes > limit.bytes else { return }
        var parts = ["the weights \(readableBytes(weightBytes))"
            + (trainableCopies > 1 && trainableBytes > 0 ? ", \(trainableCopies) copies of the trainable ones (\(copiesExplained))" : "")]
        parts.append("one batch's activations\(trainableCopies > 1 ? " and their gradients" : "") \(readableBytes(activationBytes))")
        if outputBytes > 0 { parts.append("the outputs \(readableBytes(outputBytes))") }
        var message = "\(work) needs at least \(readableBytes(totalBytes)) (\(parts.joined(separator: "; ")))"
        if let top = shares.first {
            message += ", the most for layer '\(top.layer)' (\(top.detail): \(readableBytes(top.bytes)))"
        }
        // The advice for whichever part takes the most.
        let weightPart = totalBytes - activationBytes - outputBytes
        let advice = outputBytes > Swift.max(weightPart, activationBytes) ? "give fewer samples at a time"
            : activationBytes > weightPart ? "use a smaller batch size" : "make the model smaller"
        message += ", more than the \(limit) this machine can give: \(advice), or set the limit with --max-memory"
        throw ConfigError(model, message)
    }
}

extension Model {
    /// Each layer with the shapes of the values its calls make, in the order they run.
    var layerCalls: [(Layer, [TensorShape])] {
        if let sequential = self as? Sequential {
            return Array(zip(sequential.layers, sequential.layerOutputShapes.map { [$0] }))
        }
        return nodes.filter { !$0.inputs.isEmpty }.map { ($0.layer, $0.outputShapes) }
    }
}
