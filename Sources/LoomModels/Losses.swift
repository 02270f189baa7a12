import LoomLayers
import LoomTensor

/// Keras's backend.epsilon().
let kerasEpsilon: Float = 1e-7

/// How per-sample losses become one number (Keras's `reduction`).
public enum LossReduction: String, Sendable, CaseIterable {
    /// Sum over every value divided by their count (Keras's default).
    case sumOverBatchSize = "sum_over_batch_size"
    /// The same as sumOverBatchSize.
    case mean
    /// Sum divided by the sum of the sample weights.
    case meanWithSampleWeight = "mean_with_sample_weight"
    /// The plain sum.
    case sum
    /// No reduction: the per-sample values.
    case none
}

/// A loss (keras.losses): per-sample values of y_true against y_pred, weighted and reduced
/// to the scalar training minimises. Built by name (`Loss.named("mse")`), by its Keras class
/// (`MeanSquaredError()`, `SparseCategoricalCrossentropy(fromLogits: true)`), or from a closure.
open class Loss: @unchecked Sendable, CustomStringConvertible {
    /// Keras's class name ("MeanSquaredError"), or "Package>Name" for a user loss.
    public let className: String
    /// The name metrics and logs use ("mean_squared_error").
    public let name: String
    public let reduction: LossReduction
    /// The class-specific arguments, as get_config writes them (from_logits, delta, ...).
    public let arguments: Config
    /// Whether it compares integer labels with class scores (sparse categorical).
    public let takesSparseLabels: Bool
    let function: @Sendable (Tensor, Tensor) throws -> Tensor

    /// A loss from a per-sample function of (y_true, y_pred); `name` is how it is saved
    /// ("Package>Name" to register it for loading).
    public convenience init(name: String, reduction: LossReduction = .sumOverBatchSize, arguments: Config = [:],
                            _ function: @escaping @Sendable (_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor) {
        self.init(className: name, name: name, reduction: reduction, arguments: arguments, sparse: false, function)
    }

    init(className: String, name: String, reduction: LossReduction, arguments: Config, sparse: Bool,
         _ function: @escaping @Sendable (Tensor, Tensor) throws -> Tensor) {
        self.className = className
        self.name = name
        self.reduction = reduction
        self.arguments = arguments
        takesSparseLabels = sparse
        self.function = function
    }

    public var description: String { "\(className)(\(name))" }

    /// The per-sample losses (before weighting and reduction).
    public func values(_ yTrue: Tensor, _ yPred: Tensor) throws -> Tensor {
        do {
            return try function(yTrue, yPred)
        } catch let error as ShapeError {
            throw ConfigError(name, "y_true of shape \(yTrue.shape) does not fit y_pred of shape \(yPred.shape): \(error)")
        }
    }

    /// The reduced loss; `sampleWeight` weighs each sample (shape [N]) or each value.
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor? = nil) throws -> Tensor {
        try reduce(values(yTrue, yPred), sampleWeight: sampleWeight)
    }

    /// Weights and reduces per-sample values as Keras's reduce_weighted_values does.
    public func reduce(_ values: Tensor, sampleWeight: Tensor?) throws -> Tensor {
        var weighted = values
        if let w = sampleWeight {
            weighted = values * (try alignWeights(w, to: values, loss: name))
        }
        switch reduction {
        case .none: return weighted
        case .sum: return weighted.sum()
        case .sumOverBatchSize, .mean:
            return weighted.sum() / Float(Swift.max(weighted.count, 1))
        case .meanWithSampleWeight:
            guard let w = sampleWeight else { return weighted.sum() / Float(Swift.max(weighted.count, 1)) }
            let total = w.sum().scalar
            return total == 0 ? Tensor(0) : weighted.sum() / total
        }
    }

    /// The form keras.saving.serialize_keras_object writes.
    public var serialized: JSONValue {
        var config = arguments
        config["name"] = .string(name)
        config["reduction"] = .string(reduction.rawValue)
        if let split = className.firstIndex(of: ">") {
            return ["module": nil, "class_name": .string(String(className[className.index(after: split)...])),
                    "config": .object(config), "registered_name": .string(className)]
        }
        return ["module": "keras.losses", "class_name": .string(className), "config": .object(config),
                "registered_name": nil]
    }
}

