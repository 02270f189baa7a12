import LoomTensor
/// Keras's layer class names; user layers register here as "Package>Name".
public let layers: Registry<Layer> = {
    let r = Registry<Layer>(kind: "layer")
    let builtIn: [any KerasLayer.Type] = [
        Dense.self, Activation.self, Identity.self, Masking.self, Embedding.self, Lambda.self, InputLayer.self,
        Flatten.self, Reshape.self, Permute.self, RepeatVector.self, Rescaling.self,
        Dropout.self, SpatialDropout1D.self, SpatialDropout2D.self, SpatialDropout3D.self, GaussianNoise.self,
        GaussianDropout.self, AlphaDropout.self, ActivityRegularization.self,
        ReLU.self, LeakyReLU.self, ELU.self, PReLU.self, Softmax.self,
        Conv1D.self, Conv2D.self, Conv3D.self, DepthwiseConv1D.self, DepthwiseConv2D.self, SeparableConv1D.self,
        SeparableConv2D.self, Conv1DTranspose.self, Conv2DTranspose.self, Conv3DTranspose.self,
        MaxPooling1D.self, MaxPooling2D.self, MaxPooling3D.self, AveragePooling1D.self, AveragePooling2D.self,
        AveragePooling3D.self, GlobalMaxPooling1D.self, GlobalMaxPooling2D.self, GlobalMaxPooling3D.self,
        GlobalAveragePooling1D.self, GlobalAveragePooling2D.self, GlobalAveragePooling3D.self,
        BatchNormalization.self, LayerNormalization.self, GroupNormalization.self, RMSNormalization.self,
        UnitNormalization.self, ZeroPadding1D.self, ZeroPadding2D.self, ZeroPadding3D.self, Cropping1D.self,
        Cropping2D.self, Cropping3D.self, UpSampling1D.self, UpSampling2D.self, UpSampling3D.self,
        Add.self, Subtract.self, Multiply.self, Average.self, Maximum.self, Minimum.self, Concatenate.self, Dot.self,
        SimpleRNN.self, LSTM.self, GRU.self, Bidirectional.self, TimeDistributed.self,
    ]
    for type in builtIn { register(type, in: r) }
    return r
}()

/// Registers a layer type under its Keras class name.
public func register(_ type: any KerasLayer.Type, in registry: Registry<Layer> = layers) {
    registry.register(type.kerasClassName) { config in try type.from(config: config) }
}

extension Layer {
    /// A layer from its serialized form ({"class_name", "config", ...}) or a bare class name.
    public static func deserialize(_ value: JSONValue) throws -> Layer {
        let layer = try layers.make(value, owner: "layer", argument: "class_name")
        // A functional model writes input_shape null: its graph already fixes the shapes.
        guard case let .object(dict) = value, case let .object(build)? = dict["build_config"] else { return layer }
        if let shape = build["input_shape"], shape != .null {
            try layer.buildIfNeeded(try buildShapes(shape, layer: layer.name))
        } else if case let .object(shapes)? = build["shapes_dict"], let sequences = shapes["sequences_shape"],
                  let keyword = layer.keywordInputName {
            // A recurrent layer built with initial states: the sequence's shape, then the states'.
            var all = try buildShapes(sequences, layer: layer.name)
            if let states = shapes["\(keyword)_shape"], states != .null { all += try buildShapes(states, layer: layer.name) }
            try layer.buildIfNeeded(all)
        }
        return layer
    }
}

/// build_config's input_shape: one shape, or a list of shapes for multi-input layers.
func buildShapes(_ value: JSONValue, layer: String) throws(ConfigError) -> [TensorShape] {
    func dims(_ v: JSONValue) throws(ConfigError) -> TensorShape {
        guard case let .array(a) = v else { throw ConfigError(layer, argument: "build_config", "bad input_shape \(value)") }
        var out: TensorShape = []
        for d in a {
            if case .null = d { out.append(nil); continue }
            guard let n = ShapeLimits.size(d) else { throw ConfigError(layer, argument: "build_config", "bad input_shape \(value)") }
            out.append(n)
        }
        return out
    }
    guard case let .array(a) = value else { throw ConfigError(layer, argument: "build_config", "bad input_shape \(value)") }
    if let first = a.first, case .array = first {
        var shapes: [TensorShape] = []
        for v in a { shapes.append(try dims(v)) }
        return shapes
    }
    return [try dims(value)]
}
