import LoomTensor

/// The gamma / beta settings every normalization layer shares.
public struct AffineOptions: Sendable {
    public let center: Bool, scale: Bool
    public let betaInitializer: any Initializer, gammaInitializer: any Initializer
    public let betaRegularizer: (any Regularizer)?, gammaRegularizer: (any Regularizer)?
    public let betaConstraint: (any Constraint)?, gammaConstraint: (any Constraint)?

    public init(center: Bool = true, scale: Bool = true, betaInitializer: any Initializer = Zeros(),
         gammaInitializer: any Initializer = Ones(), betaRegularizer: (any Regularizer)? = nil,
         gammaRegularizer: (any Regularizer)? = nil, betaConstraint: (any Constraint)? = nil,
         gammaConstraint: (any Constraint)? = nil) {
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
    }

    static func read(_ k: LayerConfigReader) throws(ConfigError) -> AffineOptions {
        AffineOptions(center: try k.reader.bool("center", default: true), scale: try k.reader.bool("scale", default: true),
                      betaInitializer: try k.initializer("beta_initializer", default: Zeros()),
                      gammaInitializer: try k.initializer("gamma_initializer", default: Ones()),
                      betaRegularizer: try k.regularizer("beta_regularizer"), gammaRegularizer: try k.regularizer("gamma_regularizer"),
                      betaConstraint: try k.constraint("beta_constraint"), gammaConstraint: try k.constraint("gamma_constraint"))
    }

    var config: Config {
        ["center": .bool(center), "scale": .bool(scale), "beta_initializer": betaInitializer.serialized,
         "gamma_initializer": gammaInitializer.serialized, "beta_regularizer": betaRegularizer?.serialized ?? .null,
         "gamma_regularizer": gammaRegularizer?.serialized ?? .null, "beta_constraint": betaConstraint?.serialized ?? .null,
         "gamma_constraint": gammaConstraint?.serialized ?? .null]
    }

    /// Creates gamma then beta (Keras's order) of `shape` on `layer`.
    func addWeights(to layer: Layer, shape: [Int]) throws(ConfigError) -> (gamma: Parameter?, beta: Parameter?) {
        let gamma = scale ? try layer.addWeight("gamma", shape: shape, initializer: gammaInitializer,
                                            regularizer: gammaRegularizer, constraint: gammaConstraint) : nil
        let beta = center ? try layer.addWeight("beta", shape: shape, initializer: betaInitializer,
                                            regularizer: betaRegularizer, constraint: betaConstraint) : nil
        return (gamma, beta)
    }
}

/// y · gamma + beta, each per-feature weight (when present) reshaped to `shape` to broadcast.
func scaleAndShift(_ y: Tensor, gamma: Parameter?, beta: Parameter?, shape: [Int]) -> Tensor {
    var out = y
    if let gamma { out = out * gamma.tracked.reshaped(shape) }
    if let beta { out = out + beta.tracked.reshaped(shape) }
    return out
}

/// The normalized axes of a layer, resolved against the input rank, with the shape of the
/// per-feature weights broadcast against the input.
func featureAxes(_ axes: [Int], rank: Int, layer: String) throws(ConfigError) -> [Int] {
    var out: [Int] = []
    for a in axes {
        let r = a < 0 ? a + rank : a
        guard r >= 1 && r < rank else { throw ConfigError(layer, argument: "axis", "\(a) is out of range for inputs of rank \(rank)") }
        out.append(r)
    }
    return out.sorted()
}

