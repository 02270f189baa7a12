import Glibc
import LoomTensor
import Synchronization

/// State of one forward pass: the training flag, the coordinates per-sample randomness is
/// drawn from, and the losses layers add (activity regularization). Each pass, on each
/// thread, has its own.
public final class ForwardContext {
    /// Training mode (dropout active) or inference.
    public let training: Bool
    /// The run's seed, the step number and this pass's first sample in the whole batch:
    /// random masks are a function of (seed, layer, step, sample), never of the thread.
    public let seed: UInt64
    public let step: UInt64
    public let sampleOffset: Int
    /// The workers sharing this step when the batch is split across threads (nil for a
    /// whole batch), and which of them this pass is: layers that need whole-batch statistics
    /// sum across them.
    public let shardGroup: ShardGroup?
    public let worker: Int
    /// The number of samples in the whole batch (this pass's when not sharded); Keras divides
    /// activity penalties by it.
    public let batchSize: Int?
    /// Where products with a kernel record their factors instead of computing the kernel's
    /// gradient (a data-parallel training step; nil elsewhere).
    public let deferredWeightGradients: DeferredWeightGradients?
    /// Losses added during the pass, each already divided by the batch size where Keras
    /// normalizes it.
    public private(set) var losses: [Tensor] = []

    public init(training: Bool = false, seed: UInt64 = 0, step: UInt64 = 0, sampleOffset: Int = 0,
                shardGroup: ShardGroup? = nil, worker: Int = 0, batchSize: Int? = nil,
                deferredWeightGradients: DeferredWeightGradients? = nil) {
        self.training = training
        self.deferredWeightGradients = deferredWeightGradients
        self.seed = seed
        self.step = step
        self.sampleOffset = sampleOffset
        self.shardGroup = shardGroup
        self.worker = worker
        self.batchSize = batchSize
    }

    /// Whether the batch is split across several workers.
    public var isSharded: Bool { (shardGroup?.workers ?? 1) > 1 }

    /// The sum of `value` over the workers of the step (itself when not sharded).
    public func sumAcrossShards(_ value: Tensor) throws -> Tensor {
        guard let shardGroup, shardGroup.workers > 1 else { return value }
        return try value.summedAcrossShards(shardGroup, worker: worker)
    }

    /// Adds a scalar loss.
    public func addLoss(_ loss: Tensor) { losses.append(loss) }

    /// New values for non-trainable weights (BatchNormalization's moving statistics), computed
    /// in the pass and assigned by `applyStateUpdates` after it, so a pass only reads weights.
    public private(set) var stateUpdates: [(Parameter, Tensor)] = []

    /// Records a new value for a non-trainable weight.
    public func updateState(_ parameter: Parameter, _ value: Tensor) { stateUpdates.append((parameter, value.detached)) }

    /// Assigns the recorded state updates.
    public func applyStateUpdates() {
        for (p, v) in stateUpdates { p.assign(v) }
        stateUpdates.removeAll()
    }

    /// The generator and stream a layer draws its random values from at this step.
    func randomStream(layerSeed: UInt64) -> (RandomGenerator, UInt64) {
        (RandomGenerator(seed: seed ^ layerSeed), step)
    }
}

/// Unique default names per prefix, as Keras gives them: dense, dense_1, dense_2, ...
public enum LayerNames {
    private static let counts = SystemLock<[String: Int]>([:])
    /// Counters used instead of the shared ones while a model is built only to be measured.
    @TaskLocal private static var privateCounts: SystemLock<[String: Int]>?

    /// `body` with names drawn from a copy of the counters in use: the names it gives are the
    /// ones the next build will give too.
    static func withPrivateCounters<T>(_ body: () throws -> T) rethrows -> T {
        let copy = SystemLock((privateCounts ?? counts).withLock { $0 })
        return try $privateCounts.withValue(copy, operation: body)
    }

