import LoomLayers
import LoomTensor
import Synchronization

/// A value in a model under construction: its shape and the layer call that makes it
/// (Keras's KerasTensor). Calling a layer on symbolic tensors records the call.
public final class SymbolicTensor: @unchecked Sendable, CustomStringConvertible {
    /// The shape, batch axis first (nil where unknown).
    public let shape: TensorShape
    /// The layer call that produces it.
    let node: Node
    /// Which of the call's values it is (0 but for a layer's states, or Bidirectional's halves).
    let index: Int

    init(shape: TensorShape, node: Node, index: Int = 0) {
        self.shape = shape
        self.node = node
        self.index = index
    }

    /// The layer that produces it.
    public var layer: Layer { node.layer }

    public var description: String { "<SymbolicTensor shape=\(shape.text), layer=\(node.layer.name)>" }
}

/// One call of a layer in a graph: the layer, its symbolic inputs, and the shapes of the
/// values it makes. Input layers are nodes without inputs.
final class Node: @unchecked Sendable {
    let layer: Layer
    /// The inputs: the positional ones, then `keywordInputs` passed by the layer's keyword
    /// (a recurrent layer's initial states).
    let inputs: [SymbolicTensor]
    let keywordInputs: Int
    /// Which call of its layer this is (0 for the first), for naming connections ("dense[1][0]").
    let callIndex: Int
    /// The shapes of the values it makes (one but for layers that return states).
    let outputShapes: [TensorShape]

    init(layer: Layer, inputs: [SymbolicTensor], keywordInputs: Int = 0, outputShapes: [TensorShape]) {
        self.layer = layer
        self.inputs = inputs
        self.keywordInputs = keywordInputs
        self.outputShapes = outputShapes
        callIndex = layer.symbolicCallCount
        layer.symbolicCallCount += 1
    }

    /// The inputs passed positionally.
    var positionalInputs: ArraySlice<SymbolicTensor> { inputs.dropLast(keywordInputs) }
}

extension SymbolicTensor {
    /// The value an existing input layer makes.
    convenience init(inputLayer: InputLayer) {
        self.init(shape: inputLayer.batchShape, node: Node(layer: inputLayer, inputs: [], outputShapes: [inputLayer.batchShape]))
    }
}

/// Keras's `keras.Input`: a symbolic input of `shape` (without the batch axis).
public func Input(shape: TensorShape, batchSize: Int? = nil, dtype: String = "float32", name: String? = nil) -> SymbolicTensor {
    let layer = InputLayer(shape: shape, batchSize: batchSize, dtype: dtype, name: name)
    return SymbolicTensor(shape: layer.batchShape, node: Node(layer: layer, inputs: [], outputShapes: [layer.batchShape]))
}

extension TensorShape {
    /// Refuses an output whose sample (batch axis excluded) could not be allocated, whatever
    /// sizes a config declares.
    func checkSampleSize(_ layer: String) throws(ConfigError) {
        _ = try ShapeLimits.checkedCount(dropFirst().compactMap { $0 }, owner: layer, what: "the output")
    }
}

extension Layer {
    /// Calls the layer on a symbolic input: builds it for that shape and records the call.
    public func callAsFunction(_ x: SymbolicTensor) throws -> SymbolicTensor { try single(callSymbolic([x])) }

    /// Calls the layer on several symbolic inputs (merge layers).
    public func callAsFunction(_ xs: [SymbolicTensor]) throws -> SymbolicTensor { try single(callSymbolic(xs)) }

    /// Calls a recurrent layer (or Bidirectional) from initial states (Keras's
    /// `initial_state=`): LSTM takes [h, c], GRU and SimpleRNN [h].
    public func callAsFunction(_ x: SymbolicTensor, initialState: [SymbolicTensor]) throws -> SymbolicTensor {
        try single(callSymbolic([x] + initialState, keywordInputs: initialState.count))
    }

