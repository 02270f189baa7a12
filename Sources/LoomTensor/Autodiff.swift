import Synchronization

/// A node of the reverse-mode graph: the inputs of the operation that made a tensor and its
/// vector-Jacobian product. Each forward pass builds its own graph; a backward pass that releases
/// the graph as it goes (the trainer's) drops each pullback, and the tensors it saved, once run.
// @unchecked: `pullback` is written only by such a releasing backward pass, which runs on the
// thread that built the graph, after the forward pass; otherwise nodes are only read.
public final class GradientNode: @unchecked Sendable {
    /// The nodes of the inputs that require gradients (nil for inputs that do not).
    let inputs: [GradientNode?]
    /// Maps the gradient of the output to the gradients of the inputs, in the order of `inputs`;
    /// nil once a releasing backward pass has run it.
    private var pullback: (@Sendable (Tensor) -> [Tensor?])?
    /// For a leaf: the parameter it reads, if any.
    let parameter: Parameter?
    /// The shape of the tensor this node made (the shape its gradient has).
    let shape: [Int]
    /// A name for error messages.
    let operation: String
    /// Makes the tensor again from what `pullback` keeps anyway, bit for bit (a batch
    /// normalization's output from its input), so an op reading the tensor in its own
    /// backward pass can keep this instead of the tensor (`SavedInput`).
    let rebuild: (@Sendable () -> Tensor)?

    init(operation: String, shape: [Int], inputs: [GradientNode?], parameter: Parameter? = nil,
         rebuild: (@Sendable () -> Tensor)? = nil, pullback: @escaping @Sendable (Tensor) -> [Tensor?]) {
        self.operation = operation
        self.shape = shape
        self.inputs = inputs
        self.parameter = parameter
        self.rebuild = rebuild
        self.pullback = pullback
    }

    var isLeaf: Bool { inputs.isEmpty }

    /// The input gradients for `gradient`; with `release`, the pullback is dropped first, so
    /// what it saved is freed as soon as it returns.
    func inputGradients(_ gradient: Tensor, release: Bool) -> [Tensor?] {
        guard let run = pullback else {
            preconditionFailure("\(operation): this graph's backward pass has already run and released it")
        }
        if release { pullback = nil }
        return run(gradient)
    }
}

/// A penalty on a parameter's value, added to the loss (a weight regularizer).
public protocol ParameterPenalty: Sendable {
    /// The scalar penalty, differentiable in `value`.
    func penalty(_ value: Tensor) -> Tensor
}

/// A projection applied to a parameter's value after each optimizer update (a constraint).
public protocol ParameterConstraint: Sendable {
    /// The projected value, of the same shape.
    func project(_ value: Tensor) -> Tensor
}

/// A tensor shared by every forward pass that reads it (a model weight), with the regularizer
/// and constraint that belong to it.
///
/// Reading `value` is safe from any thread; `assign` replaces the value between steps.
/// Gradients come back keyed by the parameter, never stored in it.
public final class Parameter: Sendable, Hashable, CustomStringConvertible {
    /// The name, for summaries and weight files.
    public let name: String
    /// Whether optimizers update it (false for statistics such as a moving mean).
    public let trainable: Bool
    /// Its penalty in the loss, if any.
    public let regularizer: (any ParameterPenalty)?
    /// Its projection after each update, if any.
    public let constraint: (any ParameterConstraint)?
    private let current: SystemLock<Tensor>

    public init(name: String, value: Tensor, trainable: Bool = true,
                regularizer: (any ParameterPenalty)? = nil, constraint: (any ParameterConstraint)? = nil) {
        self.name = name
        self.trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        current = SystemLock(value.detached)
    }

    /// The current value (without autodiff tracking).
    public var value: Tensor { current.withLock { $0 } }

    /// The shape of the value.
    public var shape: [Int] { value.shape }