    /// `body` with names counted from zero, as in a fresh Keras session (a job's model is named
    /// "dense", "dense_1", ... however many models the process built before), leaving the
    /// process's counters alone.
    public static func withFreshCounters<T>(_ body: () throws -> T) rethrows -> T {
        try $privateCounts.withValue(SystemLock([:]), operation: body)
    }

    /// The next free name for `prefix`.
    public static func next(_ prefix: String) -> String {
        (privateCounts ?? counts).withLock { c in
            let n = c[prefix, default: 0]
            c[prefix] = n + 1
            return n == 0 ? prefix : "\(prefix)_\(n)"
        }
    }

    /// Forgets the names given so far (Keras's clear_session).
    public static func reset() { counts.withLock { $0 = [:] } }

    /// Keras's to_snake_case: "BatchNormalization" -> "batch_normalization",
    /// "SpatialDropout1D" -> "spatial_dropout1d", "PReLU" -> "p_re_lu".
    public static func snakeCase(_ name: String) -> String {
        // 1. "_" before an uppercase letter that starts a lowercase run (not at the start).
        let chars = Array(name)
        var step1: [Character] = []
        for (i, ch) in chars.enumerated() {
            if i > 0 && ch.isUppercase && i + 1 < chars.count && chars[i + 1].isLowercase { step1.append("_") }
            step1.append(ch)
        }
        // 2. "_" between a lowercase letter and an uppercase one.
        var out = ""
        for (i, ch) in step1.enumerated() {
            if i > 0 && ch.isUppercase && step1[i - 1].isLowercase { out.append("_") }
            out.append(ch)
        }
        return out.lowercased()
    }
}

/// A shape with an unknown batch size: [nil, 28, 28, 1].
public typealias TensorShape = [Int?]

/// The base of every layer, with Keras's anatomy: arguments resolved at construction,
/// weights created by `build` from the first input's shape, `call` computing, and `config`
/// giving the dictionary Keras's get_config writes.
///
/// A layer is built once, under a lock, before any concurrent use; after that forward passes
/// only read it, so one layer serves every worker thread.
open class Layer: @unchecked Sendable, CustomStringConvertible {
    /// Keras's class name; subclasses override.
    open class var kerasClassName: String { "Layer" }
    /// The layer's name (unique by default: dense, dense_1, ...).
    public let name: String
    /// Whether its weights train; false freezes them all.
    public var trainable: Bool
    /// A penalty on the layer's output, added to the loss divided by the batch size.
    public var activityRegularizer: (any Regularizer)?
    /// The input shape a first layer was given (input_shape, input_dim or batch_input_shape),
    /// batch axis first.
    public var batchInputShape: TensorShape?

    /// How many times the layer has been called on symbolic inputs (Keras's inbound nodes);
    /// a model summary names connections by it ("dense[1][0]").
    public var symbolicCallCount = 0

    private let buildLock = SystemLock(false)
    private var weightList: [Parameter] = []
    /// The input shapes it was built for.
    public private(set) var builtInputShapes: [TensorShape]?

    public init(name: String? = nil, trainable: Bool = true, activityRegularizer: (any Regularizer)? = nil) {
        self.name = name ?? LayerNames.next(LayerNames.snakeCase(Self.kerasClassName))
        self.trainable = trainable
        self.activityRegularizer = activityRegularizer
    }

    public var description: String { "\(Self.kerasClassName)(\(name))" }

    // MARK: - What subclasses override

    /// Creates the weights for inputs of these shapes (batch axis first, nil when unknown).
    open func build(_ inputShapes: [TensorShape]) throws {}

