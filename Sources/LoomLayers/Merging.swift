import LoomTensor

/// The base of the elementwise merge layers: inputs broadcast together and folded pairwise;
/// their masks are combined with a logical and.
public class Merge: Layer, @unchecked Sendable {
    /// Folds two tensors into one.
    func combine(_ a: Tensor, _ b: Tensor) -> Tensor { a + b }
    /// Applied to the folded result (Average divides by the count).
    func finish(_ y: Tensor, count: Int) -> Tensor { y }

    public required init(name: String? = nil) { super.init(name: name) }

    public override var takesMultipleInputs: Bool { true }
    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override func build(_ inputShapes: [TensorShape]) throws {
        // Shapes must broadcast (unknown sizes match anything).
        let rank = inputShapes.map(\.count).max() ?? 0
        for i in 0..<rank {
            var size: Int? = 1
            for s in inputShapes {
                let d = i < rank - s.count ? 1 : s[i - (rank - s.count)]
                guard let d, d != 1 else { continue }
                if let current = size, current != 1, current != d {
                    throw ConfigError(name, "inputs of shapes \(inputShapes.map(\.text).joined(separator: ", ")) cannot be merged")
                }
                size = d
            }
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        var y = inputs[0]
        for x in inputs.dropFirst() { y = combine(y, x) }
        return finish(y, count: inputs.count)
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        let present = masks.compactMap { $0 }
        guard var m = present.first else { return nil }
        for other in present.dropFirst() { m = m * other }
        return m
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let rank = inputShapes.map(\.count).max() ?? 0
        return (0..<rank).map { i in
            var size: Int? = 1
            for s in inputShapes {
                let d = i < rank - s.count ? 1 : s[i - (rank - s.count)]
                if d != 1 { size = d }
            }
            return size
        }
    }

    static func makeMerge(_ config: Config) throws -> Self {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Self(name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// The sum of the inputs.
public final class Add: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Add" }
    public static func from(config: Config) throws -> Add { try makeMerge(config) }
}

/// The first input minus the second (exactly two inputs).
public final class Subtract: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Subtract" }
    override func combine(_ a: Tensor, _ b: Tensor) -> Tensor { a - b }
    public override func build(_ inputShapes: [TensorShape]) throws {
        guard inputShapes.count == 2 else { throw ConfigError(name, "expects exactly 2 inputs, got \(inputShapes.count)") }
        try super.build(inputShapes)
    }
    public static func from(config: Config) throws -> Subtract { try makeMerge(config) }
}

/// The product of the inputs.
public final class Multiply: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Multiply" }
    override func combine(_ a: Tensor, _ b: Tensor) -> Tensor { a * b }
    public static func from(config: Config) throws -> Multiply { try makeMerge(config) }
}

/// The mean of the inputs.
public final class Average: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Average" }
    override func finish(_ y: Tensor, count: Int) -> Tensor { y / Float(count) }
    public static func from(config: Config) throws -> Average { try makeMerge(config) }
}

/// The elementwise maximum of the inputs.
public final class Maximum: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Maximum" }
    override func combine(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.maximum(a, b) }
    public static func from(config: Config) throws -> Maximum { try makeMerge(config) }
}

/// The elementwise minimum of the inputs.
public final class Minimum: Merge, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Minimum" }
    override func combine(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.minimum(a, b) }
    public static func from(config: Config) throws -> Minimum { try makeMerge(config) }
}