    /// Replaces the value; the shape must not change.
    public func assign(_ newValue: Tensor) {
        current.withLock { old in
            precondition(old.shape == newValue.shape,
                         "Parameter \(name): cannot assign shape \(newValue.shape) to shape \(old.shape)")
            old = newValue.detached
        }
    }

    /// The value, taken out so the caller may hold its only reference (an optimizer updating
    /// it in place); `value` reads an empty tensor until `restore` puts it back.
    package func take() -> Tensor {
        current.withLock { v in
            let taken = v
            v = Tensor(shape: [0], scalars: [])
            return taken
        }
    }

    /// Puts back the value `take` took, updated.
    package func restore(_ value: Tensor) { current.withLock { $0 = value.detached } }

    /// The current value as a leaf of a new graph: operations on it record their gradients.
    /// Inside `GradientRecording.disabled` it is the plain value, so nothing is recorded.
    public var tracked: Tensor {
        let v = value
        guard GradientRecording.isOn else { return v }
        let node = GradientNode(operation: "parameter \(name)", shape: v.shape, inputs: [],
                                parameter: self, pullback: { _ in [] })
        return Tensor(storage: v.storage, shape: v.shape, node: node)
    }

    public static func == (a: Parameter, b: Parameter) -> Bool { a === b }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
    public var description: String { "Parameter(\(name), shape: \(shape))" }
}

/// Whether parameters read in the current scope record a graph (PyTorch's `torch.no_grad`).
///
/// Inference asks for no gradients: with recording off, no pullback keeps an intermediate
/// alive, so each is freed once the forward pass has read it for the last time.
public enum GradientRecording {
    @TaskLocal static var isOn = true

    /// Whether parameters read here record a graph.
    public static var isRecording: Bool { isOn }

    /// Runs `body` on this thread with recording off.
    public static func disabled<R>(_ body: () throws -> R) rethrows -> R {
        try $isOn.withValue(false, operation: body)
    }
}

/// Gradients of a scalar with respect to parameters, keyed by parameter.
public struct Gradients: Sendable {
    public private(set) var values: [Parameter: Tensor]

    public init(_ values: [Parameter: Tensor] = [:]) { self.values = values }

    /// The gradient for `parameter`, or nil when the scalar does not depend on it.
    public subscript(_ parameter: Parameter) -> Tensor? { values[parameter] }

    /// The parameters that received a gradient.
    public var parameters: Dictionary<Parameter, Tensor>.Keys { values.keys }
}

extension Tensor {
    /// This tensor as a leaf of a new graph, so gradients with respect to it can be asked for.
    public func requiringGradient() -> Tensor {
        let node = GradientNode(operation: "variable", shape: shape, inputs: [], pullback: { _ in [] })
        return Tensor(storage: storage, shape: shape, node: node)
    }

    /// Attaches a node to a freshly computed `result` when any of `inputs` requires gradients.
    /// `pullback` gets the output gradient and returns one gradient (or nil) per input.
    /// With `rebuild`, ops that read the result in their backward pass may make it again
    /// instead of keeping it.
    @inline(__always)
    static func record(_ operation: String, _ result: Tensor, _ inputs: [Tensor], rebuild: (@Sendable () -> Tensor)? = nil,
                       _ pullback: @escaping @Sendable (Tensor) -> [Tensor?]) -> Tensor {
        guard inputs.contains(where: { $0.node != nil }) else { return result }
        let node = GradientNode(operation: operation, shape: result.shape, inputs: inputs.map(\.node),
                                rebuild: rebuild, pullback: pullback)
        return Tensor(storage: result.storage, shape: result.shape, node: node)
    }
}

/// An op's input as its backward pass will need it: the tensor, or, when the tensor's node
/// can make it again from what it keeps anyway, only the means to. A ResNet convolution reads
/// the output of the batch normalization and ReLU before it, which that normalization can
/// rebuild from its own input in one elementwise pass; keeping both for the backward pass was
/// 14% of a training step's memory.
struct SavedInput: Sendable {
    let shape: [Int]
    private let kept: Tensor?
    private let rebuild: (@Sendable () -> Tensor)?

