import LoomTensor

/// Runs a recurrent layer forwards and a copy of it backwards over the sequence and merges
/// the two (Keras's Bidirectional): merge_mode concat (default), sum, ave or mul, or nil
/// (Keras's None) for both outputs apart. With return_sequences the backward outputs are put
/// back in time order first, and masked steps output zeros in both directions, as Keras
/// forces. With return_state the call makes the output(s), then the forward layer's states,
/// then the backward layer's; initial states come the same way, forward's first.
public final class Bidirectional: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "Bidirectional" }
    public enum MergeMode: String, Sendable { case concat, sum, ave, mul }
    public let forwardLayer: RecurrentLayer, backwardLayer: RecurrentLayer
    /// How the two directions' outputs combine; nil keeps them as two outputs.
    public let mergeMode: MergeMode?

    /// `backward`: the backward layer's config, default the forward layer's with go_backwards flipped.
    public init(forward: RecurrentLayer, backward: RecurrentLayer, mergeMode: MergeMode? = .concat, name: String? = nil) throws {
        guard forward.goBackwards != backward.goBackwards else {
            throw ConfigError(name ?? "bidirectional", argument: "backward_layer",
                              "must run the other way from the forward layer (go_backwards \(forward.goBackwards) for both)")
        }
        for (what, same) in [("return_sequences", forward.returnSequences == backward.returnSequences),
                             ("return_state", forward.returnState == backward.returnState),
                             ("stateful", forward.stateful == backward.stateful)] where !same {
            throw ConfigError(name ?? "bidirectional", argument: "backward_layer", "must have the forward layer's \(what)")
        }
        forwardLayer = forward
        backwardLayer = backward
        self.mergeMode = mergeMode
        for layer in [forward, backward] { layer.zeroOutputForMask = layer.returnSequences }
        super.init(name: name)
    }

    public override var sublayers: [Layer] { [forwardLayer, backwardLayer] }
    public override var kerasSavedChildren: [(String, Layer)] { [("forward_layer", forwardLayer), ("backward_layer", backwardLayer)] }
    public override var supportsMasking: Bool { true }
    public override var callTakesMask: Bool { true }
    public override var recordsBuildConfig: Bool { true }
    public override var keywordInputName: String? { "initial_state" }
    private var directionOutputs: Int { mergeMode == nil ? 2 : 1 }
    private var stateCount: Int { forwardLayer.returnState ? forwardLayer.outputCount - 1 : 0 }
    public override var outputCount: Int { directionOutputs + 2 * stateCount }

    public override func checkInputCount(_ count: Int, keywordInputs: Int) throws {
        try super.checkInputCount(count, keywordInputs: keywordInputs)
        try forwardLayer.checkInputCount(1 + keywordInputs / 2, keywordInputs: keywordInputs / 2)
        guard keywordInputs % 2 == 0 else {
            throw ConfigError(name, argument: "initial_state", "must hold the forward layer's states then the backward layer's, got \(keywordInputs)")
        }
    }

    /// Forgets both directions' carried states (stateful layers).
    public func resetStates() {
        forwardLayer.resetStates()
        backwardLayer.resetStates()
    }

    /// The sequence and each direction's initial states.
    private func split<T>(_ inputs: [T]) -> (forward: [T], backward: [T]) {
        let states = inputs.dropFirst()
        let half = states.count / 2
        return ([inputs[0]] + states.prefix(half), [inputs[0]] + states.suffix(half))
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        let (f, b) = split(inputShapes)
        try forwardLayer.buildIfNeeded(f)
        try backwardLayer.buildIfNeeded(b)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        try computeOutputShapes(inputShapes)[0]
    }

    public override func computeOutputShapes(_ inputShapes: [TensorShape]) throws -> [TensorShape] {
        let (fi, bi) = split(inputShapes)
        let f = try forwardLayer.computeOutputShapes(fi), b = try backwardLayer.computeOutputShapes(bi)
        let merged: [TensorShape]
        switch mergeMode {
        case nil: merged = [f[0], b[0]]
        case .concat?: merged = [Array(f[0].dropLast()) + [(f[0].last ?? nil).flatMap { x in (b[0].last ?? nil).map { x + $0 } }]]
        default: merged = [f[0]]
        }
        return merged + f.dropFirst() + b.dropFirst()
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        forwardLayer.returnSequences ? masks.first ?? nil : nil
    }

    public override func computeOutputMasks(_ inputs: [Tensor], masks: [Tensor?]) throws -> [Tensor?] {
        let mask = try computeMask(inputs, masks: masks)
        return Array(repeating: mask, count: directionOutputs) + Array(repeating: nil, count: 2 * stateCount)
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        try callOutputs(inputs, masks: masks, context: context)[0]
    }

    public override func callOutputs(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> [Tensor] {
        let (fi, bi) = split(inputs)
        let (fm, bm) = split(masks)
        let f = try forwardLayer.callOutputs(fi, masks: fm, context: context)
        let b = try backwardLayer.callOutputs(bi, masks: bm, context: context)
        let y = f[0]
        var reversed = b[0]
        if backwardLayer.returnSequences {
            let steps = reversed.shape[1]
            reversed = reversed.gather(Tensor((0..<steps).reversed().map(Float.init)), axis: 1)
        }
        let merged: [Tensor]
        switch mergeMode {
        case nil: merged = [y, reversed]
        case .concat?: merged = [Tensor.concatenate([y, reversed], axis: -1)]
        case .sum?: merged = [y + reversed]
        case .ave?: merged = [(y + reversed) * 0.5]
        case .mul?: merged = [y * reversed]
        }
        return merged + f.dropFirst() + b.dropFirst()
    }

    public override var layerConfig: Config {
        ["merge_mode": mergeMode.map { .string($0.rawValue) } ?? .null, "layer": forwardLayer.serialized, "backward_layer": backwardLayer.serialized]
    }

    public static func from(config: Config) throws -> Bidirectional {
        let k = try LayerConfigReader(config, className: kerasClassName)
        guard let layerConfig = config["layer"] else { throw ConfigError(k.reader.object, argument: "layer", "is required") }
        var mode: MergeMode? = .concat
        if config["merge_mode"] == .null {
            mode = nil
        } else if k.reader.has("merge_mode") {
            let modeName = try k.reader.string("merge_mode")
            guard let m = MergeMode(rawValue: modeName) else {
                throw ConfigError(k.reader.object, argument: "merge_mode", "must be concat, sum, ave, mul or None, got \(modeName)")
            }
            mode = m
        }
        func recurrent(_ value: JSONValue, _ what: String) throws -> RecurrentLayer {
            guard let layer = try Layer.deserialize(value) as? RecurrentLayer else {
                throw ConfigError(k.reader.object, argument: what, "must be a SimpleRNN, LSTM or GRU layer")
            }
            return layer
        }
        let forward = try recurrent(layerConfig, "layer")
        let backward: RecurrentLayer
        if let b = config["backward_layer"], b != .null {
            backward = try recurrent(b, "backward_layer")
        } else {
            // The forward layer's config, running the other way, named as Keras names it.
            guard case var .object(c) = layerConfig, case var .object(inner)? = c["config"] else {
                throw ConfigError(k.reader.object, argument: "layer", "is not a layer config")
            }
            inner["go_backwards"] = .bool(!forward.goBackwards)
            if case let .string(n)? = inner["name"] {
                inner["name"] = .string("backward_" + (n.hasPrefix("forward_") ? String(n.dropFirst(8)) : n))
            }
            c["config"] = .object(inner)
            c["build_config"] = .null
            backward = try recurrent(.object(c), "layer")
        }
        let layer = try Bidirectional(forward: forward, backward: backward, mergeMode: mode, name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}

/// Applies a layer to every time step of a sequence (Keras's TimeDistributed): [B, T, ...]
/// runs through the layer as [B·T, ...], one product for all steps.
public final class TimeDistributed: Layer, KerasLayer, @unchecked Sendable {
    public override class var kerasClassName: String { "TimeDistributed" }
    public let layer: Layer

    public init(_ layer: Layer, name: String? = nil) {
        self.layer = layer
        super.init(name: name)
    }

    public override var sublayers: [Layer] { [layer] }
    public override var kerasSavedChildren: [(String, Layer)] { [("layer", layer)] }
    public override var supportsMasking: Bool { true }
    public override var callTakesMask: Bool { true }
    public override var recordsBuildConfig: Bool { true }

    private func stepShape(_ shape: TensorShape) throws -> TensorShape {
        guard shape.count >= 3 else { throw ConfigError(name, "expects inputs of shape (batch, timesteps, ...), got \(shape.text)") }
        return [shape[0].flatMap { b in shape[1].map { b * $0 } }] + Array(shape.dropFirst(2))
    }

    public override func build(_ inputShapes: [TensorShape]) throws {
        try layer.buildIfNeeded([try stepShape(inputShapes[0])])
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let s = inputShapes[0]
        let inner = try layer.computeOutputShape([try stepShape(s)])
        return [s[0], s[1]] + Array(inner.dropFirst())
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? { masks.first ?? nil }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let x = inputs[0]
        guard x.rank >= 3 else { throw ConfigError(name, "expects inputs of shape (batch, timesteps, ...), got \(x.shape)") }
        let (b, t) = (x.shape[0], x.shape[1])
        let y = try layer(x.reshaped([b * t] + Array(x.shape.dropFirst(2))), context: context)
        return y.reshaped([b, t] + Array(y.shape.dropFirst()))
    }

    public override var layerConfig: Config { ["layer": layer.serialized] }

    public static func from(config: Config) throws -> TimeDistributed {
        let k = try LayerConfigReader(config, className: kerasClassName)
        guard let inner = config["layer"] else { throw ConfigError(k.reader.object, argument: "layer", "is required") }
        let layer = TimeDistributed(try Layer.deserialize(inner), name: k.name)
        try k.applyBase(to: layer)
        return layer
    }
}