    /// Every value of the call, as Keras returns them: a layer with return_state gives its
    /// output then its states (`let (y, h, c)` in Keras is `callAll(x)` here).
    public func callAll(_ x: SymbolicTensor, initialState: [SymbolicTensor] = []) throws -> [SymbolicTensor] {
        try callSymbolic([x] + initialState, keywordInputs: initialState.count)
    }

    private func single(_ outputs: [SymbolicTensor]) throws -> SymbolicTensor {
        guard outputs.count == 1 else {
            throw ConfigError(name, "makes \(outputs.count) values (return_state or merge_mode None): take them with callAll")
        }
        return outputs[0]
    }

    func callSymbolic(_ inputs: [SymbolicTensor], keywordInputs: Int = 0) throws -> [SymbolicTensor] {
        try checkInputCount(inputs.count, keywordInputs: keywordInputs)
        let shapes = inputs.map(\.shape)
        try buildIfNeeded(shapes)
        let outputShapes = try computeOutputShapes(shapes)
        for shape in outputShapes { try shape.checkSampleSize(name) }
        let node = Node(layer: self, inputs: inputs, keywordInputs: keywordInputs, outputShapes: outputShapes)
        return outputShapes.enumerated().map { SymbolicTensor(shape: $1, node: node, index: $0) }
    }
}

/// A model: layers wired into a graph, trained with compile / fit / evaluate / predict.
/// `Model(inputs:outputs:)` is Keras's functional model; `Sequential` is a stack. A model is a
/// layer too, so a model can be called inside another.
open class Model: Layer, @unchecked Sendable {
    public override class var kerasClassName: String { "Functional" }

    /// The symbolic inputs and outputs (empty for a Sequential model not yet built).
    public private(set) var inputs: [SymbolicTensor]
    public private(set) var outputs: [SymbolicTensor]
    /// The layer calls in an order where every call comes after the calls it reads.
    private(set) var nodes: [Node]

    /// What `compile` set: optimizer, losses, metrics.
    public internal(set) var compiled: CompiledModel?
    /// Set by a callback to end `fit` after the current batch (Keras's stop_training).
    public var stopTraining = false
    /// The training steps run so far, the count dropout masks are drawn from.
    public internal(set) var trainStepsRun: UInt64 = 0
    /// The seed of the model's randomness (dropout masks, shuffling); fixed per model.
    public var seed: UInt64 = 1337
    /// The worker threads fit splits each batch across (nil: $LOOM_WORKERS, else the cores).
    public var workers: Int?
    /// The worker threads of data-parallel steps, kept between steps.
    var pool: WorkerPool?
    /// The running fit's position and callbacks, for `trainingState()`.
    var fitProgress: FitProgress?

    /// A functional model from symbolic inputs to symbolic outputs.
    public init(inputs: [SymbolicTensor], outputs: [SymbolicTensor], name: String? = nil, trainable: Bool = true) throws {
        guard !inputs.isEmpty else { throw ConfigError(name ?? "Functional", argument: "inputs", "needs at least one input") }
        guard !outputs.isEmpty else { throw ConfigError(name ?? "Functional", argument: "outputs", "needs at least one output") }
        for x in inputs where !(x.node.layer is InputLayer) {
            throw ConfigError(name ?? "Functional", argument: "inputs", "\(x) is not a model input (made by keras Input)")
        }
        self.inputs = inputs
        self.outputs = outputs
        (nodes, graphLayers) = try Model.orderGraph(inputs: inputs, outputs: outputs, model: name ?? "Functional")
        plan = ExecutionPlan(nodes: nodes, outputs: outputs)
        super.init(name: name ?? LayerNames.next("functional"), trainable: trainable)
        batchInputShape = inputs[0].shape
    }