/// Normalizes with batch statistics in training (updating the moving mean and variance by
/// `momentum`) and with the moving statistics in inference or when frozen, as Keras 3 does.
public final class BatchNormalization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "BatchNormalization" }
    /// Keras's call takes a mask argument (recorded in a functional config's node kwargs).
    public override var callTakesMask: Bool { true }
    public let axis: Int
    public let momentum: Float, epsilon: Float
    let affine: AffineOptions
    public let movingMeanInitializer: any Initializer, movingVarianceInitializer: any Initializer
    public private(set) var gamma: Parameter?, beta: Parameter?
    public private(set) var movingMean: Parameter!, movingVariance: Parameter!
    var axes: [Int] = []

    public init(axis: Int = -1, momentum: Float = 0.99, epsilon: Float = 1e-3, affine: AffineOptions,
                movingMeanInitializer: any Initializer = Zeros(), movingVarianceInitializer: any Initializer = Ones(),
                name: String? = nil) throws(ConfigError) {
        guard epsilon > 0 else { throw ConfigError(name ?? "BatchNormalization", argument: "epsilon", "must be positive, got \(epsilon)") }
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.affine = affine
        self.movingMeanInitializer = movingMeanInitializer
        self.movingVarianceInitializer = movingVarianceInitializer
        super.init(name: name)
    }

    public convenience init(axis: Int = -1, momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                            betaInitializer: any Initializer = Zeros(), gammaInitializer: any Initializer = Ones(),
                            movingMeanInitializer: any Initializer = Zeros(), movingVarianceInitializer: any Initializer = Ones(),
                            betaRegularizer: (any Regularizer)? = nil, gammaRegularizer: (any Regularizer)? = nil,
                            betaConstraint: (any Constraint)? = nil, gammaConstraint: (any Constraint)? = nil,
                            name: String? = nil) throws(ConfigError) {
        try self.init(axis: axis, momentum: momentum, epsilon: epsilon,
                      affine: AffineOptions(center: center, scale: scale, betaInitializer: betaInitializer,
                                            gammaInitializer: gammaInitializer, betaRegularizer: betaRegularizer,
                                            gammaRegularizer: gammaRegularizer, betaConstraint: betaConstraint,
                                            gammaConstraint: gammaConstraint),
                      movingMeanInitializer: movingMeanInitializer, movingVarianceInitializer: movingVarianceInitializer, name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        axes = try featureAxes([axis], rank: shape.count, layer: name)
        guard let features = shape[axes[0]] else { throw ConfigError(name, "the feature axis of \(shape.text) must be known") }
        (gamma, beta) = try affine.addWeights(to: self, shape: [features])
        movingMean = try addWeight("moving_mean", shape: [features], initializer: movingMeanInitializer, trainable: false)
        movingVariance = try addWeight("moving_variance", shape: [features], initializer: movingVarianceInitializer, trainable: false)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let a = axes[0]
        let reduce = (0..<x.rank).filter { $0 != a }
        let broadcast = (0..<x.rank).map { $0 == a ? x.shape[a] : 1 }
        if a == x.rank - 1 && (masks.first ?? nil) == nil, let y = try fused(x, context: context) { return y }
        let mean: Tensor, variance: Tensor
        if context.training && trainable {
            if context.isSharded {
                // Whole-batch statistics: sums over this shard, added across the workers.
                let m = (masks.first ?? nil).map { $0.reshaped($0.shape + [1]) } ?? Tensor.ones(broadcast.map { _ in 1 })
                let ones = m * Tensor.ones(x.shape)
                let count = try context.sumAcrossShards(ones.sum(axes: reduce, keepDims: true))
                mean = try context.sumAcrossShards((x * m).sum(axes: reduce, keepDims: true)) / count
                variance = try context.sumAcrossShards(((x - mean).square() * m).sum(axes: reduce, keepDims: true)) / count
            } else if let mask = masks.first ?? nil {
                let m = mask.reshaped(mask.shape + [1])
                let count = (m * Tensor.ones(x.shape)).sum(axes: reduce, keepDims: true)
                mean = (x * m).sum(axes: reduce, keepDims: true) / count
                variance = ((x - mean).square() * m).sum(axes: reduce, keepDims: true) / count
            } else {
                mean = x.mean(axes: reduce, keepDims: true)
                variance = (x - mean).square().mean(axes: reduce, keepDims: true)
            }
            context.updateState(movingMean, movingMean.value * momentum + mean.detached.reshaped([-1]) * (1 - momentum))
            context.updateState(movingVariance, movingVariance.value * momentum + variance.detached.reshaped([-1]) * (1 - momentum))
        } else {
            mean = movingMean.value.reshaped(broadcast)
            variance = movingVariance.value.reshaped(broadcast)
        }
        return scaleAndShift((x - mean) * (variance + epsilon).rsqrt(), gamma: gamma, beta: beta, shape: broadcast)
    }

    /// Channels last and no mask: one op (Tensor+BatchNormalization.swift) instead of a chain
    /// of elementwise ones. Nil where the chain is still needed: fixed statistics with gamma or
    /// beta asking for gradients.
    private func fused(_ x: Tensor, relu: Bool = false, context: ForwardContext) throws -> Tensor? {
        let g = gamma?.tracked, b = beta?.tracked
        if context.training && trainable {
            let (y, mean, variance) = try x.batchNormalized(gamma: g, beta: b, epsilon: epsilon, relu: relu,
                                                            group: context.shardGroup, worker: context.worker)
            context.updateState(movingMean, movingMean.value * momentum + mean * (1 - momentum))
            context.updateState(movingVariance, movingVariance.value * momentum + variance * (1 - momentum))
            return y
        }
        guard !(g?.requiresGradient ?? false) && !(b?.requiresGradient ?? false) else { return nil }
        let (scale, shift) = foldedScaleAndShift()
        return x.channelAffine(scale: scale, shift: shift, relu: relu)
    }

    /// Takes the ReLU after it (channels last, no affine tail of its own).
    public override func callFused(_ x: Tensor, fused: FusedLayers, context: ForwardContext) throws -> Tensor? {
        guard fused.padding == nil, fused.affine == nil, axes[0] == x.rank - 1, activityRegularizer == nil else { return nil }
        return try self.fused(x, relu: fused.relu, context: context)
    }

    /// The per-channel affine this layer applies when it uses its moving statistics (at
    /// inference, or frozen), for a layer before it to fold in; nil while training it.
    public func fixedAffine(_ context: ForwardContext) -> (scale: Tensor, shift: Tensor)? {
        guard !(context.training && trainable), activityRegularizer == nil else { return nil }
        return foldedScaleAndShift()
    }

    /// The moving statistics, gamma and beta as one per-channel y = x · scale + shift.
    private func foldedScaleAndShift() -> (scale: Tensor, shift: Tensor) {
        let inverse = (movingVariance.value + epsilon).rsqrt()
        let scale = gamma.map { inverse * $0.value } ?? inverse
        let shift = (beta?.value ?? Tensor.zeros(scale.shape)) - movingMean.value * scale
        return (scale, shift)
    }

    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = affine.config
        c["axis"] = .int(axis)
        c["momentum"] = .from(momentum)
        c["epsilon"] = .from(epsilon)
        c["moving_mean_initializer"] = movingMeanInitializer.serialized
        c["moving_variance_initializer"] = movingVarianceInitializer.serialized
        c["synchronized"] = false
        c["renorm"] = false
        c["renorm_clipping"] = .null
        c["renorm_momentum"] = 0.99
        return c
    }

    public static func from(config: Config) throws -> BatchNormalization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        if try k.reader.bool("renorm", default: false) {
            throw ConfigError(k.reader.object, argument: "renorm", "batch renormalization is not supported")
        }
        let axes = try k.reader.ints("axis", default: [-1])
        guard axes.count == 1 else { throw ConfigError(k.reader.object, argument: "axis", "one axis is supported, got \(axes)") }
        let layer = try BatchNormalization(axis: axes[0], momentum: try k.reader.float("momentum", default: 0.99),
                                           epsilon: try k.reader.float("epsilon", default: 1e-3), affine: try AffineOptions.read(k),
                                           movingMeanInitializer: try k.initializer("moving_mean_initializer", default: Zeros()),
                                           movingVarianceInitializer: try k.initializer("moving_variance_initializer", default: Ones()),
                                           name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Normalizes each sample over `axis`: (x - mean) / sqrt(var + epsilon) · gamma + beta; with
/// rms_scaling, Keras 3's x / sqrt(var + epsilon) · gamma.
public final class LayerNormalization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "LayerNormalization" }
    public let axis: [Int]
    public let epsilon: Float
    public let rmsScaling: Bool
    let affine: AffineOptions
    public private(set) var gamma: Parameter?, beta: Parameter?
    var axes: [Int] = []

    public init(axis: [Int] = [-1], epsilon: Float = 1e-3, rmsScaling: Bool = false, affine: AffineOptions, name: String? = nil) {
        self.axis = axis
        self.epsilon = epsilon
        self.rmsScaling = rmsScaling
        self.affine = affine
        super.init(name: name)
    }

    public convenience init(axis: [Int] = [-1], epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, rmsScaling: Bool = false,
                            betaInitializer: any Initializer = Zeros(), gammaInitializer: any Initializer = Ones(),
                            betaRegularizer: (any Regularizer)? = nil, gammaRegularizer: (any Regularizer)? = nil,
                            betaConstraint: (any Constraint)? = nil, gammaConstraint: (any Constraint)? = nil, name: String? = nil) {
        self.init(axis: axis, epsilon: epsilon, rmsScaling: rmsScaling,
                  affine: AffineOptions(center: center, scale: scale, betaInitializer: betaInitializer, gammaInitializer: gammaInitializer,
                                        betaRegularizer: betaRegularizer, gammaRegularizer: gammaRegularizer,
                                        betaConstraint: betaConstraint, gammaConstraint: gammaConstraint),
                  name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        axes = try featureAxes(axis, rank: shape.count, layer: name)
        let weightShape = try axes.map { a throws(ConfigError) -> Int in
            guard let d = shape[a] else { throw ConfigError(name, "axis \(a) of \(shape.text) must be known") }
            return d
        }
        // With rms_scaling Keras creates no beta, whatever `center` says.
        (gamma, beta) = try (rmsScaling ? AffineOptions(center: false, scale: affine.scale, gammaInitializer: affine.gammaInitializer,
                                                    gammaRegularizer: affine.gammaRegularizer, gammaConstraint: affine.gammaConstraint)
                                    : affine).addWeights(to: self, shape: weightShape)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let broadcast = (0..<x.rank).map { axes.contains($0) ? x.shape[$0] : 1 }
        let inverse = (x.variance(axes: axes, keepDims: true) + epsilon).rsqrt()
        // rms_scaling (Keras 3): x / sqrt(var + epsilon), not centered; build made no beta for it.
        let normalized = rmsScaling ? x * inverse : (x - x.mean(axes: axes, keepDims: true)) * inverse
        return scaleAndShift(normalized, gamma: gamma, beta: beta, shape: broadcast)
    }

    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = affine.config
        // Keras keeps a single axis as an integer until build, then as a list.
        c["axis"] = isBuilt ? .from(axis) : axisJSON(axis)
        c["epsilon"] = .from(epsilon)
        c["rms_scaling"] = .bool(rmsScaling)
        return c
    }

    public static func from(config: Config) throws -> LayerNormalization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = LayerNormalization(axis: try k.reader.ints("axis", default: [-1]), epsilon: try k.reader.float("epsilon", default: 1e-3),
                                       rmsScaling: try k.reader.bool("rms_scaling", default: false), affine: try AffineOptions.read(k),
                                       name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Normalizes groups of channels per sample over the group and every spatial axis.
public final class GroupNormalization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GroupNormalization" }
    public let groups: Int
    public let axis: Int
    public let epsilon: Float
    let affine: AffineOptions
    public private(set) var gamma: Parameter?, beta: Parameter?
    var channelAxis = -1

    public init(groups: Int = 32, axis: Int = -1, epsilon: Float = 1e-3, affine: AffineOptions, name: String? = nil) throws(ConfigError) {
        guard groups > 0 else { throw ConfigError(name ?? "GroupNormalization", argument: "groups", "must be a positive integer, got \(groups)") }
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.affine = affine
        super.init(name: name)
    }

    public convenience init(groups: Int = 32, axis: Int = -1, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                            betaInitializer: any Initializer = Zeros(), gammaInitializer: any Initializer = Ones(),
                            betaRegularizer: (any Regularizer)? = nil, gammaRegularizer: (any Regularizer)? = nil,
                            betaConstraint: (any Constraint)? = nil, gammaConstraint: (any Constraint)? = nil,
                            name: String? = nil) throws(ConfigError) {
        try self.init(groups: groups, axis: axis, epsilon: epsilon,
                      affine: AffineOptions(center: center, scale: scale, betaInitializer: betaInitializer,
                                            gammaInitializer: gammaInitializer, betaRegularizer: betaRegularizer,
                                            gammaRegularizer: gammaRegularizer, betaConstraint: betaConstraint,
                                            gammaConstraint: gammaConstraint),
                      name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        channelAxis = try featureAxes([axis], rank: shape.count, layer: name)[0]
        guard let channels = shape[channelAxis] else { throw ConfigError(name, "the channel axis of \(shape.text) must be known") }
        guard channels % groups == 0 && groups <= channels else {
            throw ConfigError(name, argument: "groups", "\(groups) groups do not divide \(channels) channels")
        }
        (gamma, beta) = try affine.addWeights(to: self, shape: [channels])
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let c = x.shape[channelAxis]
        // Split the channel axis into (groups, channels per group); statistics over all but batch and group.
        var grouped = x.shape
        grouped.replaceSubrange(channelAxis...channelAxis, with: [groups, c / groups])
        let xg = x.reshaped(grouped)
        let reduce = (1..<xg.rank).filter { $0 != channelAxis }
        let mean = xg.mean(axes: reduce, keepDims: true)
        let variance = (xg - mean).square().mean(axes: reduce, keepDims: true)
        let y = ((xg - mean) * (variance + epsilon).rsqrt()).reshaped(x.shape)
        return scaleAndShift(y, gamma: gamma, beta: beta, shape: (0..<x.rank).map { $0 == channelAxis ? c : 1 })
    }

    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    public override var layerConfig: Config {
        var c = affine.config
        c["groups"] = .int(groups)
        c["axis"] = .int(axis)
        c["epsilon"] = .from(epsilon)
        return c
    }

    public static func from(config: Config) throws -> GroupNormalization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try GroupNormalization(groups: try k.reader.size("groups", default: 32), axis: try k.reader.int("axis", default: -1),
                                           epsilon: try k.reader.float("epsilon", default: 1e-3), affine: try AffineOptions.read(k),
                                           name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// x · rsqrt(mean(x²) + epsilon) · scale over `axis`.
public final class RMSNormalization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "RMSNormalization" }
    public let axis: [Int]
    public let epsilon: Float
    public private(set) var scale: Parameter!
    var axes: [Int] = []

    public init(axis: [Int] = [-1], epsilon: Float = 1e-6, name: String? = nil) {
        self.axis = axis
        self.epsilon = epsilon
        super.init(name: name)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        axes = try featureAxes(axis, rank: shape.count, layer: name)
        scale = try addWeight("scale", shape: axes.map { shape[$0] ?? 1 }, initializer: Ones())
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let broadcast = (0..<x.rank).map { axes.contains($0) ? x.shape[$0] : 1 }
        return x * (x.square().mean(axes: axes, keepDims: true) + epsilon).rsqrt() * scale.tracked.reshaped(broadcast)
    }

    public override var supportsMasking: Bool { true }
    public override var recordsBuildConfig: Bool { true }
    public override var layerConfig: Config { ["axis": isBuilt ? .from(axis) : axisJSON(axis), "epsilon": .from(epsilon)] }

    public static func from(config: Config) throws -> RMSNormalization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = RMSNormalization(axis: try k.reader.ints("axis", default: [-1]), epsilon: try k.reader.float("epsilon", default: 1e-6),
                                     name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// x · min(1 / ||x||, 1e12) over `axis` (keras.ops.normalize with epsilon 1e-12).
public final class UnitNormalization: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "UnitNormalization" }
    public let axis: [Int]

    public init(axis: [Int] = [-1], name: String? = nil) {
        self.axis = axis
        super.init(name: name)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        let axes = try featureAxes(axis, rank: x.rank, layer: name)
        return x * Tensor.minimum(x.square().sum(axes: axes, keepDims: true).rsqrt(), Tensor(1e12))
    }

    public override var supportsMasking: Bool { true }
    public override var layerConfig: Config { ["axis": axisJSON(axis)] }

    public static func from(config: Config) throws -> UnitNormalization {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = UnitNormalization(axis: try k.reader.ints("axis", default: [-1]), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