/// Sample weights [N] against values [N, ...]: trailing axes added so they weigh whole samples.
func alignWeights(_ w: Tensor, to values: Tensor, loss: String) throws -> Tensor {
    if w.shape == values.shape { return w }
    var weights = w
    if weights.rank == values.rank + 1 && weights.shape.last == 1 { weights = weights.squeezed(axes: [weights.rank - 1]) }
    while weights.rank < values.rank { weights = weights.expandingDims(at: weights.rank) }
    guard (try? broadcastShape(weights.shape, values.shape)) == values.shape else {
        throw ConfigError(loss, "sample_weight of shape \(w.shape) does not fit per-sample losses of shape \(values.shape)")
    }
    return weights
}

/// Keras's squeeze_or_expand_to_same_rank: ranks that differ by one on a size-1 last axis agree.
func sameRank(_ a: Tensor, _ b: Tensor) -> (Tensor, Tensor) {
    var a = a, b = b
    if a.rank == b.rank + 1 && a.shape.last == 1 {
        if b.rank == 1 { b = b.expandingDims(at: 1) } else { a = a.squeezed(axes: [a.rank - 1]) }
    } else if b.rank == a.rank + 1 && b.shape.last == 1 {
        if a.rank == 1 { a = a.expandingDims(at: 1) } else { b = b.squeezed(axes: [b.rank - 1]) }
    }
    return (a, b)
}

/// y_true and y_pred of one shape, after Keras's rank alignment; a clear error otherwise.
func matched(_ yTrue: Tensor, _ yPred: Tensor, _ loss: String) throws -> (Tensor, Tensor) {
    let (t, p) = sameRank(yTrue, yPred)
    guard t.shape == p.shape else {
        var hint = ""
        if yTrue.rank == 1 || yTrue.shape.last == 1, let classes = yPred.shape.last, classes > 1 {
            hint = " (integer class labels go with sparse_categorical_crossentropy)"
        }
        throw ConfigError(loss, "y_true of shape \(yTrue.shape) does not match the model output of shape \(yPred.shape)\(hint)")
    }
    return (t, p)
}

/// The mean over the last axis.
private func lastAxisMean(_ x: Tensor) -> Tensor { x.mean(axes: [x.rank - 1]) }
private func lastAxisSum(_ x: Tensor) -> Tensor { x.sum(axes: [x.rank - 1]) }

/// Keras's L2 normalization, x · min(rsqrt(Σx²), 1/ε) along the last axis, computed as
/// x · rsqrt(max(Σx², ε²)): the same values, and a finite gradient for an all-zero row.
func l2Normalized(_ x: Tensor) -> Tensor {
    x * Tensor.maximum(x.square().sum(axes: [x.rank - 1], keepDims: true), Tensor(kerasEpsilon * kerasEpsilon)).rsqrt()
}

/// Hinge losses take labels in {-1, 1}; labels that are all 0 or 1 are mapped there.
private func hingeLabels(_ y: Tensor) -> Tensor {
    y.scalars.allSatisfy { $0 == 0 || $0 == 1 } ? y * 2 - 1 : y
}

/// The reduction named in a config, or an error listing Keras's reductions.
private func validated(_ reductionName: String, _ owner: String) throws(ConfigError) -> LossReduction {
    guard let r = LossReduction(rawValue: reductionName) else {
        throw ConfigError(owner, argument: "reduction",
                          "must be one of \(LossReduction.allCases.map(\.rawValue).joined(separator: ", ")), got '\(reductionName)'")
    }
    return r
}

// MARK: - The Keras losses