    /// A functional model with one input and one output.
    public convenience init(inputs: SymbolicTensor, outputs: SymbolicTensor, name: String? = nil) throws {
        try self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    /// A model without a graph yet (Sequential builds its own).
    init(name: String?, prefix: String) {
        inputs = []
        outputs = []
        nodes = []
        plan = ExecutionPlan(nodes: [], outputs: [])
        super.init(name: name ?? LayerNames.next(prefix))
    }

    /// Depth-first from the outputs; every path must end at one of `inputs`. Returns the nodes
    /// in an order that runs, and the layers in Keras's order: by decreasing depth (distance
    /// from the outputs), ties in the order the search first met them.
    private static func orderGraph(inputs: [SymbolicTensor], outputs: [SymbolicTensor], model: String) throws -> ([Node], [Layer]) {
        let inputNodes = Set(inputs.map { ObjectIdentifier($0.node) })
        var visited = Set<ObjectIdentifier>(), order: [Node] = []
        var firstSeen: [ObjectIdentifier: Int] = [:]
        func visit(_ node: Node) throws {
            let id = ObjectIdentifier(node)
            guard !visited.contains(id) else { return }
            visited.insert(id)
            if firstSeen[ObjectIdentifier(node.layer)] == nil { firstSeen[ObjectIdentifier(node.layer)] = firstSeen.count }
            if node.inputs.isEmpty && !inputNodes.contains(id) {
                throw ConfigError(model, argument: "inputs",
                                  "output depends on input '\(node.layer.name)', which is not among the model's inputs")
            }
            for x in node.inputs { try visit(x.node) }
            order.append(node)
        }
        for y in outputs { try visit(y.node) }
        for x in inputs where !visited.contains(ObjectIdentifier(x.node)) {
            order.insert(x.node, at: 0)
            firstSeen[ObjectIdentifier(x.node.layer)] = -1
        }
        var nodeDepth: [ObjectIdentifier: Int] = [:], layerDepth: [ObjectIdentifier: Int] = [:]
        var layersSeen: [Layer] = []
        for node in order.reversed() {
            let layerID = ObjectIdentifier(node.layer)
            if layerDepth[layerID] == nil { layersSeen.append(node.layer) }
            let depth = Swift.max(nodeDepth[ObjectIdentifier(node)] ?? 0, layerDepth[layerID] ?? 0)
            layerDepth[layerID] = depth
            nodeDepth[ObjectIdentifier(node)] = depth
            for x in node.inputs {
                nodeDepth[ObjectIdentifier(x.node)] = Swift.max(depth + 1, nodeDepth[ObjectIdentifier(x.node)] ?? 0)
            }
        }
        let layers = layersSeen.sorted { a, b in
            let (da, db) = (layerDepth[ObjectIdentifier(a)]!, layerDepth[ObjectIdentifier(b)]!)
            return da != db ? da > db : firstSeen[ObjectIdentifier(a)]! < firstSeen[ObjectIdentifier(b)]!
        }
        return (order, layers)
    }

    private var graphLayers: [Layer] = []

    /// When values are let go and which layer chains run fused.
    private let plan: ExecutionPlan

    /// Every layer once, in Keras's order (input layers included, as Keras lists them).
    open var layers: [Layer] { graphLayers }

    open override var sublayers: [Layer] { layers }

    /// The layer called `name`.
    public func layer(named name: String) throws -> Layer {
        guard let l = layers.first(where: { $0.name == name }) else {
            throw ConfigError(self.name, "has no layer named '\(name)'")
        }
        return l
    }

    /// The names of the outputs' layers, as Keras names per-output losses and metrics.
    public var outputNames: [String] { outputs.map(\.node.layer.name) }

    /// The input shapes, batch axis first.
    open var inputShapes: [TensorShape] { inputs.map(\.shape) }
    /// The output shapes, batch axis first.
    open var outputShapes: [TensorShape] { outputs.map(\.shape) }

    /// Runs the graph on concrete inputs and returns every output.
    open func forward(_ values: [Tensor], masks: [Tensor?]? = nil, context: ForwardContext) throws -> [Tensor] {
        guard values.count == inputs.count else {
            throw ConfigError(name, "expects \(inputs.count) input\(inputs.count == 1 ? "" : "s"), got \(values.count)")
        }
        // Values are keyed by the node that made them, then their index among its values.
        var computed: [ObjectIdentifier: (outputs: [Tensor], masks: [Tensor?])] = [:]
        func value(_ t: SymbolicTensor) -> (Tensor, Tensor?) {
            let made = computed[ObjectIdentifier(t.node)]!
            return (made.outputs[t.index], made.masks[t.index])
        }
        for (i, x) in inputs.enumerated() {
            let y = try x.node.layer([values[i]], context: context)
            computed[ObjectIdentifier(x.node)] = ([y], [masks?[i] ?? nil])
        }
        // Nodes a fused chain has already run (their values are never made, or made early).
        var ran = [Bool](repeating: false, count: nodes.count)
        for (i, node) in nodes.enumerated() where !node.inputs.isEmpty {
            let id = ObjectIdentifier(node)
            if !ran[i] {
                let args = node.inputs.map(value)
                if args.count == 1, args[0].1 == nil,
                   let (y, last) = try plan.runChain(i, args[0].0, nodes: nodes, context: context) {
                    // The chain's later nodes are never run; its last one holds the value.
                    computed[ObjectIdentifier(nodes[last])] = ([y], [nil])
                    for j in plan.chains[i]! where j <= last { ran[j] = true }
                } else {
                    computed[id] = try node.layer.callAllWithMasks(args.map(\.0), masks: args.map(\.1),
                                                                   keywordInputs: node.keywordInputs, context: context)
                }
            }
            // What no later call reads is dropped now: without a graph holding it (inference),
            // its buffer goes back to the cache for the next layer.
            for done in plan.releases[i] { computed[done] = nil }
        }
        return outputs.map { value($0).0 }
    }

    /// Builds whatever the first call would build, for inputs like `values`: called once on
    /// the caller's thread before a batch is split across workers, so they never build.
    func prepare(for values: [Tensor]) throws {
        for x in inputs { try x.node.layer.buildIfNeeded([x.shape]) }
    }

    /// The Keras config (Functional's form; Sequential overrides it).
    open override var serialized: JSONValue { functionalSerialized() }

    /// Keras's Model.call takes a mask.
    open override var callTakesMask: Bool { true }

    /// As a layer inside another model: its single output.
    open override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let ys = try forward(inputs, masks: masks, context: context)
        guard ys.count == 1 else { throw ConfigError(name, "a model used as a layer must have one output, has \(ys.count)") }
        return ys[0]
    }

