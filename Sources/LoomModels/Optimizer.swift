import Foundation
import LoomLayers
import LoomTensor

/// A learning rate: a number, or a schedule of the optimizer's step.
public enum LearningRate: Sendable, ExpressibleByFloatLiteral {
    case constant(Float)
    case schedule(any LearningRateSchedule)

    public init(floatLiteral value: Float) { self = .constant(value) }

    /// The rate at optimizer step `step`.
    public func at(_ step: Int) -> Float {
        switch self {
        case let .constant(v): return v
        case let .schedule(s): return s(step)
        }
    }

    var serialized: JSONValue {
        switch self {
        case let .constant(v): return .from(v)
        case let .schedule(s): return s.serialized
        }
    }
}

/// The settings every Keras optimizer shares: learning rate, decoupled weight decay and
/// gradient clipping (at most one of clipnorm, clipvalue, global_clipnorm).
public struct OptimizerOptions: Sendable {
    public var learningRate: LearningRate
    public var weightDecay: Float?
    public var clipnorm: Float?
    public var clipvalue: Float?
    public var globalClipnorm: Float?

    public init(learningRate: LearningRate, weightDecay: Float? = nil, clipnorm: Float? = nil,
                clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.globalClipnorm = globalClipnorm
    }

    /// The shared settings in an optimizer's config, each absent one taken from `defaults` (an
    /// optimizer made with its own defaults: the learning rate and the decay differ by class).
    /// Keras's options Loom does not implement are refused by name.
    static func read(_ k: ConfigReader, defaults: OptimizerOptions) throws(ConfigError) -> OptimizerOptions {
        for key in ["use_ema"] where try k.bool(key, default: false) {
            throw ConfigError(k.object, argument: key, "is not supported")
        }
        for key in ["loss_scale_factor", "gradient_accumulation_steps"] where k.has(key) {
            throw ConfigError(k.object, argument: key, "is not supported")
        }
        var rate = defaults.learningRate
        switch k.value("learning_rate") {
        case .null: break
        case let .object(o) where o["class_name"] != nil:
            rate = .schedule(try learningRateSchedules.make(.object(o), owner: k.object, argument: "learning_rate"))
        default: rate = .constant(try k.float("learning_rate"))
        }
        return OptimizerOptions(learningRate: rate, weightDecay: try k.optionalFloat("weight_decay") ?? defaults.weightDecay,
                                clipnorm: try k.optionalFloat("clipnorm") ?? defaults.clipnorm,
                                clipvalue: try k.optionalFloat("clipvalue") ?? defaults.clipvalue,
                                globalClipnorm: try k.optionalFloat("global_clipnorm") ?? defaults.globalClipnorm)
    }

    func validate(_ owner: String) throws(ConfigError) {
        if [clipnorm, clipvalue, globalClipnorm].compactMap({ $0 }).count > 1 {
            throw ConfigError(owner, "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set")
        }
        if case let .constant(v) = learningRate, !(v >= 0) || !v.isFinite {
            throw ConfigError(owner, argument: "learning_rate", "must be a non-negative number, got \(v)")
        }
    }
}

/// The base of the Keras optimizers: gradient clipping, weight decay, one update rule per
/// weight with its slot variables (momenta), constraints after the update, and the step count
/// schedules read. An optimizer belongs to one training loop and is not shared between threads.
open class Optimizer: @unchecked Sendable {
    /// Keras's class name ("Adam").
    open class var kerasClassName: String { "Optimizer" }
    public var name: String
    public var options: OptimizerOptions
    /// Updates applied so far (Keras's iterations).
    public internal(set) var iterations = 0
    var slots: [ObjectIdentifier: [Tensor]] = [:]

    /// An optimizer with the settings every Keras optimizer shares.
    public init(name: String, options: OptimizerOptions) throws(ConfigError) {
        try options.validate(name)
        self.name = name
        self.options = options
    }

    /// This optimizer with `options` in place of its own (after checking them), for
    /// `from(config:)`, where the shared settings are read once for every class.
    func with(_ options: OptimizerOptions) throws(ConfigError) -> Self {
        try options.validate(name)
        self.options = options
        return self
    }

