import LoomLayers
import LoomTensor

/// Keras 3's model configs (what `keras.saving.serialize_keras_object(model)` writes and a
/// `.keras` file's config.json holds): Sequential's list of layers, and Functional's layers
/// with their inbound nodes and the input and output layers.
extension Model {
    /// Builds a model from its Keras config: "Sequential" or "Functional" (also "Model"),
    /// nested models included.
    public static func fromKerasConfig(_ value: JSONValue) throws -> Model {
        _ = modelClassesRegistered
        guard let model = try Layer.deserialize(value) as? Model else {
            throw ConfigError("model config", "is a layer config, not a Sequential or Functional model")
        }
        return model
    }

    /// Keras's compile_config: the optimizer, loss(es), metrics and loss weights compile was
    /// given; empty for a model not compiled.
    var compileConfig: JSONValue {
        guard let compiled else { return [:] }
        func spec(_ m: MetricSpec) -> JSONValue {
            switch m {
            case let .name(n): return .string(n)
            case let .metric(metric): return .string(metric.name)
            }
        }
        func perOutput(_ specs: [[MetricSpec]]) -> JSONValue {
            if specs.allSatisfy(\.isEmpty) { return nil }
            return specs.count == 1 ? .array(specs[0].map(spec)) : .array(specs.map { .array($0.map(spec)) })
        }
        // A model compiled from a Keras compile_config writes it back as given (a loss named
        // "mse" stays "mse"), with the optimizer as it is now (its learning rate may have moved).
        if case var .object(given)? = compiled.kerasCompileConfig {
            given["optimizer"] = compiled.optimizer.serialized
            return .object(given)
        }
        let losses = compiled.losses.map { $0?.serialized ?? nil }
        let weights = compiled.lossWeights.allSatisfy { $0 == 1 } ? JSONValue.null : .array(compiled.lossWeights.map { .from($0) })
        return ["optimizer": compiled.optimizer.serialized, "loss": losses.count == 1 ? losses[0] : .array(losses),
                "loss_weights": weights, "metrics": perOutput(compiled.metricSpecs),
                "weighted_metrics": perOutput(compiled.weightedMetricSpecs), "run_eagerly": false,
                "steps_per_execution": 1, "jit_compile": false]
    }

    /// Compiles the model as a compile_config says (what Keras's compile_from_config does).
    public func compile(fromKerasConfig config: JSONValue) throws {
        guard case let .object(c) = config, !c.isEmpty else { return }
        guard let optimizerValue = c["optimizer"], optimizerValue != .null else {
            throw ConfigError(name, argument: "compile_config", "has no optimizer")
        }
        let optimizer = try optimizers.make(optimizerValue, owner: "compile_config", argument: "optimizer")
        let n = modelOutputCount
        func loss(_ v: JSONValue) throws -> Loss? {
            v == .null ? nil : try losses.make(v, owner: "compile_config", argument: "loss")
        }
        var lossList: [Loss?]
        switch c["loss"] ?? .null {
        case let .array(items): lossList = try items.map(loss)
        case let .object(o) where o["class_name"] == nil:
            lossList = try outputNames.map { try loss(o[$0] ?? .null) }
        case let v: lossList = Array(repeating: try loss(v), count: n)
        }
        func metricLists(_ v: JSONValue?) throws -> [[MetricSpec]] {
            func one(_ x: JSONValue) throws -> MetricSpec {
                switch x {
                case let .string(s): return .name(s)
                case let .object(o):
                    if case let .string(s)? = o["class_name"] { return .name(s) }
                    throw ConfigError(name, argument: "compile_config", "cannot read metric \(x)")
                default: throw ConfigError(name, argument: "compile_config", "cannot read metric \(x)")
                }
            }
            guard let v, case let .array(items) = v else { return [] }
            if items.contains(where: { if case .array = $0 { return true } else { return false } }) {
                return try items.map { item in
                    guard case let .array(list) = item else { return [try one(item)] }
                    return try list.map(one)
                }
            }
            return Array(repeating: try items.map(one), count: n)
        }
        var weights: [Float]? = nil
        if case let .array(ws)? = c["loss_weights"] { weights = ws.map { Float($0.numberValue ?? 1) } }
        try compile(optimizer: optimizer, losses: lossList, metrics: try metricLists(c["metrics"]),
                    weightedMetrics: try metricLists(c["weighted_metrics"]), lossWeights: weights)
        compiled?.kerasCompileConfig = config
    }