    open override var takesMultipleInputs: Bool { inputs.count > 1 }

    open override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        guard outputs.count == 1 else { throw ConfigError(name, "a model used as a layer must have one output, has \(outputs.count)") }
        let batch = inputShapes.first?.first ?? nil
        return [batch] + outputs[0].shape.dropFirst()
    }

    /// Forgets the carried states of every stateful recurrent layer, nested ones included: the
    /// next batch starts from zeros (Keras 2's model.reset_states()).
    public func resetStates() {
        func visit(_ layer: Layer) {
            (layer as? RecurrentLayer)?.resetStates()
            layer.sublayers.forEach(visit)
        }
        layers.forEach(visit)
    }

    /// Inference on one batch: the outputs for `inputs` with dropout off.
    public func callAsFunction(_ inputs: [Tensor]) throws -> [Tensor] {
        try forward(inputs, context: ForwardContext(training: false))
    }
}

/// A linear stack of layers (Keras's Sequential).
public final class Sequential: Model, @unchecked Sendable {
    public override class var kerasClassName: String { "Sequential" }
    private var stack: [Layer] = []
    private(set) var inputLayer: InputLayer?
    /// The input layer's name, when the model has one.
    var inputName: String? { inputLayer?.name }
    private var builtShapes: [TensorShape]?

    /// A stack of `layers`; when the first has an input shape (or is an InputLayer), the
    /// model is built at once.
    public init(_ layers: [Layer] = [], name: String? = nil) throws {
        super.init(name: name, prefix: "sequential")
        for l in layers { try add(l) }
    }