/// The inputs joined along `axis`.
public final class Concatenate: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Concatenate" }
    public let axis: Int

    public init(axis: Int = -1, name: String? = nil) {
        self.axis = axis
        super.init(name: name)
    }

    public override var takesMultipleInputs: Bool { true }
    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let rank = inputShapes[0].count
        guard inputShapes.allSatisfy({ $0.count == rank }), axis >= -rank && axis < rank, (axis + rank) % rank != 0 else {
            throw ConfigError(name, argument: "axis", "\(axis) cannot join inputs of shapes \(inputShapes.map(\.text).joined(separator: ", "))")
        }
        let a = (axis + rank) % rank
        for i in 0..<rank where i != a {
            let sizes = Set(inputShapes.compactMap { $0[i] })
            guard sizes.count <= 1 else {
                throw ConfigError(name, "inputs of shapes \(inputShapes.map(\.text).joined(separator: ", ")) differ outside axis \(axis)")
            }
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        Tensor.concatenate(inputs, axis: axis)
    }

    /// Keras joins masks along the axis, with all-ones masks for inputs that have none.
    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        guard masks.contains(where: { $0 != nil }) else { return nil }
        let rank = inputs[0].rank
        let a = (axis + rank) % rank
        let full = zip(inputs, masks).map { x, m -> Tensor in
            let mask = m ?? Tensor.ones(Array(x.shape.prefix(max(1, x.rank - 1))))
            return mask.rank < x.rank ? mask.expandingDims(at: -1).broadcast(to: x.shape) : mask
        }
        let joined = Tensor.concatenate(full, axis: a)
        return joined.min(axes: [-1])
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let rank = inputShapes[0].count
        let a = (axis + rank) % rank
        var out = inputShapes[0]
        out[a] = inputShapes.contains { $0[a] == nil } ? nil : inputShapes.reduce(0) { $0 + $1[a]! }
        return out
    }

    public override var layerConfig: Config { ["axis": .int(axis)] }

    public static func from(config: Config) throws -> Concatenate {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = Concatenate(axis: try k.reader.int("axis", default: -1), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Batched dot products of two inputs along `axes` (Keras's batch_dot), optionally of
/// L2-normalized samples (cosine proximity).
public final class Dot: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Dot" }
    public let axes: [Int]
    public let normalize: Bool

    public init(axes: [Int], normalize: Bool = false, name: String? = nil) throws(ConfigError) {
        guard axes.count == 1 || axes.count == 2 else {
            throw ConfigError(name ?? "Dot", argument: "axes", "must be one axis or a pair, got \(axes)")
        }
        self.axes = axes
        self.normalize = normalize
        super.init(name: name)
    }

    public override var takesMultipleInputs: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    func resolvedAxes(_ ranks: [Int]) throws(ConfigError) -> (Int, Int) {
        let pair = axes.count == 1 ? [axes[0], axes[0]] : axes
        let a = pair[0] < 0 ? pair[0] + ranks[0] : pair[0], b = pair[1] < 0 ? pair[1] + ranks[1] : pair[1]
        guard a >= 1 && a < ranks[0] && b >= 1 && b < ranks[1] else {
            throw ConfigError(name, argument: "axes", "\(axes) is not a non-batch axis of inputs of ranks \(ranks)")
        }
        return (a, b)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        guard inputShapes.count == 2 else { throw ConfigError(name, "expects exactly 2 inputs, got \(inputShapes.count)") }
        let (a, b) = try resolvedAxes(inputShapes.map(\.count))
        if let da = inputShapes[0][a], let db = inputShapes[1][b], da != db {
            throw ConfigError(name, argument: "axes", "sizes \(da) and \(db) along axes \(axes) differ")
        }
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        var (x, y) = (inputs[0], inputs[1])
        let (a, b) = try resolvedAxes([x.rank, y.rank])
        if normalize {
            // x · min(1 / ||x||, 1 / epsilon), as keras.ops.normalize.
            x = x * Tensor.minimum(x.square().sum(axes: [a], keepDims: true).rsqrt(), Tensor(1 / kerasEpsilon))
            y = y * Tensor.minimum(y.square().sum(axes: [b], keepDims: true).rsqrt(), Tensor(1 / kerasEpsilon))
        }
        let batch = x.shape[0]
        // x to [batch, rest, K], y to [batch, K, rest]: one batched product.
        let xRest = x.shape.indices.filter { $0 != 0 && $0 != a }, yRest = y.shape.indices.filter { $0 != 0 && $0 != b }
        let xm = x.transposed([0] + xRest + [a]).reshaped([batch, -1, x.shape[a]])
        let ym = y.transposed([0, b] + yRest).reshaped([batch, y.shape[b], -1])
        var outShape = [batch] + xRest.map { x.shape[$0] } + yRest.map { y.shape[$0] }
        if outShape.count == 1 { outShape.append(1) }
        return xm.matmul(ym).reshaped(outShape)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let (a, b) = try resolvedAxes(inputShapes.map(\.count))
        var out: TensorShape = [inputShapes[0][0]]
        out += inputShapes[0].indices.filter { $0 != 0 && $0 != a }.map { inputShapes[0][$0] }
        out += inputShapes[1].indices.filter { $0 != 0 && $0 != b }.map { inputShapes[1][$0] }
        return out.count == 1 ? out + [1] : out
    }

    public override var layerConfig: Config { ["axes": axisJSON(axes), "normalize": .bool(normalize)] }

    public static func from(config: Config) throws -> Dot {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try Dot(axes: try k.reader.ints("axes"), normalize: try k.reader.bool("normalize", default: false), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
