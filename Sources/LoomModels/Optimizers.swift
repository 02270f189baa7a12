import CLoomSIMD
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
    private var slots: [ObjectIdentifier: [Tensor]] = [:]

    /// The shared settings as the Keras optimizers take them.
    public init(name: String, learningRate: LearningRate, weightDecay: Float?, clipnorm: Float?,
                clipvalue: Float?, globalClipnorm: Float?) throws(ConfigError) {
        let options = OptimizerOptions(learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
        try options.validate(name)
        self.name = name
        self.options = options
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

    /// About how many elements of a large weight one piece of the parallel update holds: small
    /// enough that a worker done early can take over part of a late one's share, large enough
    /// that a kernel's rows computed from products keep sgemm efficient.
    static let pieceElements = 65_536

    /// One step from gradients in parts (one per worker, summed in order) and kernels' products
    /// recorded by the workers (`deferred`, in worker order): the kernels' gradients, the sum,
    /// the decay and the update run on the pool's threads, in pieces of the weights (whole rows
    /// of a kernel computed from products, the first part), each worker's own first, then what
    /// a late worker has not begun. The pieces depend only on the shapes and the worker count,
    /// so which thread runs one does not change the result.
    /// Without clipping, each piece is summed a few thousand elements at a time into a buffer
    /// that stays in cache and updated from there (a single part is read in place); clipping
    /// needs whole norms, so it sums whole weights first and clips between.
    func apply(_ parts: [Gradients], deferred: [DeferredWeightGradients] = [], to parameters: [Parameter], pool: WorkerPool?) {
        var recorded: [Parameter: [DeferredWeightGradients.Factors]] = [:]
        for d in deferred {
            for (p, f) in d.products { recorded[p, default: []].append(f) }
        }
        let updated = parameters.filter { p in recorded[p] != nil || parts.contains { $0[p] != nil } }
        let lr = learningRate
        let decay = (options.weightDecay ?? 0) * lr
        beginStep()
        // Everything the threads touch is made here: slots, kernels' gradients and with clipping
        // the merged gradients. Pointers stay valid while these arrays hold their tensors.
        let needsClip = [options.clipnorm, options.clipvalue, options.globalClipnorm].contains { ($0 ?? 0) > 0 }
        // Taken out of the parameters and updated in place: writing new values over the old
        // ones spares a buffer as large as the model and a pass of cache misses to fill it. (A
        // value another reference still holds is copied first.) Until they are put back, the
        // parameters read empty, so shapes come from here.
        var values = updated.map { $0.take() }
        let valueBuffers = values.indices.map { i in values[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        // A kernel's gradient from its products goes into a tensor of its own, the first part.
        let factors = updated.map { recorded[$0] ?? [] }
        var computed = factors.indices.map { i in factors[i].isEmpty ? nil : Tensor(uninitializedShape: values[i].shape) }
        let computedBuffers = computed.indices.map { i in computed[i]?.withUnsafeMutableBufferPointer { $0.baseAddress! } }
        let sources = updated.map { p in parts.compactMap { $0[p] } }
        let sourceBuffers = sources.indices.map { i in
            (computedBuffers[i].map { [UnsafePointer($0)] } ?? []) + sources[i].map { t in t.withUnsafeBufferPointer { $0.baseAddress! } }
        }
        var merged = needsClip ? values.map { Tensor(uninitializedShape: $0.shape) } : []
        let mergedBuffers = merged.indices.map { i in merged[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        // Taken out of the table, so the slots are uniquely owned and updated without a copy.
        var slotTensors = updated.indices.map { i in
            slots.removeValue(forKey: ObjectIdentifier(updated[i])) ?? makeSlots(for: values[i])
        }
        let slotBuffers = slotTensors.indices.map { i in
            slotTensors[i].indices.map { j in slotTensors[i][j].withUnsafeMutableBufferPointer { $0.baseAddress! } }
        }
        let workers = pool?.count ?? 1

        // Elements a piece of weight i is cut at: whole rows of a kernel computed from products.
        let rowLength = updated.indices.map { i in factors[i].isEmpty ? 1 : values[i].shape[1] }
        // The pieces of the update: small weights whole, each on one worker in turn; large ones
        // split evenly across the workers, each worker's part cut into pieces of about
        // `Optimizer.pieceElements`, which a worker done early may take from a late one.
        var pieces: [(weight: Int, elements: Range<Int>)] = [], homes: [Int] = []
        for i in values.indices {
            let n = values[i].count
            if n < 32_768 {
                pieces.append((i, 0..<n))
                homes.append(i % workers)
                continue
            }
            let rows = n / rowLength[i]
            let perWorker = Swift.max(1, (n / workers + Optimizer.pieceElements / 2) / Optimizer.pieceElements)
            let count = workers * perWorker
            for j in 0..<count where j * rows / count < (j + 1) * rows / count {
                pieces.append((i, (j * rows / count * rowLength[i])..<((j + 1) * rows / count * rowLength[i])))
                homes.append(j / perWorker)
            }
        }
        // Rows r of a kernel computed from products, before its parts are read.
        func computeRows(_ i: Int, _ r: Range<Int>) {
            guard let out = computedBuffers[i] else { return }
            DeferredWeightGradients.sumRows((r.lowerBound / rowLength[i])..<(r.upperBound / rowLength[i]),
                                            of: factors[i], into: out)
        }
        // Elements r of weight i's parts, summed in part order into `out`.
        func sum(_ i: Int, _ r: Range<Int>, into out: UnsafeMutablePointer<Float>) {
            out.update(from: sourceBuffers[i][0] + r.lowerBound, count: r.count)
            for source in sourceBuffers[i].dropFirst() {
                let src = source + r.lowerBound
                for e in 0..<r.count { out[e] += src[e] }
            }
        }
        // Elements r of weight i decayed and updated from their gradient g; `s` is filled with
        // the slots' pointers at r (an array the caller keeps, so chunks allocate nothing).
        func update(_ i: Int, _ r: Range<Int>, gradient g: UnsafePointer<Float>, slots s: inout [UnsafeMutablePointer<Float>]) {
            let w = valueBuffers[i] + r.lowerBound
            for j in s.indices { s[j] = slotBuffers[i][j] + r.lowerBound }
            if decay != 0 {
                // Keras decays the weight before the update reads it.
                for e in 0..<r.count { w[e] = w[e] - w[e] * decay }
            }
            updateElements(r.count, w, w, g, s, learningRate: lr)
        }
        func sumWhole(_ p: Int) {
            let (i, r) = pieces[p]
            computeRows(i, r)
            sum(i, r, into: mergedBuffers[i] + r.lowerBound)
        }
        func stepFromMerged(_ p: Int) {
            let (i, r) = pieces[p]
            var slots = slotBuffers[i]
            update(i, r, gradient: mergedBuffers[i] + r.lowerBound, slots: &slots)
        }
        func sumAndStep(_ p: Int) {
            let (i, r) = pieces[p]
            computeRows(i, r)
            var slots = slotBuffers[i]
            if sourceBuffers[i].count == 1 {
                update(i, r, gradient: sourceBuffers[i][0] + r.lowerBound, slots: &slots)
                return
            }
            let chunk = 4096
            withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { scratch in
                for start in stride(from: r.lowerBound, to: r.upperBound, by: chunk) {
                    let piece = start..<Swift.min(start + chunk, r.upperBound)
                    sum(i, piece, into: scratch.baseAddress!)
                    update(i, piece, gradient: scratch.baseAddress!, slots: &slots)
                }
            }
        }
        nonisolated(unsafe) let sumJob = sumWhole, stepJob = stepFromMerged, fusedJob = sumAndStep
        if needsClip {
            WorkerPool.run(pieces: homes, on: pool) { _, p in sumJob(p) }
            let clipped = clip(merged)
            for (i, c) in clipped.enumerated() {
                c.withUnsafeBufferPointer { mergedBuffers[i].update(from: $0.baseAddress!, count: $0.count) }
            }
            WorkerPool.run(pieces: homes, on: pool) { _, p in stepJob(p) }
        } else {
            WorkerPool.run(pieces: homes, on: pool) { _, p in fusedJob(p) }
        }
        withExtendedLifetime((sources, computed, factors, merged, values, slotTensors)) {}
        for (i, p) in updated.enumerated() {
            slots[ObjectIdentifier(p)] = slotTensors[i]
            p.restore(values[i])
            if let c = p.constraint { p.assign(c.project(p.value)) }
        }
        iterations += 1
    }

    private func clip(_ grads: [Tensor]) -> [Tensor] {
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

typealias Lanes = SIMD8<Float>

/// 8 floats at p + i.
@inline(__always) func lanes(_ p: UnsafePointer<Float>, _ i: Int) -> Lanes {
    UnsafeRawPointer(p + i).loadUnaligned(as: Lanes.self)
}

/// Stores 8 floats at p + i.
@inline(__always) func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Lanes.self)
}

/// Gradient descent, with momentum and Nesterov momentum.
public final class SGD: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "SGD" }
    public let momentum: Float, nesterov: Bool
    public init(learningRate: LearningRate = 0.01, momentum: Float = 0, nesterov: Bool = false,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "SGD") throws(ConfigError) {
        guard momentum >= 0 && momentum <= 1 else { throw ConfigError(name, argument: "momentum", "must be in [0, 1], got \(momentum)") }
        self.momentum = momentum
        self.nesterov = nesterov
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { momentum != 0 ? [Tensor.zeros(value.shape)] : [] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let (momentum, nesterov) = (self.momentum, self.nesterov)
        guard momentum != 0 else {
            let vector = n & ~7
            for i in stride(from: 0, to: vector, by: 8) { store(lanes(w, i) - lanes(g, i) * lr, out, i) }
            for i in vector..<n { out[i] = w[i] - g[i] * lr }
            return
        }
        let m = s[0]
        for i in 0..<n {
            let step = g[i] * lr
            m[i] = m[i] * momentum - step
            out[i] = nesterov ? w[i] + (m[i] * momentum - step) : w[i] + m[i]
        }
    }
    public override var optimizerConfig: Config { ["momentum": .from(momentum), "nesterov": .bool(nesterov)] }
    public override var kerasSlotGroups: [[Int]] { momentum != 0 ? [[0]] : [] }
}

/// RMSprop: g / sqrt(moving average of g² + ε), optionally centered and with momentum.
public final class RMSprop: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "RMSprop" }
    public let rho: Float, momentum: Float, epsilon: Float, centered: Bool
    public init(learningRate: LearningRate = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "rmsprop") throws(ConfigError) {
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    // Slots: velocity, then momentum (if any), then the average gradient (if centered).
    public override func makeSlots(for value: Tensor) -> [Tensor] {
        Array(repeating: Tensor.zeros(value.shape), count: 1 + (momentum > 0 ? 1 : 0) + (centered ? 1 : 0))
    }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let (rho, momentum, epsilon, centered) = (self.rho, self.momentum, self.epsilon, self.centered)
        let velocity = s[0]
        if !centered && momentum <= 0 {
            // The common case, 8 lanes at a time (the same operations in the same order).
            let vector = n & ~7
            for i in stride(from: 0, to: vector, by: 8) {
                let gi = lanes(g, i)
                let v = rho * lanes(velocity, i) + (1 - rho) * (gi * gi)
                store(v, velocity, i)
                store(lanes(w, i) - (lr * gi) / loom_sqrt8(v + epsilon), out, i)
            }
            for i in vector..<n {
                let v = rho * velocity[i] + (1 - rho) * (g[i] * g[i])
                velocity[i] = v
                out[i] = w[i] - (lr * g[i]) / (v + epsilon).squareRoot()
            }
            return
        }
        let average = centered ? s[s.count - 1] : nil
        let m = momentum > 0 ? s[1] : nil
        for i in 0..<n {
            let v = rho * velocity[i] + (1 - rho) * (g[i] * g[i])
            velocity[i] = v
            var denominator = v + epsilon
            if let average {
                let a = rho * average[i] + (1 - rho) * g[i]
                average[i] = a
                denominator = v - a * a + epsilon
            }
            let increment = (lr * g[i]) / denominator.squareRoot()
            if let m {
                m[i] = momentum * m[i] + increment
                out[i] = w[i] - m[i]
            } else {
                out[i] = w[i] - increment
            }
        }
    }
    public override var optimizerConfig: Config {
        ["rho": .from(rho), "momentum": .from(momentum), "epsilon": .from(epsilon), "centered": .bool(centered)]
    }
    // Keras: velocities, then momentums, then average gradients, each over all weights.
    public override var kerasSlotGroups: [[Int]] {
        [[0]] + (momentum > 0 ? [[1]] : []) + (centered ? [[momentum > 0 ? 2 : 1]] : [])
    }
}

/// Adam, with the AMSGrad variant; AdamW is Adam with decoupled weight decay.
public class Adam: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adam" }
    public let beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                amsgrad: Bool = false, weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adam") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] {
        Array(repeating: Tensor.zeros(value.shape), count: amsgrad ? 3 : 2)
    }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let t = Float(iterations + 1)
        let alpha = lr * (1 - Foundation.pow(beta2, t)).squareRoot() / (1 - Foundation.pow(beta1, t))
        let (beta1, beta2, epsilon, amsgrad) = (self.beta1, self.beta2, self.epsilon, self.amsgrad)
        let (m, v) = (s[0], s[1])
        if !amsgrad {
            let vector = n & ~7
            for i in stride(from: 0, to: vector, by: 8) {
                let gi = lanes(g, i), m0 = lanes(m, i), v0 = lanes(v, i)
                let mi = m0 + (gi - m0) * (1 - beta1)
                let vi = v0 + (gi * gi - v0) * (1 - beta2)
                store(mi, m, i)
                store(vi, v, i)
                store(lanes(w, i) - (mi * alpha) / (loom_sqrt8(vi) + epsilon), out, i)
            }
            for i in vector..<n {
                let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
                let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
                m[i] = mi
                v[i] = vi
                out[i] = w[i] - (mi * alpha) / (vi.squareRoot() + epsilon)
            }
            return
        }
        let vHat = s[2]
        for i in 0..<n {
            let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
            let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
            m[i] = mi
            v[i] = vi
            let vh = Swift.max(vHat[i], vi)
            vHat[i] = vh
            out[i] = w[i] - (mi * alpha) / (vh.squareRoot() + epsilon)
        }
    }
    public override var optimizerConfig: Config {
        ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon), "amsgrad": .bool(amsgrad)]
    }
    // Keras: m and v interleaved per weight, then the v-hats.
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] + (amsgrad ? [[2]] : []) }
}