    init(_ input: Tensor) {
        shape = input.shape
        if let rebuild = input.node?.rebuild {
            (kept, self.rebuild) = (nil, rebuild)
        } else {
            (kept, rebuild) = (input.detached, nil)
        }
    }

    /// The input's values (made again if they were not kept).
    var value: Tensor { kept ?? rebuild!() }
}

/// Reverse-mode differentiation from `output` (seeded with `seed`, ones by default for a
/// scalar): the gradient of every leaf reached, keyed by the leaf node.
func backpropagate(_ output: Tensor, seed: Tensor?, release: Bool = false) -> [ObjectIdentifier: (GradientNode, Tensor)] {
    guard let root = output.node else { return [:] }
    let seedGradient = seed ?? Tensor.ones(output.shape)
    precondition(seedGradient.shape == output.shape,
                 "gradients: seed shape \(seedGradient.shape) differs from output shape \(output.shape)")

    // Topological order by an iterative depth-first search (graphs through time can be deep).
    var order: [GradientNode] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(GradientNode, Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while let (node, next) = stack.popLast() {
        if next < node.inputs.count {
            stack.append((node, next + 1))
            if let child = node.inputs[next], visited.insert(ObjectIdentifier(child)).inserted {
                stack.append((child, 0))
            }
        } else {
            order.append(node)
        }
    }

    var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seedGradient.detached]
    var leaves: [ObjectIdentifier: (GradientNode, Tensor)] = [:]
    for node in order.reversed() {
        let id = ObjectIdentifier(node)
        guard let gradient = pending.removeValue(forKey: id) else { continue }
        if node.isLeaf {
            leaves[id] = (node, gradient)
            continue
        }
        let inputGradients = node.inputGradients(gradient, release: release)
        precondition(inputGradients.count == node.inputs.count,
                     "\(node.operation): pullback returned \(inputGradients.count) gradients for \(node.inputs.count) inputs")
        for (input, g) in zip(node.inputs, inputGradients) {
            guard let input, let g else { continue }
            precondition(g.shape == input.shape,
                         "\(node.operation): gradient of shape \(g.shape) for an input of shape \(input.shape)")
            let key = ObjectIdentifier(input)
            if let existing = pending[key] {
                pending[key] = existing.detached + g.detached
            } else {
                pending[key] = g.detached
            }
        }
    }
    return leaves
}

/// The gradients of `output` (a scalar, or any tensor with an explicit `seed`) with respect to
/// `parameters`. Parameters the output does not depend on are absent. With `releasingGraph`
/// (a training step), what the forward pass saved is freed as the backward pass goes, and the
/// graph cannot be run backward again (PyTorch's default; `retain_graph=True` is the other).
public func gradients(of output: Tensor, wrt parameters: [Parameter], seed: Tensor? = nil,
                      releasingGraph: Bool = false) -> Gradients {
    let wanted = Set(parameters)
    var result: [Parameter: Tensor] = [:]
    for (node, gradient) in backpropagate(output, seed: seed, release: releasingGraph).values {
        guard let p = node.parameter, wanted.contains(p) else { continue }
        result[p] = result[p].map { $0 + gradient } ?? gradient
    }
    return Gradients(result)
}

/// The gradients of `output` with respect to leaf tensors made by `requiringGradient()`, in
/// order; zeros for a leaf the output does not depend on.
public func gradients(of output: Tensor, wrt variables: [Tensor], seed: Tensor? = nil) -> [Tensor] {
    let leaves = backpropagate(output, seed: seed)
    return variables.map { v in
        guard let node = v.node else {
            preconditionFailure("gradients: a tensor passed in wrt does not require gradients")
        }
        return leaves[ObjectIdentifier(node)]?.1 ?? Tensor.zeros(v.shape)
    }
}