/// mean((y_true - y_pred)²) over the last axis.
public final class MeanSquaredError: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "MeanSquaredError"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_squared_error") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean((t - p).square())
        }
    }
    public static let kerasAliases = ["mean_squared_error", "mse", "MSE"]
    public static func from(config: Config) throws -> MeanSquaredError {
        let (_, reduction, name) = try reading(config, defaults: MeanSquaredError())
        return MeanSquaredError(reduction: reduction, name: name)
    }
}

/// mean(|y_true - y_pred|) over the last axis.
public final class MeanAbsoluteError: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "MeanAbsoluteError"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_absolute_error") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean((t - p).abs())
        }
    }
    public static let kerasAliases = ["mean_absolute_error", "mae", "MAE"]
    public static func from(config: Config) throws -> MeanAbsoluteError {
        let (_, reduction, name) = try reading(config, defaults: MeanAbsoluteError())
        return MeanAbsoluteError(reduction: reduction, name: name)
    }
}

/// 100 · mean(|y_true - y_pred| / max(|y_true|, ε)).
public final class MeanAbsolutePercentageError: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "MeanAbsolutePercentageError"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_absolute_percentage_error") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean(((t - p) / Tensor.maximum(t.abs(), Tensor(kerasEpsilon))).abs()) * 100
        }
    }
    public static let kerasAliases = ["mean_absolute_percentage_error", "mape", "MAPE"]
    public static func from(config: Config) throws -> MeanAbsolutePercentageError {
        let (_, reduction, name) = try reading(config, defaults: MeanAbsolutePercentageError())
        return MeanAbsolutePercentageError(reduction: reduction, name: name)
    }
}

/// mean((log(max(y_pred, ε) + 1) - log(max(y_true, ε) + 1))²).
public final class MeanSquaredLogarithmicError: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "MeanSquaredLogarithmicError"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "mean_squared_logarithmic_error") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            let e = Tensor(kerasEpsilon)
            return lastAxisMean(((Tensor.maximum(p, e) + 1).log() - (Tensor.maximum(t, e) + 1).log()).square())
        }
    }
    public static let kerasAliases = ["mean_squared_logarithmic_error", "msle", "MSLE"]
    public static func from(config: Config) throws -> MeanSquaredLogarithmicError {
        let (_, reduction, name) = try reading(config, defaults: MeanSquaredLogarithmicError())
        return MeanSquaredLogarithmicError(reduction: reduction, name: name)
    }
}

/// -Σ normalize(y_true) · normalize(y_pred) over the last axis.
public final class CosineSimilarity: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "CosineSimilarity"
    public init(axis: Int = -1, reduction: LossReduction = .sumOverBatchSize, name: String = "cosine_similarity") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["axis": .int(axis)], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return -lastAxisSum(l2Normalized(t) * l2Normalized(p))
        }
    }
    public static let kerasAliases = ["cosine_similarity"]
    public static func from(config: Config) throws -> CosineSimilarity {
        let (k, reduction, name) = try reading(config, defaults: CosineSimilarity())
        try lastAxisOnly(k)
        return CosineSimilarity(reduction: reduction, name: name)
    }
}

/// ½e² where |e| ≤ δ, else δ|e| - ½δ², averaged over the last axis.
public final class Huber: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "Huber"
    public let delta: Float
    public init(delta: Float = 1, reduction: LossReduction = .sumOverBatchSize, name: String = "huber_loss") {
        self.delta = delta
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["delta": .from(delta)], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            let e = p - t, a = e.abs()
            return lastAxisMean(Tensor.where(a.lessEqual(Tensor(delta)), e.square() * 0.5, a * delta - 0.5 * delta * delta))
        }
    }
    public static let kerasAliases = ["huber", "huber_loss"]
    public static func from(config: Config) throws -> Huber {
        let d = Huber()
        let (k, reduction, name) = try reading(config, defaults: d)
        return Huber(delta: try k.float("delta", default: d.delta), reduction: reduction, name: name)
    }
}