    /// The layers, without the input layer (as Keras 3 lists them).
    public override var layers: [Layer] { stack }

    /// Appends a layer; builds the model when the input shape is known.
    public func add(_ layer: Layer) throws {
        if let input = layer as? InputLayer {
            guard stack.isEmpty && inputLayer == nil else {
                throw ConfigError(name, "an InputLayer can only be the first layer of a Sequential model")
            }
            inputLayer = input
            batchInputShape = input.batchShape
            return
        }
        if stack.contains(where: { $0 === layer }) {
            throw ConfigError(name, "layer '\(layer.name)' is already in the model")
        }
        if stack.isEmpty && inputLayer == nil, let shape = layer.batchInputShape { batchInputShape = shape }
        stack.append(layer)
        builtShapes = nil
        if let shape = batchInputShape { try buildStack(shape) }
    }

    /// Removes the last layer.
    @discardableResult
    public func pop() throws -> Layer {
        guard let last = stack.popLast() else { throw ConfigError(name, "has no layers to pop") }
        builtShapes = nil
        if let shape = batchInputShape, !stack.isEmpty { try buildStack(shape) }
        return last
    }

    /// Builds every layer for inputs of `inputShape` (batch axis first).
    public func build(inputShape: TensorShape) throws {
        batchInputShape = inputShape
        try buildStack(inputShape)
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        if builtShapes == nil { try buildStack(inputShapes[0]) }
    }

    private func buildStack(_ inputShape: TensorShape) throws {
        // The input layer too, so workers calling it later only read that it is built.
        try inputLayer?.buildIfNeeded([inputShape])
        var shapes = [inputShape]
        var all = [inputShape]
        for layer in stack {
            if let built = layer.builtInputShapes?.first, let incoming = shapes.first, !built.fits(incoming) {
                // A config whose build_config disagrees with the stack: Keras fails on it too.
                throw ConfigError(layer.name, "was built for inputs of shape \(built.text) but receives \(incoming.text)")
            }
            guard layer.outputCount == 1 else {
                throw ConfigError(layer.name, "makes \(layer.outputCount) values (return_state or merge_mode None), "
                                  + "and a Sequential model passes one value on: use a functional model")
            }
            try layer.buildIfNeeded(shapes)
            shapes = [try layer.computeOutputShape(shapes)]
            try shapes[0].checkSampleSize(layer.name)
            all.append(shapes[0])
        }
        builtShapes = all
    }

    /// Whether the input shape is known and every layer built.
    public var isGraphBuilt: Bool { builtShapes != nil }

    /// Each layer's output shape (after building).
    public var layerOutputShapes: [TensorShape] { Array((builtShapes ?? []).dropFirst()) }

    public override var inputShapes: [TensorShape] { [builtShapes?.first ?? batchInputShape ?? []] }
    public override var outputShapes: [TensorShape] { [builtShapes?.last ?? []] }
    public override var outputNames: [String] { [stack.last?.name ?? name] }
    public override var takesMultipleInputs: Bool { false }

    public override var serialized: JSONValue { sequentialSerialized() }

    override func prepare(for values: [Tensor]) throws {
        guard values.count == 1 else { throw ConfigError(name, "expects 1 input, got \(values.count)") }
        guard !stack.isEmpty else { throw ConfigError(name, "has no layers") }
        if builtShapes == nil {
            try buildStack(batchInputShape ?? [nil] + values[0].shape.dropFirst().map(Optional.some))
        }
    }

    public override func forward(_ values: [Tensor], masks: [Tensor?]? = nil, context: ForwardContext) throws -> [Tensor] {
        try prepare(for: values)
        var x = values[0]
        if let inputLayer { x = try inputLayer(x, context: context) }
        var mask = masks?.first ?? nil
        for layer in stack { (x, mask) = try layer.callWithMask([x], masks: [mask], context: context) }
        return [x]
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        var shapes = inputShapes
        for layer in stack { shapes = [try layer.computeOutputShape(shapes)] }
        return shapes[0]
    }
}
