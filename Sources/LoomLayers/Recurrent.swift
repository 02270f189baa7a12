import LoomTensor

/// Keras's LSTM bias initializer with unit_forget_bias: the forget gate's quarter is ones,
/// the rest from the bias initializer (i, f, c, o order).
struct UnitForgetBias: Initializer {
    static var kerasClassName: String { "UnitForgetBias" }
    static var kerasModule: String { "keras.initializers" }
    let base: any Initializer
    let units: Int
    func callAsFunction(shape: [Int]) -> Tensor {
        Tensor.concatenate([base(shape: [units]), Tensor(shape: [units], scalars: Array(repeating: 1, count: units)),
                            base(shape: [2 * units])], axis: 0)
    }
    var config: Config { [:] }
    var serialized: JSONValue { base.serialized }
}

/// What SimpleRNN, LSTM and GRU share (Keras's RNN layer around a cell): the input projection
/// of every time step as one matrix product, then the recurrent steps in time order (or
/// reversed with go_backwards), masked steps keeping the previous output and state, dropout
/// masks drawn once per sequence. Weights are the cell's: kernel [input, gates x units],
/// recurrent_kernel [units, gates x units] and bias, saved under the layer's "cell" as Keras
/// saves them. With return_state a call makes the output then the final states; initial
/// states come by Keras's `initial_state` keyword; a stateful layer starts each batch from
/// the states the previous batch ended with, sample by sample.
public class RecurrentLayer: Layer, SeededLayer, @unchecked Sendable {
    public let units: Int
    public let activation: ActivationFunction
    public let useBias: Bool
    public let kernelInitializer: any Initializer, recurrentInitializer: any Initializer, biasInitializer: any Initializer
    public let kernelRegularizer: (any Regularizer)?, recurrentRegularizer: (any Regularizer)?, biasRegularizer: (any Regularizer)?
    public let kernelConstraint: (any Constraint)?, recurrentConstraint: (any Constraint)?, biasConstraint: (any Constraint)?
    public let dropout: Float, recurrentDropout: Float
    public let seed: Int?
    public let returnSequences: Bool, goBackwards: Bool, unroll: Bool
    public let returnState: Bool, stateful: Bool
    /// Masked steps output zeros instead of the previous output (Bidirectional sets it for
    /// sequences, as Keras does).
    public internal(set) var zeroOutputForMask: Bool
    public var randomSeed: UInt64
    /// The cell that holds the weights (Keras saves them under "cell").
    public let cell: RecurrentCell

    /// How many blocks of `units` the kernels hold (1, 4 for LSTM's i f c o, 3 for GRU's z r h).
    class var gates: Int { 1 }
    /// How many states the recurrence carries (h, and c for LSTM).
    class var stateCount: Int { 1 }
    /// A stateful layer's states between batches (made when it is built).
    private var carriedStates: CarriedStates?
    class var writesNullSeed: Bool { false }

    public struct Arguments {
        public var units: Int
        public var activation: ActivationFunction = .tanh
        public var useBias = true
        public var kernelInitializer: any Initializer = GlorotUniform()
        public var recurrentInitializer: any Initializer = Orthogonal()
        public var biasInitializer: any Initializer = Zeros()
        public var kernelRegularizer: (any Regularizer)? = nil, recurrentRegularizer: (any Regularizer)? = nil
        public var biasRegularizer: (any Regularizer)? = nil, activityRegularizer: (any Regularizer)? = nil
        public var kernelConstraint: (any Constraint)? = nil, recurrentConstraint: (any Constraint)? = nil
        public var biasConstraint: (any Constraint)? = nil
        public var dropout: Float = 0, recurrentDropout: Float = 0
        public var seed: Int? = nil
        public var returnSequences = false, goBackwards = false, unroll = false, zeroOutputForMask = false
        public var returnState = false, stateful = false
        public init(units: Int) { self.units = units }
    }

