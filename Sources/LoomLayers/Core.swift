import LoomTensor

/// activation(x · kernel + bias); inputs of rank above 2 are multiplied on their last axis.
public final class Dense: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Dense" }
    public let units: Int
    public let settings: KernelSettings
    public var activation: ActivationFunction { settings.activation }
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public init(units: Int, settings: KernelSettings, activityRegularizer: (any Regularizer)? = nil,
                name: String? = nil) throws(ConfigError) {
        guard units > 0 else { throw ConfigError(name ?? "Dense", argument: "units", "must be a positive integer, got \(units)") }
        self.units = units
        self.settings = settings
        super.init(name: name, activityRegularizer: activityRegularizer)
    }

    public convenience init(units: Int, activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: any Initializer = GlorotUniform(), biasInitializer: any Initializer = Zeros(),
                            kernelRegularizer: (any Regularizer)? = nil, biasRegularizer: (any Regularizer)? = nil,
                            activityRegularizer: (any Regularizer)? = nil,
                            kernelConstraint: (any Constraint)? = nil, biasConstraint: (any Constraint)? = nil,
                            name: String? = nil) throws(ConfigError) {
        try self.init(units: units,
                      settings: KernelSettings(activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                               biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer,
                                               biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                                               biasConstraint: biasConstraint),
                      activityRegularizer: activityRegularizer, name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        guard let inputDim = inputShapes[0].last ?? nil else {
            throw ConfigError(name, "the last axis of the input must be known, got \(inputShapes[0].text)")
        }
        (kernel, bias) = try settings.addWeights(to: self, kernelShape: [inputDim, units], biasSize: units)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard x.rank >= 2, x.shape.last == kernel.shape[0] else {
            throw ConfigError(name, "expects inputs of shape (..., \(kernel.shape[0])), got \(x.shape)")
        }
        var y = x.matmul(kernel, deferringTo: context.deferredWeightGradients)
        if let bias { y = y + bias.tracked }
        return activation(y)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        Array(inputShapes[0].dropLast()) + [units]
    }

    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        settings.config.merging(["units": .int(units), "quantization_config": .null]) { $1 }
    }

    public static func from(config: Config) throws -> Dense {
        let k = try LayerConfigReader(config, className: kerasClassName)
        if k.reader.has("quantization_config") {
            throw ConfigError(k.reader.object, argument: "quantization_config", "quantized layers are not supported")
        }
        let layer = try Dense(units: try k.reader.size("units"), settings: try KernelSettings.read(k), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Applies an activation function.
public final class Activation: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Activation" }
    public let activation: ActivationFunction

    public init(_ activation: ActivationFunction, name: String? = nil) {
        self.activation = activation
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        activation(inputs[0])
    }

    public override var isPlainReLU: Bool { activation.isPlainReLU }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["activation": .string(activation.name)] }

    public static func from(config: Config) throws -> Activation {
        let k = try LayerConfigReader(config, className: kerasClassName)
        guard k.reader.has("activation") else { throw ConfigError(k.reader.object, argument: "activation", "is required") }
        let layer = Activation(try k.activation(), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Returns its input unchanged.
public final class Identity: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Identity" }
    public init(name: String? = nil) { super.init(name: name) }
    public override var supportsMasking: Bool { true }
    public static func from(config: Config) throws -> Identity {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Identity(name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Masks timesteps whose features all equal `maskValue`: they are zeroed, and the mask
/// [batch, timesteps] goes to the layers after it.
public final class Masking: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Masking" }
    public let maskValue: Float

    public init(maskValue: Float = 0, name: String? = nil) {
        self.maskValue = maskValue
        super.init(name: name)
    }

    /// 1 where any feature differs from the mask value, with the feature axis kept.
    func keep(_ x: Tensor) -> Tensor {
        x.detached.equal(Tensor(maskValue)).min(axes: [-1], keepDims: true).mapNot()
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0] * keep(inputs[0])
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        keep(inputs[0]).squeezed(axes: [-1])
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["mask_value": .from(maskValue)] }

    public static func from(config: Config) throws -> Masking {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Masking(maskValue: try k.reader.float("mask_value", default: 0), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

extension Tensor {
    /// 1 - x for a 0/1 mask.
    func mapNot() -> Tensor { 1 - self }
}

/// Rows of a [input_dim, output_dim] table picked by integer indices; with mask_zero, index 0
/// is padding and masked.
public final class Embedding: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Embedding" }
    public let inputDim: Int, outputDim: Int
    public let embeddingsInitializer: any Initializer
    public let embeddingsRegularizer: (any Regularizer)?
    public let embeddingsConstraint: (any Constraint)?
    public let maskZero: Bool
    public private(set) var embeddings: Parameter!

    public init(inputDim: Int, outputDim: Int, embeddingsInitializer: any Initializer = RandomUniform(),
                embeddingsRegularizer: (any Regularizer)? = nil, activityRegularizer: (any Regularizer)? = nil,
                embeddingsConstraint: (any Constraint)? = nil, maskZero: Bool = false,
                name: String? = nil) throws(ConfigError) {
        guard inputDim > 0 else { throw ConfigError(name ?? "Embedding", argument: "input_dim", "must be a positive integer, got \(inputDim)") }
        guard outputDim > 0 else { throw ConfigError(name ?? "Embedding", argument: "output_dim", "must be a positive integer, got \(outputDim)") }
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.embeddingsInitializer = embeddingsInitializer
        self.embeddingsRegularizer = embeddingsRegularizer
        self.embeddingsConstraint = embeddingsConstraint
        self.maskZero = maskZero
        super.init(name: name, activityRegularizer: activityRegularizer)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        embeddings = try addWeight("embeddings", shape: [inputDim, outputDim], initializer: embeddingsInitializer,
                               regularizer: embeddingsRegularizer, constraint: embeddingsConstraint)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let indices = inputs[0]
        let bad = indices.scalars.first { $0 < 0 || $0 >= Float(inputDim) || $0 != $0.rounded() }
        if let bad {
            throw ConfigError(name, "index \(bad) is not an integer in 0..<\(inputDim)")
        }
        return embeddings.tracked.gather(indices, axis: 0)
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        maskZero ? inputs[0].detached.equal(Tensor(0)).mapNot() : nil
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        inputShapes[0] + [outputDim]
    }

    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        ["input_dim": .int(inputDim), "output_dim": .int(outputDim),
         "embeddings_initializer": embeddingsInitializer.serialized,
         "embeddings_regularizer": embeddingsRegularizer?.serialized ?? nil,
         "activity_regularizer": activityRegularizer?.serialized ?? nil,
         "embeddings_constraint": embeddingsConstraint?.serialized ?? nil,
         "mask_zero": .bool(maskZero), "quantization_config": nil]
    }

    public static func from(config: Config) throws -> Embedding {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Embedding(inputDim: try k.reader.size("input_dim"), outputDim: try k.reader.size("output_dim"),
                                  embeddingsInitializer: try k.initializer("embeddings_initializer", default: RandomUniform()),
                                  embeddingsRegularizer: try k.regularizer("embeddings_regularizer"),
                                  embeddingsConstraint: try k.constraint("embeddings_constraint"),
                                  maskZero: try k.reader.bool("mask_zero", default: false), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// A Swift function as a layer; gradients flow through the tensor operations it uses.
/// Keras saves a Lambda's Python code, which Loom cannot run: register the Swift function
/// under the layer's function name with `Lambda.register` to load such a model.
public final class Lambda: Layer, KerasLayer, @unchecked Sendable {
    public typealias Function = @Sendable ([Tensor], Config) throws -> Tensor
    public override class var kerasClassName: String { "Lambda" }
    /// Keras's call takes a mask argument (recorded in a functional config's node kwargs).
    public override var callTakesMask: Bool { true }
    public let functionName: String
    public let function: Function
    public let outputShape: TensorShape?
    public let arguments: Config
    public let maskFunction: (@Sendable ([Tensor], [Tensor?]) -> Tensor?)?

    /// `function` gets the inputs (one for most uses) and `arguments`.
    public init(functionName: String, outputShape: TensorShape? = nil, arguments: Config = [:],
                mask: (@Sendable ([Tensor], [Tensor?]) -> Tensor?)? = nil, name: String? = nil,
                _ function: @escaping Function) {
        self.functionName = functionName
        self.function = function
        self.outputShape = outputShape
        self.arguments = arguments
        self.maskFunction = mask
        super.init(name: name)
    }

    /// A one-tensor function.
    public convenience init(functionName: String, outputShape: TensorShape? = nil, name: String? = nil,
                            _ function: @escaping @Sendable (Tensor) throws -> Tensor) {
        self.init(functionName: functionName, outputShape: outputShape, name: name) { inputs, _ in try function(inputs[0]) }
    }

    public override var takesMultipleInputs: Bool { false }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        try function(inputs, arguments)
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        maskFunction?(inputs, masks)
    }

    /// The given output shape (batch axis included or not), or the shape found by running the
    /// function on zeros when every non-batch size is known.
    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        if let outputShape {
            return outputShape.count == inputShapes[0].count - 1 || outputShape.first != nil
                ? [inputShapes[0].first ?? nil] + outputShape : outputShape
        }
        var probes: [Tensor] = []
        for shape in inputShapes {
            guard shape.dropFirst().allSatisfy({ $0 != nil }) else {
                throw ConfigError(name, argument: "output_shape",
                                  "is needed: the input shape \(shape.text) has unknown sizes, so the output shape cannot be inferred")
            }
            probes.append(Tensor.zeros([1] + shape.dropFirst().map { $0! }))
        }
        let y = try function(probes, arguments)
        return [inputShapes[0].first ?? nil] + y.shape.dropFirst().map(Optional.some)
    }

    public override var layerConfig: Config {
        var c: Config = ["function": ["class_name": "__loom_function__", "config": .string(functionName)],
                         "arguments": .object(arguments)]
        if let outputShape { c["output_shape"] = .array(outputShape.map { .from($0) }) }
        return c
    }

    // MARK: Registered functions

    private static let functions = Registry<Function>(kind: "Lambda function")

    /// Makes `function` loadable from configs whose Lambda names it `name`.
    public static func register(_ name: String, _ function: @escaping Function) {
        functions.register(name) { _ in function }
    }

    public static func from(config: Config) throws -> Lambda {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let functionName: String
        switch config["function"] {
        case let .object(f)? where f["class_name"] == "__loom_function__":
            guard case let .string(n)? = f["config"] else {
                throw ConfigError(k.reader.object, argument: "function", "has no function name")
            }
            functionName = n
        case let .object(f)? where f["class_name"] == "function":
            // A named Python function: Keras writes its name, which a Swift function may carry.
            guard case let .string(n)? = f["config"] else {
                throw ConfigError(k.reader.object, argument: "function", "has no function name")
            }
            functionName = n
        case .object?:
            // Python bytecode (an anonymous lambda): never run; a Swift function registered
            // under the layer's name stands in for it.
            let layerName = k.name ?? "lambda"
            guard functions.names.contains(layerName) else {
                throw ConfigError(k.reader.object, argument: "function",
                                  "holds Python bytecode, which Loom never runs; register a Swift function under the layer's name "
                                  + "with Lambda.register(\"\(layerName)\") { inputs, arguments in ... } before loading")
            }
            functionName = layerName
        case let .string(n)?:
            functionName = n
        default:
            throw ConfigError(k.reader.object, argument: "function", "is required")
        }
        let function = try functions.make(.string(functionName), owner: k.reader.object, argument: "function")
        var arguments: Config = [:]
        if case let .object(a)? = config["arguments"] { arguments = a }
        let outputShape = k.reader.has("output_shape") ? try k.optionalDims("output_shape") : nil
        let layer = Lambda(functionName: functionName, outputShape: outputShape, arguments: arguments, name: k.name, function)
        try k.applyBase(to: layer)
        return layer
    }
}

/// The entry point of a functional model: it stands for the inputs of `shape` (batch axis
/// excluded) and checks that real inputs have it.
public final class InputLayer: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "InputLayer" }
    /// The full shape, batch axis first.
    public let batchShape: TensorShape
    /// The dtype Keras feeds: float32, or an integer type for indices (Embedding's inputs),
    /// which Loom carries as float32 (exact below 2^24).
    public let dtype: String
    /// The dtypes an input may declare.
    public static let dtypes: Set<String> = ["float32", "int32", "int64", "int16", "int8", "uint8", "uint16", "uint32"]

    public init(shape: TensorShape, batchSize: Int? = nil, dtype: String = "float32", name: String? = nil) {
        batchShape = [batchSize] + shape
        self.dtype = dtype
        super.init(name: name)
        batchInputShape = batchShape
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let expected = batchShape
        // A fixed batch size is the whole batch's, which a worker's shard is part of.
        let shape = x.rank > 0 ? [context.batchSize ?? x.shape[0]] + x.shape.dropFirst() : x.shape
        let matches = x.rank == expected.count && zip(shape, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard matches else { throw ConfigError(name, "expects inputs of shape \(expected.text), got \(shape)") }
        return x
    }

    /// Keras writes an InputLayer without trainable or a dtype policy.
    public override var config: Config {
        ["batch_shape": .array(batchShape.map { .from($0) }), "dtype": .string(dtype), "sparse": false, "ragged": false,
         "name": .string(name), "optional": false]
    }

    public static func from(config: Config) throws -> InputLayer {
        var config = config
        var dtype = "float32"
        if case let .string(d)? = config["dtype"] {
            guard dtypes.contains(d) else {
                throw ConfigError(try ConfigReader(config, object: kerasClassName).string("name", default: kerasClassName), argument: "dtype",
                                  "inputs of dtype \(d) are not supported (supported: \(dtypes.sorted().joined(separator: ", ")))")
            }
            dtype = d
            config["dtype"] = .null
        }
        let k = try LayerConfigReader(config, className: kerasClassName)
        if try k.reader.bool("sparse", default: false) {
            throw ConfigError(k.reader.object, argument: "sparse", "sparse inputs are not supported")
        }
        if try k.reader.bool("ragged", default: false) {
            throw ConfigError(k.reader.object, argument: "ragged", "ragged inputs are not supported")
        }
        guard let full = try k.batchInputShape(), !full.isEmpty else {
            throw ConfigError(k.reader.object, argument: "shape", "is required (batch_shape or input_shape)")
        }
        let layer = InputLayer(shape: Array(full.dropFirst()), batchSize: full[0], dtype: dtype, name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