    /// The functional form: each layer with its inbound nodes, then the input and output layers.
    func functionalSerialized() -> JSONValue {
        // Node indices are counted within this model, as Keras's get_config re-indexes them.
        var localIndex: [ObjectIdentifier: Int] = [:]
        var perLayer: [ObjectIdentifier: Int] = [:]
        for node in nodes {
            let layerID = ObjectIdentifier(node.layer)
            localIndex[ObjectIdentifier(node)] = perLayer[layerID, default: 0]
            perLayer[layerID, default: 0] += 1
        }
        func history(_ t: SymbolicTensor) -> JSONValue {
            [.string(t.node.layer.name), .int(localIndex[ObjectIdentifier(t.node)] ?? 0), .int(t.index)]
        }
        func tensor(_ t: SymbolicTensor) -> JSONValue {
            let dtype = (t.node.layer as? InputLayer)?.dtype ?? "float32"
            return ["class_name": "__keras_tensor__",
                    "config": ["shape": .array(t.shape.map { JSONValue.from($0) }), "dtype": .string(dtype), "keras_history": history(t)]]
        }
        var layerEntries: [JSONValue] = []
        for layer in layers {
            guard case var .object(entry) = layer.serialized else { continue }
            entry["name"] = .string(layer.name)
            let calls = nodes.filter { $0.layer === layer && !$0.inputs.isEmpty }
            entry["inbound_nodes"] = .array(calls.map { node in
                let positional = node.positionalInputs
                let arg: JSONValue = positional.count == 1 ? tensor(positional.first!) : .array(positional.map(tensor))
                var kwargs: Config = layer.callTakesMask ? ["mask": nil] : [:]
                if layer.callDefaultsTrainingToFalse { kwargs["training"] = false }
                if node.keywordInputs > 0, let keyword = layer.keywordInputName {
                    // Keras records only the keyword tensors for a call given initial states.
                    let extra = node.inputs.suffix(node.keywordInputs)
                    kwargs = [keyword: extra.count == 1 ? tensor(extra.first!) : .array(extra.map(tensor))]
                }
                return ["args": [arg], "kwargs": .object(kwargs)]
            })
            layerEntries.append(.object(entry))
        }
        func ends(_ ts: [SymbolicTensor]) -> JSONValue { ts.count == 1 ? history(ts[0]) : .array(ts.map(history)) }
        let config: Config = ["name": .string(name), "trainable": .bool(trainable), "layers": .array(layerEntries),
                              "input_layers": ends(inputs), "output_layers": ends(outputs)]
        return ["module": "keras.src.models.functional", "class_name": "Functional", "config": .object(config),
                "registered_name": "Functional", "build_config": ["input_shape": nil], "compile_config": compileConfig]
    }