/// Adam with decoupled weight decay (default 0.004).
public final class AdamW: Adam, @unchecked Sendable {
    public override class var kerasClassName: String { "AdamW" }
    public init(learningRate: LearningRate = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7, amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adamw") throws(ConfigError) {
        try super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                       weightDecay: weightDecay, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm, name: name)
    }
}

/// Adagrad: g / sqrt(Σg² + ε), the sum starting at `initialAccumulatorValue`.
public final class Adagrad: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adagrad" }
    public let initialAccumulatorValue: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adagrad") throws(ConfigError) {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.full(value.shape, initialAccumulatorValue)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let accumulator = s[0]
        for i in 0..<n {
            accumulator[i] += g[i] * g[i]
            out[i] = w[i] - (lr * g[i]) / (accumulator[i] + epsilon).squareRoot()
        }
    }
    public override var optimizerConfig: Config {
        ["initial_accumulator_value": .from(initialAccumulatorValue), "epsilon": .from(epsilon)]
    }
    public override var kerasSlotGroups: [[Int]] { [[0]] }
}

/// Adadelta: steps scaled by the ratio of running RMS of updates to running RMS of gradients.
public final class Adadelta: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adadelta" }
    public let rho: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adadelta") throws(ConfigError) {
        self.rho = rho
        self.epsilon = epsilon
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let (accumulatedGrad, accumulatedDelta) = (s[0], s[1])
        for i in 0..<n {
            let a = rho * accumulatedGrad[i] + (1 - rho) * (g[i] * g[i])
            accumulatedGrad[i] = a
            let delta = -((accumulatedDelta[i] + epsilon).squareRoot() * g[i]) / (a + epsilon).squareRoot()
            accumulatedDelta[i] = rho * accumulatedDelta[i] + (1 - rho) * (delta * delta)
            out[i] = w[i] + lr * delta
        }
    }
    public override var optimizerConfig: Config { ["rho": .from(rho), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
}

/// Adamax: Adam with the infinity norm in place of the second moment.
public final class Adamax: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Adamax" }
    public let beta1: Float, beta2: Float, epsilon: Float
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "adamax") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let beta1Power = Foundation.pow(beta1, Float(iterations + 1))
        let (m, u) = (s[0], s[1])
        for i in 0..<n {
            let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
            let ui = Swift.max(beta2 * u[i], Swift.abs(g[i]))
            m[i] = mi
            u[i] = ui
            out[i] = w[i] - (lr * mi) / ((1 - beta1Power) * (ui + epsilon))
        }
    }
    public override var optimizerConfig: Config { ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
}

