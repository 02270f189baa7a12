import LoomTensor

/// [batch, ...] to [batch, product]; channels_first inputs are moved to channels-last first.
public final class Flatten: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Flatten" }
    public let dataFormat: DataFormat

    public init(dataFormat: DataFormat = .channelsLast, name: String? = nil) {
        self.dataFormat = dataFormat
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        var x = inputs[0]
        if dataFormat == .channelsFirst && x.rank > 2 {
            x = x.transposed([0] + Array(2..<x.rank) + [1])
        }
        return x.reshaped([x.shape[0], x.shape.dropFirst().reduce(1, *)])
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let rest = inputShapes[0].dropFirst()
        if rest.contains(nil) { return [inputShapes[0][0], nil] }
        return [inputShapes[0][0], try ShapeLimits.checkedCount(rest.map { $0! }, owner: name, what: "the input")]
    }

    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config { ["data_format": .string(dataFormat.rawValue)] }

    public static func from(config: Config) throws -> Flatten {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Flatten(dataFormat: try DataFormat.read(k, "data_format"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Keras's data_format: where the channel axis is.
public enum DataFormat: String, Sendable {
    case channelsLast = "channels_last", channelsFirst = "channels_first"

    static func read(_ k: LayerConfigReader, _ key: String) throws(ConfigError) -> DataFormat {
        let text = try k.reader.string(key, default: "channels_last")
        guard let format = DataFormat(rawValue: text) else {
            throw ConfigError(k.reader.object, argument: key, "must be channels_last or channels_first, got '\(text)'")
        }
        return format
    }
}

/// Reshapes each sample to `targetShape` (one size may be -1).
public final class Reshape: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Reshape" }
    public let targetShape: [Int]

    public init(targetShape: [Int], name: String? = nil) throws(ConfigError) {
        let layerName = name ?? "Reshape"
        guard targetShape.filter({ $0 == -1 }).count <= 1, targetShape.allSatisfy({ $0 == -1 || $0 > 0 }) else {
            throw ConfigError(layerName, argument: "target_shape", "sizes must be positive with at most one -1, got \(targetShape)")
        }
        self.targetShape = targetShape
        super.init(name: name)
    }

    /// The target with -1 resolved for samples of `count` elements.
    func resolved(_ count: Int, _ inputShape: TensorShape) throws(ConfigError) -> [Int] {
        let known = try ShapeLimits.checkedCount(targetShape.filter { $0 != -1 }, owner: name, what: "target_shape")
        if targetShape.contains(-1) {
            guard known > 0, count % known == 0 else {
                throw ConfigError(name, argument: "target_shape", "\(targetShape) does not fit inputs of shape \(inputShape.text)")
            }
            return targetShape.map { $0 == -1 ? count / known : $0 }
        }
        guard known == count else {
            throw ConfigError(name, argument: "target_shape",
                              "\(targetShape) holds \(known) values, inputs of shape \(inputShape.text) hold \(count)")
        }
        return targetShape
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        // Refuse a target that cannot fit before any data flows.
        if let dims = try? knownDims(inputShapes[0], name, "Reshape") {
            _ = try resolved(try ShapeLimits.checkedCount(dims, owner: name, what: "the input"), inputShapes[0])
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        return x.reshaped([x.shape[0]] + (try resolved(x.shape.dropFirst().reduce(1, *), x.shape.map { $0 })))
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        if let dims = try? knownDims(s, name, "Reshape") {
            return [s[0]] + (try resolved(try ShapeLimits.checkedCount(dims, owner: name, what: "the input"), s)).map(Optional.some)
        }
        return [s[0]] + targetShape.map { $0 == -1 ? nil : $0 }
    }

    public override var layerConfig: Config { ["target_shape": .from(targetShape)] }

    public static func from(config: Config) throws -> Reshape {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Reshape(targetShape: try k.reader.ints("target_shape"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Reorders the non-batch axes; `dims` is 1-based, as in Keras.
public final class Permute: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Permute" }
    public let dims: [Int]

    public init(dims: [Int], name: String? = nil) throws(ConfigError) {
        guard dims.sorted() == Array(1...max(1, dims.count)), !dims.isEmpty else {
            throw ConfigError(name ?? "Permute", argument: "dims", "must be a permutation of 1...\(dims.count), got \(dims)")
        }
        self.dims = dims
        super.init(name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        try checkRank(inputShapes[0])
    }

    private func checkRank(_ shape: TensorShape) throws {
        guard shape.count == dims.count + 1 else {
            throw ConfigError(name, "dims \(dims) permute inputs of rank \(dims.count + 1), got \(shape.text)")
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0].transposed([0] + dims)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        try checkRank(inputShapes[0])
        return [inputShapes[0][0]] + dims.map { inputShapes[0][$0] }
    }

    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config { ["dims": .from(dims)] }

    public static func from(config: Config) throws -> Permute {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Permute(dims: try k.reader.ints("dims"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// [batch, features] to [batch, n, features].
public final class RepeatVector: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "RepeatVector" }
    public let n: Int

    public init(n: Int, name: String? = nil) throws(ConfigError) {
        guard n > 0 else { throw ConfigError(name ?? "RepeatVector", argument: "n", "must be a positive integer, got \(n)") }
        self.n = n
        super.init(name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        guard inputShapes[0].count == 2 else {
            throw ConfigError(name, "expects inputs of rank 2, got \(inputShapes[0].text)")
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        return x.expandingDims(at: 1).broadcast(to: [x.shape[0], n, x.shape[1]])
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        [inputShapes[0][0], n, inputShapes[0][1]]
    }

    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config { ["n": .int(n)] }

    public static func from(config: Config) throws -> RepeatVector {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try RepeatVector(n: try k.reader.size("n"), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// x · scale + offset.
public final class Rescaling: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Rescaling" }
    public let scale: Float, offset: Float

    public init(scale: Float, offset: Float = 0, name: String? = nil) {
        self.scale = scale
        self.offset = offset
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        inputs[0] * scale + offset
    }

    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config { ["scale": .from(scale), "offset": .from(offset)] }

    public static func from(config: Config) throws -> Rescaling {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Rescaling(scale: try k.reader.float("scale"), offset: try k.reader.float("offset", default: 0), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