/// mean(log(cosh(y_pred - y_true))), as x + softplus(-2x) - log 2.
public final class LogCosh: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "LogCosh"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "log_cosh") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            let x = p - t
            return lastAxisMean(x + (x * -2).softplus() - Float(0.6931471805599453))
        }
    }
    public static let kerasAliases = ["log_cosh", "logcosh"]
    public static func from(config: Config) throws -> LogCosh {
        let (_, reduction, name) = try reading(config, defaults: LogCosh())
        return LogCosh(reduction: reduction, name: name)
    }
}

/// mean(max(1 - y_true · y_pred, 0)), labels 0/1 mapped to -1/1.
public final class Hinge: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "Hinge"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "hinge") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean((1 - hingeLabels(t) * p).relu())
        }
    }
    public static let kerasAliases = ["hinge"]
    public static func from(config: Config) throws -> Hinge {
        let (_, reduction, name) = try reading(config, defaults: Hinge())
        return Hinge(reduction: reduction, name: name)
    }
}

/// mean(max(1 - y_true · y_pred, 0)²), labels 0/1 mapped to -1/1.
public final class SquaredHinge: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "SquaredHinge"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "squared_hinge") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean((1 - hingeLabels(t) * p).relu().square())
        }
    }
    public static let kerasAliases = ["squared_hinge"]
    public static func from(config: Config) throws -> SquaredHinge {
        let (_, reduction, name) = try reading(config, defaults: SquaredHinge())
        return SquaredHinge(reduction: reduction, name: name)
    }
}

/// max(max((1 - y_true) · y_pred) - Σ y_true · y_pred + 1, 0).
public final class CategoricalHinge: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "CategoricalHinge"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "categorical_hinge") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            let pos = lastAxisSum(t * p)
            let neg = ((1 - t) * p).max(axes: [p.rank - 1])
            return (neg - pos + 1).relu()
        }
    }
    public static let kerasAliases = ["categorical_hinge"]
    public static func from(config: Config) throws -> CategoricalHinge {
        let (_, reduction, name) = try reading(config, defaults: CategoricalHinge())
        return CategoricalHinge(reduction: reduction, name: name)
    }
}

/// Σ y_true · log(y_true / y_pred), both clipped to [ε, 1].
public final class KLDivergence: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "KLDivergence"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "kl_divergence") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t0, p0) = try matched(t, p, name)
            let t = t0.clipped(min: kerasEpsilon, max: 1), p = p0.clipped(min: kerasEpsilon, max: 1)
            return lastAxisSum(t * (t / p).log())
        }
    }
    public static let kerasAliases = ["kl_divergence", "kld", "KLD", "kullback_leibler_divergence"]
    public static func from(config: Config) throws -> KLDivergence {
        let (_, reduction, name) = try reading(config, defaults: KLDivergence())
        return KLDivergence(reduction: reduction, name: name)
    }
}

/// mean(y_pred - y_true · log(y_pred + ε)).
public final class Poisson: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "Poisson"
    public init(reduction: LossReduction = .sumOverBatchSize, name: String = "poisson") {
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: [:], sparse: false) { t, p in
            let (t, p) = try matched(t, p, name)
            return lastAxisMean(p - t * (p + kerasEpsilon).log())
        }
    }
    public static let kerasAliases = ["poisson"]
    public static func from(config: Config) throws -> Poisson {
        let (_, reduction, name) = try reading(config, defaults: Poisson())
        return Poisson(reduction: reduction, name: name)
    }
}

/// Elementwise binary cross-entropy, from probabilities (clipped to [ε, 1-ε]) or logits.
/// Probabilities a sigmoid made are taken from its logits, as Keras on TensorFlow does.
func binaryCrossentropyValues(_ t: Tensor, _ p: Tensor, fromLogits: Bool) -> Tensor {
    if !fromLogits, let source = p.logits, source.function == .sigmoid {
        return binaryCrossentropyValues(t, source.tensor, fromLogits: true)
    }
    if fromLogits { return -(t * p.logSigmoid()) - (1 - t) * (-p).logSigmoid() }
    let q = p.clipped(min: kerasEpsilon, max: 1 - kerasEpsilon)
    return -(t * q.log() + (1 - t) * (1 - q).log())
}