/// Nadam: Adam with Nesterov momentum and Keras's momentum schedule (0.96 decay).
public final class Nadam: Optimizer, @unchecked Sendable {
    public override class var kerasClassName: String { "Nadam" }
    public let beta1: Float, beta2: Float, epsilon: Float
    private var uProduct: Float = 1
    public init(learningRate: LearningRate = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                weightDecay: Float? = nil, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, name: String = "nadam") throws(ConfigError) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        try super.init(name: name, learningRate: learningRate, weightDecay: weightDecay, clipnorm: clipnorm,
                       clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }
    private func u(_ step: Float) -> Float { beta1 * (1 - 0.5 * Foundation.pow(0.96, step)) }
    public override func beginStep() {
        // Keras multiplies the running product by u_t before the per-weight updates, which
        // then read it as u_product_t.
        uProduct *= u(Float(iterations + 1))
    }
    public override func makeSlots(for value: Tensor) -> [Tensor] { [Tensor.zeros(value.shape), Tensor.zeros(value.shape)] }
    public override func updateElements(_ n: Int, _ out: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>,
                                         _ g: UnsafePointer<Float>, _ s: [UnsafeMutablePointer<Float>], learningRate lr: Float) {
        let t = Float(iterations + 1)
        let ut = u(t), ut1 = u(t + 1)
        let uProductNext = uProduct * ut1
        let beta2Power = Foundation.pow(beta2, t)
        let (m, v) = (s[0], s[1])
        for i in 0..<n {
            let mi = m[i] + (g[i] - m[i]) * (1 - beta1)
            let vi = v[i] + (g[i] * g[i] - v[i]) * (1 - beta2)
            m[i] = mi
            v[i] = vi
            let mHat = (ut1 * mi) / (1 - uProductNext) + ((1 - ut) * g[i]) / (1 - uProduct)
            let vHat = vi / (1 - beta2Power)
            out[i] = w[i] - (mHat * lr) / (vHat.squareRoot() + epsilon)
        }
    }
    public override var optimizerConfig: Config { ["beta_1": .from(beta1), "beta_2": .from(beta2), "epsilon": .from(epsilon)] }
    public override var kerasSlotGroups: [[Int]] { [[0, 1]] }
    public override var scalarState: [Float] {
        get { [uProduct] }
        set { uProduct = newValue.first ?? 1 }
    }
}

