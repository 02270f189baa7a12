import LoomTensor

/// Runs a recurrent layer forwards and a copy of it backwards over the sequence and merges
/// the two (Keras's Bidirectional): merge_mode concat (default), sum, ave or mul. With
/// return_sequences the backward outputs are put back in time order first, and masked steps
/// output zeros in both directions, as Keras forces.
public final class Bidirectional: Layer, KerasLayer {
    public override class var kerasClassName: String { "Bidirectional" }
    public enum MergeMode: String, Sendable { case concat, sum, ave, mul }
    public let forwardLayer: RecurrentLayer, backwardLayer: RecurrentLayer
    public let mergeMode: MergeMode

    /// `backward`: the backward layer's config, default the forward layer's with go_backwards flipped.
    public init(forward: RecurrentLayer, backward: RecurrentLayer, mergeMode: MergeMode = .concat, name: String? = nil) throws {
        guard forward.goBackwards != backward.goBackwards else {
            throw ConfigError(name ?? "bidirectional", argument: "backward_layer",
                              "must run the other way from the forward layer (go_backwards \(forward.goBackwards) for both)")
        }
        guard forward.returnSequences == backward.returnSequences else {
            throw ConfigError(name ?? "bidirectional", argument: "backward_layer", "must have the forward layer's return_sequences")
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

    public override func build(_ inputShapes: [TensorShape]) throws {
        try forwardLayer.buildIfNeeded(inputShapes)
        try backwardLayer.buildIfNeeded(inputShapes)
    }

    public override func computeOutputShape(_ inputShapes: [TensorShape]) throws -> TensorShape {
        let f = try forwardLayer.computeOutputShape(inputShapes), b = try backwardLayer.computeOutputShape(inputShapes)
        guard mergeMode == .concat else { return f }
        return Array(f.dropLast()) + [(f.last ?? nil).flatMap { x in (b.last ?? nil).map { x + $0 } }]
    }

    public override func computeMask(_ inputs: [Tensor], masks: [Tensor?]) throws -> Tensor? {
        forwardLayer.returnSequences ? masks.first ?? nil : nil
    }

    public override func call(_ inputs: [Tensor], masks: [Tensor?], context: ForwardContext) throws -> Tensor {
        let y = try forwardLayer.call(inputs, masks: masks, context: context)
        var reversed = try backwardLayer.call(inputs, masks: masks, context: context)
        if backwardLayer.returnSequences {
            let steps = reversed.shape[1]
            reversed = reversed.gather(Tensor((0..<steps).reversed().map(Float.init)), axis: 1)
        }
        switch mergeMode {
        case .concat: return Tensor.concatenate([y, reversed], axis: -1)
        case .sum: return y + reversed
        case .ave: return (y + reversed) * 0.5
        case .mul: return y * reversed
        }
    }

    public override var layerConfig: Config {
        ["merge_mode": .string(mergeMode.rawValue), "layer": forwardLayer.serialized, "backward_layer": backwardLayer.serialized]
    }

    public static func from(config: Config) throws -> Bidirectional {
        let k = try LayerConfigReader(config, className: kerasClassName)
        guard let layerConfig = config["layer"] else { throw ConfigError(k.reader.object, argument: "layer", "is required") }
        let modeName = try k.reader.has("merge_mode") ? k.reader.string("merge_mode") : "concat"
        guard let mode = MergeMode(rawValue: modeName) else {
            throw ConfigError(k.reader.object, argument: "merge_mode",
                              "must be concat, sum, ave or mul, got \(modeName) (merge_mode None returns two outputs, which Loom does not support yet)")
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
public final class TimeDistributed: Layer, KerasLayer {
    public override class var kerasClassName: String { "TimeDistributed" }
    public let layer: Layer

    public init(_ layer: Layer, name: String? = nil) {
        self.layer = layer
        super.init(name: name)
    }

    public override var sublayers: [Layer] { [layer] }
    public override var kerasSavedChildren: [(String, Layer)] { [("layer", layer)] }
    public override var supportsMasking: Bool { true }
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