/// Binary cross-entropy averaged over the last axis; labels smoothed towards ½.
public final class BinaryCrossentropy: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "BinaryCrossentropy"
    public let fromLogits: Bool
    public let labelSmoothing: Float
    public init(fromLogits: Bool = false, labelSmoothing: Float = 0, axis: Int = -1, reduction: LossReduction = .sumOverBatchSize, name: String = "binary_crossentropy") {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["from_logits": .bool(fromLogits), "label_smoothing": .from(labelSmoothing), "axis": .int(axis)], sparse: false) { t, p in
            var (t, p) = try matched(t, p, name)
            if labelSmoothing != 0 { t = t * (1 - labelSmoothing) + 0.5 * labelSmoothing }
            return lastAxisMean(binaryCrossentropyValues(t, p, fromLogits: fromLogits))
        }
    }
    public static let kerasAliases = ["binary_crossentropy", "bce"]
    public static func from(config: Config) throws -> BinaryCrossentropy {
        let d = BinaryCrossentropy()
        let (k, reduction, name) = try reading(config, defaults: d)
        try lastAxisOnly(k)
        return BinaryCrossentropy(fromLogits: try k.bool("from_logits", default: d.fromLogits),
                                  labelSmoothing: try k.float("label_smoothing", default: d.labelSmoothing),
                                  reduction: reduction, name: name)
    }
}

/// Binary cross-entropy scaled by (1 - p_t)^γ, optionally class-balanced by α.
public final class BinaryFocalCrossentropy: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "BinaryFocalCrossentropy"
    public let applyClassBalancing: Bool
    public let alpha: Float
    public let gamma: Float
    public let fromLogits: Bool
    public let labelSmoothing: Float
    public init(applyClassBalancing: Bool = false, alpha: Float = 0.25, gamma: Float = 2, fromLogits: Bool = false, labelSmoothing: Float = 0, axis: Int = -1, reduction: LossReduction = .sumOverBatchSize, name: String = "binary_focal_crossentropy") {
        self.applyClassBalancing = applyClassBalancing
        self.alpha = alpha
        self.gamma = gamma
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["apply_class_balancing": .bool(applyClassBalancing), "alpha": .from(alpha), "gamma": .from(gamma), "from_logits": .bool(fromLogits), "label_smoothing": .from(labelSmoothing), "axis": .int(axis)], sparse: false) { t, p in
            var (t, p) = try matched(t, p, name)
            if labelSmoothing != 0 { t = t * (1 - labelSmoothing) + 0.5 * labelSmoothing }
            if fromLogits { p = p.sigmoid() }
            let bce = binaryCrossentropyValues(t, p, fromLogits: false)
            let pt = t * p + (1 - t) * (1 - p)
            var focal = (1 - pt).pow(gamma) * bce
            if applyClassBalancing { focal = (t * alpha + (1 - t) * (1 - alpha)) * focal }
            return lastAxisMean(focal)
        }
    }
    public static let kerasAliases = ["binary_focal_crossentropy"]
    public static func from(config: Config) throws -> BinaryFocalCrossentropy {
        let d = BinaryFocalCrossentropy()
        let (k, reduction, name) = try reading(config, defaults: d)
        try lastAxisOnly(k)
        return BinaryFocalCrossentropy(applyClassBalancing: try k.bool("apply_class_balancing", default: d.applyClassBalancing),
                                       alpha: try k.float("alpha", default: d.alpha), gamma: try k.float("gamma", default: d.gamma),
                                       fromLogits: try k.bool("from_logits", default: d.fromLogits),
                                       labelSmoothing: try k.float("label_smoothing", default: d.labelSmoothing),
                                       reduction: reduction, name: name)
    }
}