    /// The learning rate the next update uses.
    public var learningRate: Float { options.learningRate.at(iterations) }

    /// Sets a constant learning rate (what LearningRateScheduler and ReduceLROnPlateau do).
    public func setLearningRate(_ value: Float) { options.learningRate = .constant(value) }

    /// The slot variables of a new weight (zeros by default: momenta, averages).
    open func makeSlots(for value: Tensor) -> [Tensor] { [] }

    /// Called once per step before the weights are updated (Nadam's running product).
    open func beginStep() {}

    /// The update rule on `n` consecutive elements of a weight: reads the weight `w` and the
    /// gradient `g`, updates the slots `s` in place and writes the new weight to `out` (which
    /// may be `w`). Elements are independent, so a weight can be updated in parts on several
    /// threads.
    open func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                             _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        for i in 0..<n { out[i] = w[i] }
    }

    /// The new value of one weight from its gradient; `slots` are updated in place.
    public func update(_ value: Tensor, gradient: Tensor, learningRate lr: Float, slots: inout [Tensor]) -> Tensor {
        fusedUpdate(value, gradient, &slots) { n, out, w, g, s in updateElements(n, out, w, g, s, learningRate: lr) }
    }

    /// The class-specific config entries.
    open var optimizerConfig: Config { [:] }

    /// How Keras lists this optimizer's slots among its variables: one group per
    /// `add_optimizer_variables` call, each naming slot indices that are interleaved weight by
    /// weight (Adam's group [0, 1] lists m and v of the first weight, then of the second, ...).
    open var kerasSlotGroups: [[Int]] { [] }

    /// How many slot variables, each the size of its weight, the optimizer keeps per weight.
    public var slotsPerWeight: Int { kerasSlotGroups.reduce(0) { $0 + $1.count } }

    /// Scalar state Keras lists after the slots (Nadam's running product of momentum factors).
    open var scalarState: [Float] {
        get { [] }
        set {}
    }

    /// The state Keras saves as the optimizer's variables, in Keras's order: the step count,
    /// the learning rate (unless it is a schedule), the slots of every weight in
    /// `parameters` (made as a first step would make them), then scalar state.
    public func kerasVariables(for parameters: [Parameter]) -> (iterations: Int, floats: [Tensor]) {
        var floats: [Tensor] = []
        if case let .constant(rate) = options.learningRate { floats.append(Tensor(rate)) }
        let all = parameters.map { slots[ObjectIdentifier($0)] ?? makeSlots(for: $0.value) }
        for group in kerasSlotGroups {
            for slotsOfWeight in all { for i in group { floats.append(slotsOfWeight[i]) } }
        }
        floats += scalarState.map { Tensor($0) }
        return (iterations, floats)
    }

    /// The shapes of `kerasVariables`' floats, without making any slot; `built: false` gives
    /// what Keras saves for a compiled model that never trained (the learning rate alone).
    public func kerasVariableShapes(for parameters: [Parameter], built: Bool = true) -> [[Int]] {
        var shapes: [[Int]] = []
        if case .constant = options.learningRate { shapes.append([]) }
        guard built else { return shapes }
        for group in kerasSlotGroups {
            for p in parameters { shapes += Array(repeating: p.shape, count: group.count) }
        }
        return shapes + Array(repeating: [], count: scalarState.count)
    }

    /// Restores state saved by `kerasVariables` (or by Keras), or Keras's state of a model
    /// that never trained (fresh slots then): counts and shapes are checked first, and nothing
    /// changes unless all fit. `kerasSlotGroups` lists every slot, so the file gives them all.
    public func loadKerasVariables(iterations: Int, floats: [Tensor], for parameters: [Parameter]) throws(ConfigError) {
        guard iterations >= 0 else { throw ConfigError(name, argument: "iteration", "must be non-negative, got \(iterations)") }
        let built = kerasVariableShapes(for: parameters), unbuilt = kerasVariableShapes(for: parameters, built: false)
        guard floats.count == built.count || floats.count == unbuilt.count else {
            throw ConfigError(name, "the saved optimizer has \(floats.count + 1) variables but this \(Self.kerasClassName) "
                              + "over \(parameters.count) weights has \(built.count + 1)")
        }
        for (i, (value, shape)) in zip(floats, built).enumerated() where value.shape != shape {
            throw ConfigError(name, "optimizer variable \(i + 1) has shape \(value.shape) but \(shape) was expected")
        }
        if !unbuilt.isEmpty { options.learningRate = .constant(floats[0].scalar) }
        self.iterations = iterations
        slots = [:]
        guard floats.count == built.count else { return }
        var restored = parameters.map { _ in [Tensor?](repeating: nil, count: slotsPerWeight) }
        var next = unbuilt.count
        for group in kerasSlotGroups {
            for w in parameters.indices {
                for i in group {
                    restored[w][i] = floats[next]
                    next += 1
                }
            }
        }
        scalarState = floats[next...].map(\.scalar)
        for (p, s) in zip(parameters, restored) { slots[ObjectIdentifier(p)] = s.map { $0! } }
    }

    /// One step: clips the gradients, decays the weights, updates each parameter that has a
    /// gradient, applies constraints, then counts the step.
    public func apply(_ gradients: Gradients, to parameters: [Parameter]) {
        apply([gradients], to: parameters, pool: nil)
    }

    /// The gradients clipped as the options say (Keras's order of precedence).
    func clip(_ grads: [Tensor]) -> [Tensor] {
        if let c = options.clipnorm, c > 0 {
            return grads.map { g in
                let norm = g.square().sum().scalar.squareRoot()
                return g * c / Swift.max(norm, c)
            }
        }
        if let c = options.globalClipnorm, c > 0 {
            let norm = grads.reduce(Float(0)) { $0 + $1.square().sum().scalar }.squareRoot()
            // Keras: clip · min(1/norm, 1/clip), NaN when the norm is not finite.
            let scale = norm.isFinite ? c * Swift.min(1 / norm, 1 / c) : .nan
            return grads.map { $0 * scale }
        }
        if let c = options.clipvalue, c > 0 { return grads.map { $0.clipped(min: -c, max: c) } }
        return grads
    }

    /// The config Keras's get_config writes.
    public var config: Config {
        let base: Config = [
            "name": .string(name), "learning_rate": options.learningRate.serialized,
            "weight_decay": .from(options.weightDecay), "clipnorm": .from(options.clipnorm),
            "global_clipnorm": .from(options.globalClipnorm), "clipvalue": .from(options.clipvalue),
            "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": nil, "loss_scale_factor": nil,
            "gradient_accumulation_steps": nil,
        ]
        return base.merging(optimizerConfig) { $1 }
    }

    /// The serialized form (module, class_name, config).
    public var serialized: JSONValue {
        ["module": "keras.optimizers", "class_name": .string(Self.kerasClassName), "config": .object(config),
         "registered_name": nil]
    }
}

/// One pass over a weight, its gradient and its slot variables: `body` gets the element count,
/// the new value's buffer, the current value, the gradient and the slots (updated in place),
/// and runs the optimizer's loop over them, so an update reads and writes each array once.
func fusedUpdate(_ value: Tensor, _ gradient: Tensor, _ slots: inout [Tensor],
                 _ body: (Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                          [UnsafeMutablePointer<Float>]) -> Void) -> Tensor {
    precondition(value.count == gradient.count, "optimizer: gradient of \(gradient.shape) for a weight of \(value.shape)")
    // Each slot is made uniquely owned, then its buffer is written through a pointer that stays
    // valid while `slots` holds the storage (a class with a fixed allocation).
    let slotPointers = slots.indices.map { i in slots[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    var out = Tensor(uninitializedShape: value.shape)
    out.withUnsafeMutableBufferPointer { o in
        value.withUnsafeBufferPointer { w in
            gradient.withUnsafeBufferPointer { g in
                body(value.count, o.baseAddress!, w.baseAddress!, g.baseAddress!, slotPointers)
            }
        }
    }
    return out
}