    /// The output for these inputs. Masks are the inputs' masks (nil where none).
    open func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0]
    }

    /// The output of this call with `fused` (what a model's plan folds into it: zero padding
    /// before, a fixed per-channel affine and a ReLU after), or nil when the layer cannot run
    /// them fused and the layers around it must run as usual. Called only with one unmasked input.
    open func callFused(_ x: Tensor, fused: FusedLayers, context: ForwardContext) throws -> Tensor? { nil }

    /// Whether the layer computes max(x, 0) and nothing else, so a layer before it may fuse it.
    open var isPlainReLU: Bool { false }

    /// The output shape for these input shapes, without computing. Shape-preserving by default.
    open func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape { inputShapes[0] }

    /// Whether the layer takes several inputs (merge layers) rather than one.
    open var takesMultipleInputs: Bool { false }

    /// How many values one call makes: 1, or more for a recurrent layer with return_state
    /// (its output, then its states) and Bidirectional with merge_mode None.
    open var outputCount: Int { 1 }

    /// Every value one call makes, in Keras's order. Layers with several outputs override
    /// this; their `call` returns the first.
    open func callOutputs(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> [Tensor] {
        [try call(inputs, masks: masks, context: context)]
    }

    /// The shapes of every value one call makes.
    open func computeOutputShapes(_ inputShapes: [TensorShape]) throws -> [TensorShape] {
        [try computeOutputShape(inputShapes)]
    }

    /// The masks of every value one call makes (the first output's mask, none for the rest).
    open func computeOutputMasks(_ inputs: [Tensor], masks: [Tensor?]) throws -> [Tensor?] {
        [try computeMask(inputs, masks: masks)] + Array(repeating: nil, count: outputCount - 1)
    }

    /// The keyword argument of Keras's call that takes further tensors after the first input
    /// (a recurrent layer's "initial_state"), or nil when the call takes none.
    open var keywordInputName: String? { nil }

    /// Refuses a call on the wrong number of inputs; `keywordInputs` of them came by
    /// `keywordInputName` (initial states).
    open func checkInputCount(_ count: Int, keywordInputs: Int = 0) throws {
        if keywordInputs > 0 && keywordInputName == nil {
            throw ConfigError(name, "takes no keyword tensors, got \(keywordInputs)")
        }
        let positional = count - keywordInputs
        if takesMultipleInputs {
            guard positional >= 2 else { throw ConfigError(name, "expects at least 2 inputs, got \(positional)") }
        } else if positional != 1 {
            throw ConfigError(name, "expects 1 input, got \(positional)")
        }
    }

    /// Whether Keras's call method of this class takes a `mask` argument (a functional config
    /// records it as a call keyword).
    open var callTakesMask: Bool { false }

    /// Whether Keras's call method of this class defaults `training` to False (the dropout and
    /// noise layers): a functional config records that default as a call keyword. The model's
    /// own mode still decides, in Keras as in Loom.
    open var callDefaultsTrainingToFalse: Bool { false }

    /// Whether an input mask passes through unchanged (Keras's supports_masking).
    open var supportsMasking: Bool { false }

    /// The output mask: the input mask when masking is supported, else none.
    open func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        supportsMasking ? masks.first ?? nil : nil
    }

    /// The layer's own config entries, merged after the base ones (name, trainable, dtype).
    open var layerConfig: Config { [:] }

    // MARK: - Weights

    /// Creates a weight named "<layer>/<name>", initialized now.
    public func addWeight(_ weightName: String, shape: [Int], initializer: any Initializer,
                          regularizer: (any Regularizer)? = nil, constraint: (any Constraint)? = nil,
                          trainable: Bool = true) throws(ConfigError) -> Parameter {
        let count = try ShapeLimits.checkedCount(shape, owner: name, what: "weight \(weightName)")
        let budget = MemoryBudget.current
        try budget?.reserve(layer: name, weight: weightName, shape: shape, count: count, trainable: trainable && self.trainable)
        if let refusal = initializer.refusal(shape: shape) { throw ConfigError(name, argument: "\(weightName)_initializer", refusal) }
        let drawn = budget?.sizingOnly != true && !WeightInitialization.isLeftForLoading
        let value = drawn ? initializer(shape: shape) : Tensor(uninitializedShape: shape)
        let p = Parameter(name: "\(name)/\(weightName)", value: value, trainable: trainable,
                          regularizer: regularizer, constraint: constraint)
        weightList.append(p)
        return p
    }

    /// The layers this one is made of (a model's layers), whose weights are its weights too.
    open var sublayers: [Layer] { [] }

    /// The objects Keras saves this layer's weights under, by their attribute name (a recurrent
    /// layer's "cell", a wrapper's "layer"): `<layer>/<name>/vars/i` in a weights file.
    open var kerasSavedChildren: [(String, Layer)] { [] }

    /// The weights this layer created itself, in creation order.
    public var ownWeights: [Parameter] { buildLock.withLock { _ in weightList } }

    /// Every weight, its own first, then its sublayers' in order (Keras's layer.weights).
    public var weights: [Parameter] { ownWeights + sublayers.flatMap(\.weights) }
    /// The weights optimizers update: none when the layer is frozen.
    public var trainableWeights: [Parameter] {
        trainable ? ownWeights.filter(\.trainable) + sublayers.flatMap(\.trainableWeights) : []
    }
    /// The weights optimizers leave alone.
    public var nonTrainableWeights: [Parameter] {
        trainable ? ownWeights.filter { !$0.trainable } + sublayers.flatMap(\.nonTrainableWeights) : weights
    }

    /// Replaces the weights' values, in `weights` order (Keras's set_weights).
    public func setWeights(_ values: [Tensor]) throws(ConfigError) {
        let ws = weights
        guard values.count == ws.count else {
            throw ConfigError(name, "set_weights got \(values.count) arrays for \(ws.count) weights")
        }
        for (w, v) in zip(ws, values) where w.shape != v.shape {
            throw ConfigError(name, "weight \(w.name) has shape \(w.shape), got \(v.shape)")
        }
        for (w, v) in zip(ws, values) { w.assign(v) }
    }

    /// The weight penalties of this layer (each regularizer on its weight).
    public var weightPenalties: [Tensor] {
        weights.compactMap { p in p.regularizer.map { $0.penalty(p.tracked) } }
    }

    // MARK: - Calling

    /// Whether `build` has run.
    public var isBuilt: Bool { buildLock.withLock { $0 } }

    /// Builds for these input shapes unless already built.
    public func buildIfNeeded(_ inputShapes: [TensorShape]) throws {
        try buildLock.withLock { built in
            guard !built else { return }
            try build(inputShapes)
            builtInputShapes = inputShapes
            built = true
        }
    }

    /// Calls the layer on one input.
    public func callAsFunction(_ x: Tensor, mask: Tensor? = nil, context: ForwardContext = ForwardContext()) throws -> Tensor {
        try callWithMask([x], masks: [mask], context: context).output
    }

    /// Calls the layer on several inputs (merge layers).
    public func callAsFunction(_ xs: [Tensor], masks: [Tensor?]? = nil, context: ForwardContext = ForwardContext()) throws -> Tensor {
        try callWithMask(xs, masks: masks, context: context).output
    }

    /// Calls the layer and returns its output mask too (a layer with one output).
    public func callWithMask(_ inputs: [Tensor], masks: [Tensor?]? = nil,
                             context: ForwardContext = ForwardContext()) throws -> (output: Tensor, mask: Tensor?) {
        guard outputCount == 1 else {
            throw ConfigError(name, "makes \(outputCount) values (return_state or merge_mode None): call it with callAll")
        }
        let (ys, ms) = try callAllWithMasks(inputs, masks: masks, context: context)
        return (ys[0], ms[0])
    }

    /// Every value of one call (an output and its states), with their masks.
    public func callAllWithMasks(_ inputs: [Tensor], masks: [Tensor?]? = nil, keywordInputs: Int = 0,
                                 context: ForwardContext = ForwardContext()) throws -> (outputs: [Tensor], masks: [Tensor?]) {
        try checkInputCount(inputs.count, keywordInputs: keywordInputs)
        // Shapes are gathered only for the first call (building); later calls only read the flag.
        if !isBuilt { try buildIfNeeded(inputs.map { $0.shape.map(Optional.some) }) }
        let m = masks ?? Array(repeating: nil, count: inputs.count)
        let ys = try callOutputs(inputs, masks: m, context: context)
        if let regularizer = activityRegularizer {
            // Keras 3 divides the activity penalty by the batch size (the whole batch's, so the
            // shards' penalties add up to Keras's), for every output of the call.
            for y in ys {
                let batch = Float(max(1, context.batchSize ?? (y.rank > 0 ? y.shape[0] : 1)))
                context.addLoss(regularizer.penalty(y) / batch)
            }
        }
        return (ys, try computeOutputMasks(inputs, masks: m))
    }

    /// Every value of one call on `inputs` (with initial states after the first input, for
    /// a recurrent layer).
    public func callAll(_ inputs: [Tensor], masks: [Tensor?]? = nil, context: ForwardContext = ForwardContext()) throws -> [Tensor] {
        try callAllWithMasks(inputs, masks: masks, keywordInputs: takesMultipleInputs ? 0 : inputs.count - 1, context: context).outputs
    }

    // MARK: - Config

    /// Whether Keras records the build input shape for this layer class (the classes with a
    /// build method of their own).
    open var recordsBuildConfig: Bool { false }

    /// The dictionary Keras's get_config writes.
    open var config: Config {
        var c: Config = ["name": .string(name), "trainable": .bool(trainable), "dtype": dtypePolicy]
        if let r = activityRegularizer { c["activity_regularizer"] = r.serialized }
        return c.merging(layerConfig) { $1 }
    }

    /// The serialized form: module, class_name, config, registered_name, and build_config once built.
    open var serialized: JSONValue {
        let className = Self.kerasClassName
        var s: Config = ["module": "keras.layers", "class_name": .string(className),
                         "config": .object(config), "registered_name": nil]
        // A user layer registered as "Package>Name" is written as Keras writes registered classes.
        if let split = className.firstIndex(of: ">") {
            s["module"] = .null
            s["class_name"] = .string(String(className[className.index(after: split)...]))
            s["registered_name"] = .string(className)
        }
        if recordsBuildConfig, let shapes = builtInputShapes {
            let json = shapes.map { JSONValue.array($0.map { JSONValue.from($0) }) }
            if let keyword = keywordInputName, json.count > 1 {
                // Built with initial states: Keras names each argument's shapes.
                let states = json.count == 2 ? json[1] : .array(Array(json.dropFirst()))
                s["build_config"] = ["shapes_dict": ["sequences_shape": json[0], "\(keyword)_shape": states]]
            } else {
                s["build_config"] = ["input_shape": json.count == 1 ? json[0] : .array(json)]
            }
        }
        return .object(s)
    }

    /// Applies every weight's constraint (after an optimizer update, as Keras does).
    public func applyConstraints() {
        for p in weights { if let c = p.constraint { p.assign(c.project(p.value)) } }
    }
}

/// Keras's float32 dtype policy, as every layer config carries it.
public let dtypePolicy: JSONValue = [
    "module": "keras", "class_name": "DTypePolicy", "config": ["name": "float32"], "registered_name": nil,
]

/// The layers around a layer's call in a model that may run fused into it (`Layer.callFused`).
public struct FusedLayers: Sendable {
    /// Zeros before and after each spatial axis of the input (a ZeroPadding layer before this
    /// one, channels last), nil for none.
    public var padding: [(before: Int, after: Int)]?
    /// y · scale + shift per channel of the last axis (a batch normalization with fixed
    /// statistics), nil for none; both [C], with no gradient.
    public var affine: (scale: Tensor, shift: Tensor)?
    /// Whether max(y, 0) follows.
    public var relu: Bool

    public init(padding: [(before: Int, after: Int)]? = nil, affine: (scale: Tensor, shift: Tensor)? = nil, relu: Bool = false) {
        self.padding = padding
        self.affine = affine
        self.relu = relu
    }

    /// Whether anything follows the call (a ReLU or an affine).
    public var hasTail: Bool { affine != nil || relu }
}