/// log-probabilities along the last axis: log_softmax of logits, or the log of the
/// probabilities renormalized and clipped to [ε, 1-ε], as Keras computes them. Probabilities
/// a softmax along the last axis made are taken from its logits, as Keras on TensorFlow does
/// (on JAX it clips them; near 0 the clip cuts the gradient of a confidently wrong sample).
func logProbabilities(_ p: Tensor, fromLogits: Bool, usingSource: Bool = true) -> Tensor {
    if !fromLogits && usingSource, let source = p.logits, source.function == .softmax(axis: p.rank - 1) {
        return source.tensor.logSoftmax(axis: -1)
    }
    if fromLogits { return p.logSoftmax(axis: -1) }
    let normalized = p / p.sum(axes: [p.rank - 1], keepDims: true)
    return normalized.clipped(min: kerasEpsilon, max: 1 - kerasEpsilon).log()
}

/// -Σ y_true · log p over the last axis, one-hot labels smoothed towards uniform.
public final class CategoricalCrossentropy: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "CategoricalCrossentropy"
    public let fromLogits: Bool
    public let labelSmoothing: Float
    public init(fromLogits: Bool = false, labelSmoothing: Float = 0, axis: Int = -1, reduction: LossReduction = .sumOverBatchSize, name: String = "categorical_crossentropy") {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["from_logits": .bool(fromLogits), "label_smoothing": .from(labelSmoothing), "axis": .int(axis)], sparse: false) { t, p in
            guard t.shape == p.shape else {
                throw ConfigError(name, "y_true of shape \(t.shape) does not match the model output of shape \(p.shape)"
                    + (t.rank < p.rank || t.shape.last == 1 ? " (integer class labels go with sparse_categorical_crossentropy)" : ""))
            }
            var t = t
            if labelSmoothing != 0, let classes = t.shape.last {
                t = t * (1 - labelSmoothing) + labelSmoothing / Float(classes)
            }
            return -lastAxisSum(t * logProbabilities(p, fromLogits: fromLogits))
        }
    }
    public static let kerasAliases = ["categorical_crossentropy", "cce"]
    public static func from(config: Config) throws -> CategoricalCrossentropy {
        let d = CategoricalCrossentropy()
        let (k, reduction, name) = try reading(config, defaults: d)
        try lastAxisOnly(k)
        return CategoricalCrossentropy(fromLogits: try k.bool("from_logits", default: d.fromLogits),
                                       labelSmoothing: try k.float("label_smoothing", default: d.labelSmoothing),
                                       reduction: reduction, name: name)
    }
}

/// -log p[label] for integer labels in [0, classes).
public final class SparseCategoricalCrossentropy: Loss, KerasLoss, @unchecked Sendable {
    public static let kerasClassName = "SparseCategoricalCrossentropy"
    public let fromLogits: Bool
    public let ignoreClass: Int?
    public init(fromLogits: Bool = false, ignoreClass: Int? = nil, reduction: LossReduction = .sumOverBatchSize, name: String = "sparse_categorical_crossentropy") {
        self.fromLogits = fromLogits
        self.ignoreClass = ignoreClass
        super.init(className: Self.kerasClassName, name: name, reduction: reduction, arguments: ["from_logits": .bool(fromLogits), "ignore_class": .from(ignoreClass)], sparse: true) { t, p in
            let (labels, oneHot, valid) = try sparseLabels(t, p, loss: name, ignoreClass: ignoreClass)
            // Keras masks the ignored samples' scores first, so they no longer come from the softmax.
            var values = -lastAxisSum(oneHot * logProbabilities(p, fromLogits: fromLogits, usingSource: ignoreClass == nil))
            if let valid { values = values * valid }
            _ = labels
            return values
        }
    }
    public static let kerasAliases = ["sparse_categorical_crossentropy", "scce"]
    public static func from(config: Config) throws -> SparseCategoricalCrossentropy {
        let d = SparseCategoricalCrossentropy()
        let (k, reduction, name) = try reading(config, defaults: d)
        return SparseCategoricalCrossentropy(fromLogits: try k.bool("from_logits", default: d.fromLogits),
                                             ignoreClass: k.has("ignore_class") ? try k.int("ignore_class") : d.ignoreClass,
                                             reduction: reduction, name: name)
    }
}