    init(_ a: Arguments, name: String?) throws(ConfigError) {
        let layerName = name ?? Self.kerasClassName
        guard a.units > 0 else { throw ConfigError(layerName, argument: "units", "must be a positive integer, got \(a.units)") }
        for (argument, rate) in [("dropout", a.dropout), ("recurrent_dropout", a.recurrentDropout)] where !(rate >= 0 && rate <= 1) {
            throw ConfigError(layerName, argument: argument, "must be in [0, 1], got \(rate)")
        }
        units = a.units
        activation = a.activation
        useBias = a.useBias
        (kernelInitializer, recurrentInitializer, biasInitializer) = (a.kernelInitializer, a.recurrentInitializer, a.biasInitializer)
        (kernelRegularizer, recurrentRegularizer, biasRegularizer) = (a.kernelRegularizer, a.recurrentRegularizer, a.biasRegularizer)
        (kernelConstraint, recurrentConstraint, biasConstraint) = (a.kernelConstraint, a.recurrentConstraint, a.biasConstraint)
        (dropout, recurrentDropout, seed) = (a.dropout, a.recurrentDropout, a.seed)
        (returnSequences, goBackwards, unroll, zeroOutputForMask) = (a.returnSequences, a.goBackwards, a.unroll, a.zeroOutputForMask)
        (returnState, stateful) = (a.returnState, a.stateful)
        randomSeed = layerSeed(a.seed)
        cell = RecurrentCell(name: LayerNames.next(layerName.lowercased() + "_cell"))
        super.init(name: name, activityRegularizer: a.activityRegularizer)
    }

    public override var sublayers: [Layer] { [cell] }
    public override var kerasSavedChildren: [(String, Layer)] { [("cell", cell)] }
    public override var supportsMasking: Bool { true }
    public override var callTakesMask: Bool { true }
    public override var callDefaultsTrainingToFalse: Bool { true }
    public override var recordsBuildConfig: Bool { true }
    public override var outputCount: Int { returnState ? 1 + Self.stateCount : 1 }
    public override var keywordInputName: String? { "initial_state" }

    public override func checkInputCount(_ count: Int, keywordInputs: Int) throws {
        try super.checkInputCount(count, keywordInputs: keywordInputs)
        guard keywordInputs == 0 || keywordInputs == Self.stateCount else {
            throw ConfigError(name, argument: "initial_state",
                              "must hold \(Self.stateCount) tensor\(Self.stateCount == 1 ? "" : "s") (\(Self.stateNames)), got \(keywordInputs)")
        }
    }

    /// The states' names, for messages.
    class var stateNames: String { "h" }

    /// Forgets a stateful layer's states: the next batch starts from zeros (Keras's reset_state).
    public func resetStates() { carriedStates?.reset() }