/// The optimizers Keras knows by name ("adam", "Adam", or a serialized config).
public let optimizers: Registry<Optimizer> = {
    let r = Registry<Optimizer>(kind: "optimizer")
    @Sendable func reader(_ c: Config, _ className: String) throws -> (ConfigReader, LearningRate?, OptimizerOptions) {
        let k = ConfigReader(c, object: className)
        for key in ["use_ema"] where try k.bool(key, default: false) {
            throw ConfigError(className, argument: key, "is not supported")
        }
        for key in ["loss_scale_factor", "gradient_accumulation_steps"] where k.has(key) {
            throw ConfigError(className, argument: key, "is not supported")
        }
        var rate: LearningRate? = nil
        switch k.value("learning_rate") {
        case .null: rate = nil
        case let .object(o) where o["class_name"] != nil:
            rate = .schedule(try learningRateSchedules.make(.object(o), owner: className, argument: "learning_rate"))
        default: rate = .constant(try k.float("learning_rate"))
        }
        let options = OptimizerOptions(learningRate: rate ?? 0.001, weightDecay: try k.optionalFloat("weight_decay"),
                                       clipnorm: try k.optionalFloat("clipnorm"), clipvalue: try k.optionalFloat("clipvalue"),
                                       globalClipnorm: try k.optionalFloat("global_clipnorm"))
        return (k, rate, options)
    }
    r.register("SGD", aliases: ["sgd"]) { c in
        let (k, lr, o) = try reader(c, "SGD")
        return try SGD(learningRate: lr ?? 0.01, momentum: try k.float("momentum", default: 0), nesterov: try k.bool("nesterov", default: false),
                       weightDecay: o.weightDecay, clipnorm: o.clipnorm, clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm,
                       name: try k.string("name", default: "SGD"))
    }
    r.register("RMSprop", aliases: ["rmsprop"]) { c in
        let (k, lr, o) = try reader(c, "RMSprop")
        return try RMSprop(learningRate: lr ?? 0.001, rho: try k.float("rho", default: 0.9), momentum: try k.float("momentum", default: 0),
                           epsilon: try k.float("epsilon", default: 1e-7), centered: try k.bool("centered", default: false),
                           weightDecay: o.weightDecay, clipnorm: o.clipnorm, clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm,
                           name: try k.string("name", default: "rmsprop"))
    }
    r.register("Adam", aliases: ["adam"]) { c in
        let (k, lr, o) = try reader(c, "Adam")
        return try Adam(learningRate: lr ?? 0.001, beta1: try k.float("beta_1", default: 0.9), beta2: try k.float("beta_2", default: 0.999),
                        epsilon: try k.float("epsilon", default: 1e-7), amsgrad: try k.bool("amsgrad", default: false),
                        weightDecay: o.weightDecay, clipnorm: o.clipnorm, clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm,
                        name: try k.string("name", default: "adam"))
    }
    r.register("AdamW", aliases: ["adamw"]) { c in
        let (k, lr, o) = try reader(c, "AdamW")
        return try AdamW(learningRate: lr ?? 0.001, weightDecay: o.weightDecay ?? 0.004, beta1: try k.float("beta_1", default: 0.9),
                         beta2: try k.float("beta_2", default: 0.999), epsilon: try k.float("epsilon", default: 1e-7),
                         amsgrad: try k.bool("amsgrad", default: false), clipnorm: o.clipnorm, clipvalue: o.clipvalue,
                         globalClipnorm: o.globalClipnorm, name: try k.string("name", default: "adamw"))
    }
    r.register("Adagrad", aliases: ["adagrad"]) { c in
        let (k, lr, o) = try reader(c, "Adagrad")
        return try Adagrad(learningRate: lr ?? 0.001, initialAccumulatorValue: try k.float("initial_accumulator_value", default: 0.1),
                           epsilon: try k.float("epsilon", default: 1e-7), weightDecay: o.weightDecay, clipnorm: o.clipnorm,
                           clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm, name: try k.string("name", default: "adagrad"))
    }
    r.register("Adadelta", aliases: ["adadelta"]) { c in
        let (k, lr, o) = try reader(c, "Adadelta")
        return try Adadelta(learningRate: lr ?? 0.001, rho: try k.float("rho", default: 0.95), epsilon: try k.float("epsilon", default: 1e-7),
                            weightDecay: o.weightDecay, clipnorm: o.clipnorm, clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm,
                            name: try k.string("name", default: "adadelta"))
    }
    r.register("Adamax", aliases: ["adamax"]) { c in
        let (k, lr, o) = try reader(c, "Adamax")
        return try Adamax(learningRate: lr ?? 0.001, beta1: try k.float("beta_1", default: 0.9), beta2: try k.float("beta_2", default: 0.999),
                          epsilon: try k.float("epsilon", default: 1e-7), weightDecay: o.weightDecay, clipnorm: o.clipnorm,
                          clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm, name: try k.string("name", default: "adamax"))
    }
    r.register("Nadam", aliases: ["nadam"]) { c in
        let (k, lr, o) = try reader(c, "Nadam")
        return try Nadam(learningRate: lr ?? 0.001, beta1: try k.float("beta_1", default: 0.9), beta2: try k.float("beta_2", default: 0.999),
                         epsilon: try k.float("epsilon", default: 1e-7), weightDecay: o.weightDecay, clipnorm: o.clipnorm,
                         clipvalue: o.clipvalue, globalClipnorm: o.globalClipnorm, name: try k.string("name", default: "nadam"))
    }
    return r
}()