/// Integer labels against class scores [..., classes]: the labels with the class axis
/// removed, their one-hot form, and the mask of labels not equal to `ignoreClass`.
func sparseLabels(_ t: Tensor, _ p: Tensor, loss: String, ignoreClass: Int? = nil) throws -> (Tensor, Tensor, Tensor?) {
    var labels = t
    if labels.rank == p.rank, labels.shape.last == 1 { labels = labels.squeezed(axes: [labels.rank - 1]) }
    guard p.rank >= 1, labels.shape == Array(p.shape.dropLast()) else {
        throw ConfigError(loss, "integer labels of shape \(t.shape) do not fit class scores of shape \(p.shape); "
            + "expected labels of shape \(Array(p.shape.dropLast()))"
            + (t.shape == p.shape ? " (one-hot labels go with categorical_crossentropy)" : ""))
    }
    let classes = p.shape.last ?? 0
    var valid: Tensor? = nil
    if let ignoreClass {
        let keep = 1 - labels.equal(Tensor(Float(ignoreClass)))
        valid = keep
        labels = labels * keep
    }
    let values = labels.scalars
    for (i, v) in values.enumerated() where v != v.rounded() || v < 0 || Int(v) >= classes {
        throw ConfigError(loss, "label \(v) of sample \(i) is out of range: labels must be integers in [0, \(classes))")
    }
    return (labels, labels.oneHot(depth: classes), valid)
}

// MARK: - Names

/// The losses Keras knows by name: class names ("MeanSquaredError") and function names
/// ("mean_squared_error", "mse", ...).
public let losses: Registry<Loss> = {
    let r = Registry<Loss>(kind: "loss")
    let builtIn: [any KerasLoss.Type] = [
        MeanSquaredError.self, MeanAbsoluteError.self, MeanAbsolutePercentageError.self, MeanSquaredLogarithmicError.self,
        CosineSimilarity.self, Huber.self, LogCosh.self, Hinge.self, SquaredHinge.self, CategoricalHinge.self,
        KLDivergence.self, Poisson.self, BinaryCrossentropy.self, BinaryFocalCrossentropy.self,
        CategoricalCrossentropy.self, SparseCategoricalCrossentropy.self,
    ]
    for type in builtIn { register(type, in: r) }
    return r
}()

/// Registers a loss type under its Keras class name and aliases.
public func register(_ type: any KerasLoss.Type, in registry: Registry<Loss> = losses) {
    registry.register(type.kerasClassName, aliases: type.kerasAliases) { config in try type.from(config: config) }
}

/// A loss class Keras knows by name, with the layers' anatomy: the type owns its Keras name and
/// aliases, its config (`arguments`, with the name and reduction every loss has) and
/// `from(config:)`.
public protocol KerasLoss: Loss {
    /// Keras's class name ("MeanSquaredError").
    static var kerasClassName: String { get }
    /// The function names Keras accepts for it ("mean_squared_error", "mse").
    static var kerasAliases: [String] { get }
    /// The loss a Keras config describes; absent keys take the init's defaults.
    static func from(config: Config) throws -> Self
}

extension KerasLoss {
    /// A reader of `config`, and the reduction and name every loss has (absent ones from
    /// `defaults`, the loss made with its init's defaults).
    static func reading(_ config: Config, defaults: Self) throws(ConfigError) -> (ConfigReader, LossReduction, String) {
        let k = ConfigReader(config, object: kerasClassName)
        let reduction = try validated(try k.optionalString("reduction") ?? defaults.reduction.rawValue, kerasClassName)
        return (k, reduction, try k.string("name", default: defaults.name))
    }
}

/// Refuses an axis other than the last in a loss's config.
private func lastAxisOnly(_ c: ConfigReader) throws(ConfigError) {
    let axis = try c.int("axis", default: -1)
    guard axis == -1 else { throw ConfigError(c.object, argument: "axis", "only the last axis (-1) is supported, got \(axis)") }
}

extension Loss {
    /// A loss by Keras name or serialized config.
    public static func named(_ value: JSONValue) throws -> Loss {
        try losses.make(value, owner: "compile", argument: "loss")
    }
}