    /// The bias's shape and initializer (GRU's reset_after keeps two rows; LSTM's forget gate).
    func biasShape() -> [Int] { [Self.gates * units] }
    func biasInitializerForBuild() -> any Initializer { biasInitializer }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let shape = inputShapes[0]
        guard shape.count == 3, let features = shape[2] ?? nil else {
            throw ConfigError(name, "expects inputs of shape (batch, timesteps, features) with known features, got \(shape.text)")
        }
        if stateful {
            guard let batch = shape[0] ?? nil else {
                throw ConfigError(name, argument: "stateful",
                                  "needs a fixed batch size: give the model's Input a batch_size (Keras's batch_shape), got inputs \(shape.text)")
            }
            carriedStates = CarriedStates(count: Self.stateCount, rows: batch, width: units)
        }
        let g = Self.gates * units
        cell.kernel = try cell.addWeight("kernel", shape: [features, g], initializer: kernelInitializer,
                                         regularizer: kernelRegularizer, constraint: kernelConstraint)
        cell.recurrentKernel = try cell.addWeight("recurrent_kernel", shape: [units, g], initializer: recurrentInitializer,
                                                  regularizer: recurrentRegularizer, constraint: recurrentConstraint)
        if useBias {
            cell.bias = try cell.addWeight("bias", shape: biasShape(), initializer: biasInitializerForBuild(),
                                           regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        guard s.count == 3 else { throw ConfigError(name, "expects inputs of shape (batch, timesteps, features), got \(s.text)") }
        return returnSequences ? [s[0], s[1], units] : [s[0], units]
    }

    public override func computeOutputShapes(_ inputShapes: [TensorShape]) throws -> [TensorShape] {
        let output = try computeOutputShape(inputShapes)
        for (k, shape) in inputShapes.dropFirst().enumerated() where !shape.fits([output[0], units]) {
            throw ConfigError(name, argument: "initial_state", "state \(k) must have shape (batch, \(units)), got \(shape.text)")
        }
        return [output] + Array(repeating: [output[0], units], count: outputCount - 1)
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        returnSequences ? masks.first ?? nil : nil
    }

    /// The input bias added to the projection of every step (GRU with reset_after adds only
    /// its first row there).
    func inputBias() -> Tensor? { cell.bias?.tracked }

    /// The initial state: zeros for h (and c for LSTM).
    func initialState(batch: Int) -> [Tensor] { [Tensor(shape: [batch, units], scalars: Array(repeating: 0, count: batch * units))] }

    /// One step: the projected input of this step [B, gates x units] and the state; returns
    /// the output and the new state. `recurrentKeep` is the recurrent dropout mask, if any.
    func step(_ projected: Tensor, state: [Tensor], recurrentKeep: Tensor?) -> (Tensor, [Tensor]) {
        fatalError("RecurrentLayer.step is implemented by SimpleRNN, LSTM and GRU")
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        try callOutputs(inputs, masks: masks, context: context)[0]
    }

    /// The output, then the final states with return_state.
    public override func callOutputs(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> [Tensor] {
        let x = inputs[0]
        guard x.rank == 3, x.shape[2] == cell.kernel.shape[0] else {
            throw ConfigError(name, "expects inputs of shape (batch, timesteps, \(cell.kernel.shape[0])), got \(x.shape)")
        }
        let (batch, steps, features) = (x.shape[0], x.shape[1], x.shape[2])
        guard steps > 0 else { throw ConfigError(name, "needs at least one time step, got \(x.shape)") }
        var input = x
        var recurrentKeep: Tensor? = nil
        if context.training && dropout > 0 {
            // One mask per sequence, the same at every step (Keras's get_dropout_mask).
            let draws = uniformNoise([batch, features], layerSeed: randomSeed, context: context, perSample: true)
            let keep = draws.greaterEqual(Tensor(dropout)) * (1 / (1 - dropout))
            input = input * keep.reshaped([batch, 1, features])
        }
        if context.training && recurrentDropout > 0 {
            let draws = uniformNoise([batch, units], layerSeed: randomSeed ^ 0x5EC0_11E7, context: context, perSample: true)
            recurrentKeep = draws.greaterEqual(Tensor(recurrentDropout)) * (1 / (1 - recurrentDropout))
        }
        // Every step's input projection at once: one [B·T, F] x [F, G·U] product.
        let width = Self.gates * units
        var projected = input.reshaped([batch * steps, features]).matmul(cell.kernel.tracked)
        if let b = inputBias() { projected = projected + b }
        projected = projected.reshaped([batch, steps, width])
        let given = Array(inputs.dropFirst())
        for (k, s) in given.enumerated() where s.shape != [batch, units] {
            throw ConfigError(name, argument: "initial_state", "state \(k) must have shape [\(batch), \(units)], got \(s.shape)")
        }
        // nil: zeros (a fused recurrence then starts from zeros itself).
        let start = given.isEmpty ? try carriedStates.map { try carried($0, batch: batch, context: context) } : given
        // Keras 3 fills in a call's mask only when the call takes one tensor: given initial
        // states, the sequence's mask is not applied (the output's mask still follows it).
        let mask = given.isEmpty ? masks.first ?? nil : nil
        let (output, final) = recur(projected, initial: start, mask: mask, recurrentKeep: recurrentKeep,
                                    returnsState: returnState || stateful)
        carriedStates?.write(final, at: context.sampleOffset)
        return returnState ? [output] + final : [output]
    }

    /// The carried states of this pass's samples, after checking the batch is the one the
    /// layer was built for.
    private func carried(_ states: CarriedStates, batch: Int, context: ForwardContext) throws -> [Tensor] {
        let whole = context.batchSize ?? batch
        guard whole == states.rows else {
            throw ConfigError(name, argument: "stateful", "needs batches of \(states.rows) samples, the batch size it was built "
                              + "for, got \(whole): carried states are one per sample")
        }
        return states.read(context.sampleOffset..<(context.sampleOffset + batch))
    }

    /// The recurrent steps over the projected inputs [B, T, gates x units] from `initial`:
    /// step by step through `step` (LSTM replaces this with a fused recurrence for its
    /// default activations). Returns the output and the final states (`returnsState` lets
    /// a fused recurrence skip them).
    func recur(_ projected: Tensor, initial: [Tensor]?, mask: Tensor?, recurrentKeep: Tensor?, returnsState: Bool) -> (Tensor, [Tensor]) {
        let (batch, steps, width) = (projected.shape[0], projected.shape[1], projected.shape[2])
        var state = initial ?? initialState(batch: batch)
        var outputs: [Tensor] = []
        var previous = state[0], last = state[0]
        for i in 0..<steps {
            let t = goBackwards ? steps - 1 - i : i
            let xt = projected.slice(lower: [0, t, 0], upper: [batch, t + 1, width]).reshaped([batch, width])
            var (output, next) = step(xt, state: state, recurrentKeep: recurrentKeep)
            if let mask {
                // A masked step keeps the previous state and outputs the previous output (or
                // zeros with zero_output_for_mask), as Keras's rnn does.
                let keep = mask.slice(lower: [0, t], upper: [batch, t + 1])
                let drop = 1 - keep
                next = zip(next, state).map { $0 * keep + $1 * drop }
                output = zeroOutputForMask ? output * keep : output * keep + previous * drop
            }
            state = next
            // The output a masked step repeats is the state's h (equal to the output unless zeroed).
            previous = next[0]
            last = output
            if returnSequences { outputs.append(output.reshaped([batch, 1, units])) }
        }
        return (returnSequences ? Tensor.concatenate(outputs, axis: 1) : last, state)
    }

    public override var layerConfig: Config {
        var c = baseRecurrentConfig
        c["activity_regularizer"] = activityRegularizer?.serialized ?? .null
        // Keras's LSTM and GRU always write their seed; SimpleRNN only when one was given.
        if seed != nil || Self.writesNullSeed { c["seed"] = .from(seed) }
        return c
    }

    private var baseRecurrentConfig: Config {
        ["units": .int(units), "activation": .string(activation.name), "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.serialized, "recurrent_initializer": recurrentInitializer.serialized,
         "bias_initializer": biasInitializer.serialized, "kernel_regularizer": kernelRegularizer?.serialized ?? .null,
         "recurrent_regularizer": recurrentRegularizer?.serialized ?? .null, "bias_regularizer": biasRegularizer?.serialized ?? .null,
         "kernel_constraint": kernelConstraint?.serialized ?? .null, "recurrent_constraint": recurrentConstraint?.serialized ?? .null,
         "bias_constraint": biasConstraint?.serialized ?? .null, "dropout": .from(dropout), "recurrent_dropout": .from(recurrentDropout),
         "return_sequences": .bool(returnSequences), "return_state": .bool(returnState), "go_backwards": .bool(goBackwards),
         "stateful": .bool(stateful), "unroll": .bool(unroll), "zero_output_for_mask": .bool(zeroOutputForMask)]
    }

    /// The arguments every recurrent layer reads, with Keras's defaults.
    static func readArguments(_ k: LayerConfigReader) throws -> Arguments {
        var a = Arguments(units: try k.reader.size("units"))
        a.activation = try k.reader.has("activation") ? k.activation() : .tanh
        a.useBias = try k.reader.bool("use_bias", default: true)
        a.kernelInitializer = try k.initializer("kernel_initializer", default: GlorotUniform())
        a.recurrentInitializer = try k.initializer("recurrent_initializer", default: Orthogonal())
        a.biasInitializer = try k.initializer("bias_initializer", default: Zeros())
        a.kernelRegularizer = try k.regularizer("kernel_regularizer")
        a.recurrentRegularizer = try k.regularizer("recurrent_regularizer")
        a.biasRegularizer = try k.regularizer("bias_regularizer")
        a.kernelConstraint = try k.constraint("kernel_constraint")
        a.recurrentConstraint = try k.constraint("recurrent_constraint")
        a.biasConstraint = try k.constraint("bias_constraint")
        a.dropout = try k.reader.float("dropout", default: 0)
        a.recurrentDropout = try k.reader.float("recurrent_dropout", default: 0)
        a.seed = try k.reader.optionalInt("seed")
        a.returnSequences = try k.reader.bool("return_sequences", default: false)
        a.goBackwards = try k.reader.bool("go_backwards", default: false)
        a.unroll = try k.reader.bool("unroll", default: false)
        a.zeroOutputForMask = try k.reader.bool("zero_output_for_mask", default: false)
        a.returnState = try k.reader.bool("return_state", default: false)
        a.stateful = try k.reader.bool("stateful", default: false)
        return a
    }
}

/// A stateful layer's states between batches: one row per sample of its fixed batch, zeros
/// until the first batch and after a reset. The buffers are made when the layer is built,
/// before any concurrent use; each shard of a batch reads and then writes only its own
/// samples' rows, so workers never touch the same memory (hence @unchecked Sendable).
final class CarriedStates: @unchecked Sendable {
    let rows: Int, width: Int
    private let buffers: [UnsafeMutableBufferPointer<Float>]

    init(count: Int, rows: Int, width: Int) {
        (self.rows, self.width) = (rows, width)
        buffers = (0..<count).map { _ in
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * width)
            b.initialize(repeating: 0)
            return b
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    /// Each state's rows `samples`.
    func read(_ samples: Range<Int>) -> [Tensor] {
        buffers.map { b in
            Tensor(shape: [samples.count, width], scalars: Array(b[(samples.lowerBound * width)..<(samples.upperBound * width)]))
        }
    }

    /// Stores `states` ([n, width] each) as the rows from sample `offset`.
    func write(_ states: [Tensor], at offset: Int) {
        for (b, state) in zip(buffers, states) {
            let values = state.scalars
            _ = UnsafeMutableBufferPointer(rebasing: b[(offset * width)..<(offset * width + values.count)]).initialize(from: values)
        }
    }

    /// Zeros every state.
    func reset() { for b in buffers { b.update(repeating: 0) } }
}

/// The weights of a recurrent layer, as Keras's cell object holds them.
public final class RecurrentCell: Layer, @unchecked Sendable {
    public internal(set) var kernel: Parameter!
    public internal(set) var recurrentKernel: Parameter!
    public internal(set) var bias: Parameter?
}

/// h_t = activation(x_t W + h_{t-1} U + b) (Keras's SimpleRNN).
public final class SimpleRNN: RecurrentLayer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "SimpleRNN" }

    public override init(_ arguments: Arguments, name: String? = nil) throws(ConfigError) { try super.init(arguments, name: name) }

    override func step(_ projected: Tensor, state: [Tensor], recurrentKeep: Tensor?) -> (Tensor, [Tensor]) {
        let h = recurrentKeep.map { state[0] * $0 } ?? state[0]
        let out = activation(projected + h.matmul(cell.recurrentKernel.tracked))
        return (out, [out])
    }

    public static func from(config: Config) throws -> SimpleRNN {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try SimpleRNN(try readArguments(k), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// What LSTM and GRU add to a recurrent layer: the activation of their gates.
public class GatedRecurrentLayer: RecurrentLayer, @unchecked Sendable {
    public let recurrentActivation: ActivationFunction

    init(_ arguments: Arguments, recurrentActivation: ActivationFunction, name: String?) throws(ConfigError) {
        self.recurrentActivation = recurrentActivation
        try super.init(arguments, name: name)
    }

    public override var layerConfig: Config {
        super.layerConfig.merging(["recurrent_activation": .string(recurrentActivation.name)]) { $1 }
    }

    /// recurrent_activation from a config, Keras's sigmoid by default.
    static func readRecurrentActivation(_ k: LayerConfigReader) throws -> ActivationFunction {
        try k.reader.has("recurrent_activation") ? k.activation("recurrent_activation") : .sigmoid
    }
}

/// Long short-term memory (Keras's LSTM): gates i, f, c, o; c_t = f c_{t-1} + i activation(z_c),
/// h_t = o activation(c_t), the gates through recurrent_activation.
public final class LSTM: GatedRecurrentLayer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "LSTM" }
    override class var gates: Int { 4 }
    override class var writesNullSeed: Bool { true }
    public let unitForgetBias: Bool

    public init(_ arguments: Arguments, recurrentActivation: ActivationFunction = .sigmoid, unitForgetBias: Bool = true,
                name: String? = nil) throws(ConfigError) {
        self.unitForgetBias = unitForgetBias
        try super.init(arguments, recurrentActivation: recurrentActivation, name: name)
    }

    override func biasInitializerForBuild() -> any Initializer {
        unitForgetBias ? UnitForgetBias(base: biasInitializer, units: units) : biasInitializer
    }

    override class var stateCount: Int { 2 }
    override class var stateNames: String { "h, c" }

    override func initialState(batch: Int) -> [Tensor] { super.initialState(batch: batch) + super.initialState(batch: batch) }

    override func recur(_ projected: Tensor, initial: [Tensor]?, mask: Tensor?, recurrentKeep: Tensor?,
                        returnsState: Bool) -> (Tensor, [Tensor]) {
        // Keras's default activations run as one fused recurrence with hand-written step
        // derivatives; other activations go step by step through the graph.
        guard activation.name == "tanh" && recurrentActivation.name == "sigmoid" else {
            return super.recur(projected, initial: initial, mask: mask, recurrentKeep: recurrentKeep, returnsState: returnsState)
        }
        let values = Tensor.lstmSequence(projected: projected, recurrentKernel: cell.recurrentKernel.tracked,
                                         initialState: initial, mask: mask,
                                         recurrentKeep: recurrentKeep, goBackwards: goBackwards, returnSequences: returnSequences,
                                         zeroOutputForMask: zeroOutputForMask, returnsState: returnsState)
        return (values[0], Array(values.dropFirst()))
    }

    override func step(_ projected: Tensor, state: [Tensor], recurrentKeep: Tensor?) -> (Tensor, [Tensor]) {
        let (hPrevious, cPrevious) = (state[0], state[1])
        let h = recurrentKeep.map { hPrevious * $0 } ?? hPrevious
        let z = projected + h.matmul(cell.recurrentKernel.tracked)
        let b = z.shape[0], u = units
        func gate(_ k: Int) -> Tensor { z.slice(lower: [0, k * u], upper: [b, (k + 1) * u]) }
        let i = recurrentActivation(gate(0)), f = recurrentActivation(gate(1))
        let c = f * cPrevious + i * activation(gate(2))
        let o = recurrentActivation(gate(3))
        let out = o * activation(c)
        return (out, [out, c])
    }

    public override var layerConfig: Config {
        super.layerConfig.merging(["unit_forget_bias": .bool(unitForgetBias)]) { $1 }
    }

    public static func from(config: Config) throws -> LSTM {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try LSTM(try readArguments(k), recurrentActivation: try readRecurrentActivation(k),
                             unitForgetBias: try k.reader.bool("unit_forget_bias", default: true), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Gated recurrent unit (Keras's GRU): gates z, r, candidate h; h_t = z h_{t-1} + (1 - z) hh.
/// With reset_after (the default) the reset gate multiplies the recurrent projection, and the
/// bias has two rows (input, recurrent).
public final class GRU: GatedRecurrentLayer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "GRU" }
    override class var gates: Int { 3 }
    override class var writesNullSeed: Bool { true }
    public let resetAfter: Bool

    public init(_ arguments: Arguments, recurrentActivation: ActivationFunction = .sigmoid, resetAfter: Bool = true,
                name: String? = nil) throws(ConfigError) {
        self.resetAfter = resetAfter
        try super.init(arguments, recurrentActivation: recurrentActivation, name: name)
    }

    override func biasShape() -> [Int] { resetAfter ? [2, 3 * units] : [3 * units] }

    override func inputBias() -> Tensor? {
        guard let b = cell.bias?.tracked else { return nil }
        return resetAfter ? b.slice(lower: [0, 0], upper: [1, 3 * units]).reshaped([3 * units]) : b
    }

    override func step(_ projected: Tensor, state: [Tensor], recurrentKeep: Tensor?) -> (Tensor, [Tensor]) {
        let hPrevious = state[0]
        let h = recurrentKeep.map { hPrevious * $0 } ?? hPrevious
        let b = projected.shape[0], u = units
        func part(_ t: Tensor, _ k: Int, _ n: Int = 1) -> Tensor { t.slice(lower: [0, k * u], upper: [b, (k + n) * u]) }
        let kernel = cell.recurrentKernel.tracked
        let z: Tensor, r: Tensor, recurrentH: Tensor
        if resetAfter {
            var inner = h.matmul(kernel)
            if let bias = cell.bias?.tracked { inner = inner + bias.slice(lower: [1, 0], upper: [2, 3 * u]).reshaped([3 * u]) }
            z = recurrentActivation(part(projected, 0) + part(inner, 0))
            r = recurrentActivation(part(projected, 1) + part(inner, 1))
            recurrentH = r * part(inner, 2)
        } else {
            let inner = h.matmul(kernel.slice(lower: [0, 0], upper: [u, 2 * u]))
            z = recurrentActivation(part(projected, 0) + part(inner, 0))
            r = recurrentActivation(part(projected, 1) + part(inner, 1))
            recurrentH = (r * h).matmul(kernel.slice(lower: [0, 2 * u], upper: [u, 3 * u]))
        }
        let candidate = activation(part(projected, 2) + recurrentH)
        let out = z * hPrevious + (1 - z) * candidate
        return (out, [out])
    }

    public override var layerConfig: Config {
        super.layerConfig.merging(["reset_after": .bool(resetAfter)]) { $1 }
    }

    public static func from(config: Config) throws -> GRU {
        let k = try LayerConfigReader(config, className: kerasClassName)
        let layer = try GRU(try readArguments(k), recurrentActivation: try readRecurrentActivation(k),
                            resetAfter: try k.reader.bool("reset_after", default: true), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