    /// A functional model from its config: layers made first, then their calls replayed in
    /// order, each once the values it reads exist.
    static func functional(from config: Config) throws -> Model {
        let reader = ConfigReader(config, object: "Functional")
        let name = try reader.string("name", default: "functional")
        guard case let .array(entries) = reader.value("layers") else {
            throw ConfigError(name, argument: "layers", "must be a list of layer configs")
        }
        struct Pending { let layer: Layer; let calls: [JSONValue]; var done = 0 }
        var pending: [Pending] = []
        var byName: [String: Int] = [:]
        // Each layer's calls so far, each call's values.
        var outputs: [String: [[SymbolicTensor]]] = [:]
        // Keras 3 writes the mask computations of Masking and Embedding(mask_zero) as op nodes
        // feeding `mask` arguments; Loom propagates those masks itself, so the ops are skipped.
        var maskOps = Set<String>()
        for entry in entries {
            guard case let .object(o) = entry else { throw ConfigError(name, argument: "layers", "holds a non-object entry") }
            if case let .string(className)? = o["class_name"], ["NotEqual", "Any"].contains(className),
               case let .object(c)? = o["config"], case let .string(opName)? = c["name"] {
                maskOps.insert(opName)
                continue
            }
            let layer = try Layer.deserialize(entry)
            guard byName[layer.name] == nil else { throw ConfigError(name, "two layers are named '\(layer.name)'") }
            byName[layer.name] = pending.count
            var calls: [JSONValue] = []
            if case let .array(c)? = o["inbound_nodes"] { calls = c }
            if let input = layer as? InputLayer {
                outputs[layer.name] = [[SymbolicTensor(inputLayer: input)]]
            }
            pending.append(Pending(layer: layer, calls: calls))
        }
        func resolve(_ value: JSONValue) throws -> SymbolicTensor? {
            guard case let .object(t) = value, case let .object(tc)? = t["config"],
                  case let .array(h)? = tc["keras_history"], h.count >= 2,
                  case let .string(producer) = h[0], let index = h[1].numberValue.map({ Int($0) }) else {
                throw ConfigError(name, "an inbound node holds something other than a Keras tensor: \(value)")
            }
            guard !maskOps.contains(producer) else {
                throw ConfigError(name, "a node reads the Keras op '\(producer)', which Loom supports only as a mask computation")
            }
            guard byName[producer] != nil else { throw ConfigError(name, "a node reads layer '\(producer)', which is not in the model") }
            guard let made = outputs[producer], index < made.count else { return nil }
            return try pick(made[index], h, producer)
        }
        // The value a history's third entry names among a call's values.
        func pick(_ values: [SymbolicTensor], _ history: [JSONValue], _ producer: String) throws -> SymbolicTensor {
            let which = history.count >= 3 ? history[2].numberValue.map { Int($0) } ?? 0 : 0
            guard which >= 0 && which < values.count else {
                throw ConfigError(name, "a node reads value \(which) of layer '\(producer)', which makes \(values.count)")
            }
            return values[which]
        }
        var progress = true
        while progress {
            progress = false
            for i in pending.indices {
                while pending[i].done < pending[i].calls.count {
                    let call = pending[i].calls[pending[i].done]
                    guard case let .object(c) = call, case let .array(args)? = c["args"], let first = args.first else {
                        throw ConfigError(pending[i].layer.name, "an inbound node has no args")
                    }
                    let layer = pending[i].layer
                    var keywordValues: [JSONValue] = []
                    if case let .object(kwargs)? = c["kwargs"] {
                        for key in kwargs.keys.sorted() where key != "training" && key != "mask" {
                            guard key == layer.keywordInputName else {
                                throw ConfigError(layer.name, "call argument '\(key)' is not supported")
                            }
                            switch kwargs[key]! {
                            case .null: break
                            case let .array(list): keywordValues = list
                            case let single: keywordValues = [single]
                            }
                        }
                    }
                    let values: [JSONValue]
                    if case let .array(list) = first { values = list } else { values = [first] }
                    let tensors = try (values + keywordValues).map(resolve)
                    guard tensors.allSatisfy({ $0 != nil }) else { break }
                    let y = try layer.callSymbolic(tensors.map { $0! }, keywordInputs: keywordValues.count)
                    outputs[layer.name, default: []].append(y)
                    pending[i].done += 1
                    progress = true
                }
            }
        }
        if let stuck = pending.first(where: { $0.done < $0.calls.count }) {
            throw ConfigError(name, "the inputs of layer '\(stuck.layer.name)' are never computed")
        }
        func ends(_ key: String) throws -> [SymbolicTensor] {
            let value = reader.value(key)
            guard case let .array(list) = value, !list.isEmpty else { throw ConfigError(name, argument: key, "must list layers") }
            let items: [JSONValue]
            if case .string = list[0] { items = [value] } else { items = list }
            return try items.map { item in
                guard case let .array(h) = item, h.count >= 2, case let .string(layer) = h[0],
                      let index = h[1].numberValue.map({ Int($0) }), let made = outputs[layer], index < made.count else {
                    throw ConfigError(name, argument: key, "names a value that is not in the model: \(item)")
                }
                return try pick(made[index], h, layer)
            }
        }
        let model = try Model(inputs: try ends("input_layers"), outputs: try ends("output_layers"), name: name)
        model.trainable = try reader.bool("trainable", default: true)
        return model
    }
}

extension Sequential {
    /// Keras's Sequential form: the layers (an InputLayer first when the input shape is
    /// known) and the build input shape.
    func sequentialSerialized() -> JSONValue {
        var layerEntries: [JSONValue] = []
        let inputShape = isGraphBuilt ? inputShapes[0] : batchInputShape
        if let inputShape {
            layerEntries.append(InputLayer(shape: Array(inputShape.dropFirst()), batchSize: inputShape.first ?? nil,
                                           dtype: inputLayer?.dtype ?? "float32", name: inputName ?? "input_layer").serialized)
        }
        layerEntries += layers.map(\.serialized)
        var config: Config = ["name": .string(name), "trainable": .bool(trainable), "dtype": dtypePolicy,
                              "layers": .array(layerEntries)]
        var out: Config = ["module": "keras", "class_name": "Sequential", "registered_name": nil]
        if let inputShape {
            let shape = JSONValue.array(inputShape.map { JSONValue.from($0) })
            config["build_input_shape"] = shape
            out["build_config"] = ["input_shape": shape]
        }
        out["config"] = .object(config)
        out["compile_config"] = compileConfig
        return .object(out)
    }

    static func sequential(from config: Config) throws -> Sequential {
        let reader = ConfigReader(config, object: "Sequential")
        guard case let .array(entries) = reader.value("layers") else {
            throw ConfigError("Sequential", argument: "layers", "must be a list of layer configs")
        }
        let model = try Sequential(try entries.map { try Layer.deserialize($0) }, name: try reader.optionalString("name"))
        model.trainable = try reader.bool("trainable", default: true)
        if !model.isGraphBuilt, case let .array(dims) = reader.value("build_input_shape") {
            try model.build(inputShape: dims.map { $0.numberValue.map { Int($0) } })
        }
        return model
    }
}

/// Registers Sequential and Functional in the layer registry, once.
let modelClassesRegistered: Void = {
    layers.register("Sequential") { config in try Sequential.sequential(from: config) }
    layers.register("Functional", aliases: ["Model"]) { config in try Model.functional(from: config) }
}()
